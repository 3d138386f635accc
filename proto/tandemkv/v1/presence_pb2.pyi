from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PresenceOpenRequest(_message.Message):
    __slots__ = ("ttl_ms",)
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ttl_ms: int
    def __init__(self, ttl_ms: _Optional[int] = ...) -> None: ...

class PresenceOpenResponse(_message.Message):
    __slots__ = ("header", "session", "ttl_ms")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    session: int
    ttl_ms: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., session: _Optional[int] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class PresenceSessionRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: int
    def __init__(self, session: _Optional[int] = ...) -> None: ...

class PresenceSessionResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ...) -> None: ...

class PresenceTrackRequest(_message.Message):
    __slots__ = ("session", "topic", "key", "meta")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    session: int
    topic: bytes
    key: bytes
    meta: bytes
    def __init__(self, session: _Optional[int] = ..., topic: _Optional[bytes] = ..., key: _Optional[bytes] = ..., meta: _Optional[bytes] = ...) -> None: ...

class PresenceTrackResponse(_message.Message):
    __slots__ = ("header", "ref")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    ref: str
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., ref: _Optional[str] = ...) -> None: ...

class PresenceMeta(_message.Message):
    __slots__ = ("ref", "meta")
    REF_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    ref: str
    meta: bytes
    def __init__(self, ref: _Optional[str] = ..., meta: _Optional[bytes] = ...) -> None: ...

class PresenceKey(_message.Message):
    __slots__ = ("key", "metas")
    KEY_FIELD_NUMBER: _ClassVar[int]
    METAS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    metas: _containers.RepeatedCompositeFieldContainer[PresenceMeta]
    def __init__(self, key: _Optional[bytes] = ..., metas: _Optional[_Iterable[_Union[PresenceMeta, _Mapping]]] = ...) -> None: ...

class PresenceListRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    def __init__(self, topic: _Optional[bytes] = ...) -> None: ...

class PresenceListResponse(_message.Message):
    __slots__ = ("header", "keys")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    keys: _containers.RepeatedCompositeFieldContainer[PresenceKey]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., keys: _Optional[_Iterable[_Union[PresenceKey, _Mapping]]] = ...) -> None: ...

class PresenceDiff(_message.Message):
    __slots__ = ("topic", "joins", "leaves")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    JOINS_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    joins: _containers.RepeatedCompositeFieldContainer[PresenceKey]
    leaves: _containers.RepeatedCompositeFieldContainer[PresenceKey]
    def __init__(self, topic: _Optional[bytes] = ..., joins: _Optional[_Iterable[_Union[PresenceKey, _Mapping]]] = ..., leaves: _Optional[_Iterable[_Union[PresenceKey, _Mapping]]] = ...) -> None: ...

class PresenceWatchRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    def __init__(self, topic: _Optional[bytes] = ...) -> None: ...

class PresenceState(_message.Message):
    __slots__ = ("keys", "resync")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[PresenceKey]
    resync: bool
    def __init__(self, keys: _Optional[_Iterable[_Union[PresenceKey, _Mapping]]] = ..., resync: bool = ...) -> None: ...

class PresenceWatchResponse(_message.Message):
    __slots__ = ("header", "state", "diff")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    state: PresenceState
    diff: PresenceDiff
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., state: _Optional[_Union[PresenceState, _Mapping]] = ..., diff: _Optional[_Union[PresenceDiff, _Mapping]] = ...) -> None: ...

class PresenceExchangeRequest(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, frames: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PresenceExchangeResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...
