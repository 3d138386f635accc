from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LeaseGrantRequest(_message.Message):
    __slots__ = ("ttl_ms", "request_id")
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ttl_ms: int
    request_id: bytes
    def __init__(self, ttl_ms: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class LeaseGrantResponse(_message.Message):
    __slots__ = ("header", "id", "ttl_ms")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    id: int
    ttl_ms: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., id: _Optional[int] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class LeaseRevokeRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    request_id: bytes
    def __init__(self, id: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class LeaseRevokeResponse(_message.Message):
    __slots__ = ("header", "revoked")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    revoked: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., revoked: bool = ...) -> None: ...

class LeaseKeepAliveRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    request_id: bytes
    def __init__(self, id: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class LeaseKeepAliveResponse(_message.Message):
    __slots__ = ("header", "id", "ttl_ms", "found")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    id: int
    ttl_ms: int
    found: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., id: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., found: bool = ...) -> None: ...

class LeaseTimeToLiveRequest(_message.Message):
    __slots__ = ("id", "consistency", "attached")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    id: int
    consistency: _kv_pb2.ReadConsistency
    attached: bool
    def __init__(self, id: _Optional[int] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ..., attached: bool = ...) -> None: ...

class LeaseTimeToLiveResponse(_message.Message):
    __slots__ = ("header", "id", "found", "granted_ttl_ms", "remaining_ms", "keys", "names")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    id: int
    found: bool
    granted_ttl_ms: int
    remaining_ms: int
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    names: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., id: _Optional[int] = ..., found: bool = ..., granted_ttl_ms: _Optional[int] = ..., remaining_ms: _Optional[int] = ..., keys: _Optional[_Iterable[bytes]] = ..., names: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LeaseListRequest(_message.Message):
    __slots__ = ("after_id", "limit", "consistency")
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    after_id: int
    limit: int
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, after_id: _Optional[int] = ..., limit: _Optional[int] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class LeaseInfo(_message.Message):
    __slots__ = ("id", "granted_ttl_ms", "remaining_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    GRANTED_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    granted_ttl_ms: int
    remaining_ms: int
    def __init__(self, id: _Optional[int] = ..., granted_ttl_ms: _Optional[int] = ..., remaining_ms: _Optional[int] = ...) -> None: ...

class LeaseListResponse(_message.Message):
    __slots__ = ("header", "leases", "more")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    leases: _containers.RepeatedCompositeFieldContainer[LeaseInfo]
    more: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., leases: _Optional[_Iterable[_Union[LeaseInfo, _Mapping]]] = ..., more: bool = ...) -> None: ...
