from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TopicPublishRequest(_message.Message):
    __slots__ = ("topic", "message", "request_id", "retain_messages", "retain_ms")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RETAIN_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RETAIN_MS_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    message: bytes
    request_id: bytes
    retain_messages: int
    retain_ms: int
    def __init__(self, topic: _Optional[bytes] = ..., message: _Optional[bytes] = ..., request_id: _Optional[bytes] = ..., retain_messages: _Optional[int] = ..., retain_ms: _Optional[int] = ...) -> None: ...

class TopicPublishResponse(_message.Message):
    __slots__ = ("header", "offset", "first_offset", "publish_ms")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    offset: int
    first_offset: int
    publish_ms: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., offset: _Optional[int] = ..., first_offset: _Optional[int] = ..., publish_ms: _Optional[int] = ...) -> None: ...

class TopicMessage(_message.Message):
    __slots__ = ("offset", "message", "publish_ms")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MS_FIELD_NUMBER: _ClassVar[int]
    offset: int
    message: bytes
    publish_ms: int
    def __init__(self, offset: _Optional[int] = ..., message: _Optional[bytes] = ..., publish_ms: _Optional[int] = ...) -> None: ...

class TopicReadRequest(_message.Message):
    __slots__ = ("topic", "from_offset", "limit", "consistency")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    from_offset: int
    limit: int
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, topic: _Optional[bytes] = ..., from_offset: _Optional[int] = ..., limit: _Optional[int] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class TopicReadResponse(_message.Message):
    __slots__ = ("header", "messages", "first_offset", "next_offset", "base_offset", "more")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    BASE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    messages: _containers.RepeatedCompositeFieldContainer[TopicMessage]
    first_offset: int
    next_offset: int
    base_offset: int
    more: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[TopicMessage, _Mapping]]] = ..., first_offset: _Optional[int] = ..., next_offset: _Optional[int] = ..., base_offset: _Optional[int] = ..., more: bool = ...) -> None: ...
