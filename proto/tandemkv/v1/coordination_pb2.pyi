from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Claim(_message.Message):
    __slots__ = ("name", "value", "lease", "token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    value: bytes
    lease: int
    token: int
    def __init__(self, name: _Optional[bytes] = ..., value: _Optional[bytes] = ..., lease: _Optional[int] = ..., token: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("name", "value", "lease", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    value: bytes
    lease: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., value: _Optional[bytes] = ..., lease: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("header", "registered", "claim")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    registered: bool
    claim: Claim
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., registered: bool = ..., claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class WhereisRequest(_message.Message):
    __slots__ = ("name", "consistency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, name: _Optional[bytes] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class WhereisResponse(_message.Message):
    __slots__ = ("header", "found", "claim")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    found: bool
    claim: Claim
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., found: bool = ..., claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class UnregisterRequest(_message.Message):
    __slots__ = ("name", "token", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    token: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., token: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class UnregisterResponse(_message.Message):
    __slots__ = ("header", "unregistered")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    UNREGISTERED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    unregistered: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., unregistered: bool = ...) -> None: ...

class RegistryListRequest(_message.Message):
    __slots__ = ("prefix", "limit", "consistency")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    prefix: bytes
    limit: int
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, prefix: _Optional[bytes] = ..., limit: _Optional[int] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class RegistryListResponse(_message.Message):
    __slots__ = ("header", "claims", "more")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    claims: _containers.RepeatedCompositeFieldContainer[Claim]
    more: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., claims: _Optional[_Iterable[_Union[Claim, _Mapping]]] = ..., more: bool = ...) -> None: ...

class LockAcquireRequest(_message.Message):
    __slots__ = ("name", "lease", "wait_ms", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    lease: int
    wait_ms: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., lease: _Optional[int] = ..., wait_ms: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class LockAcquireResponse(_message.Message):
    __slots__ = ("header", "acquired", "claim")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ACQUIRED_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    acquired: bool
    claim: Claim
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., acquired: bool = ..., claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class LockReleaseRequest(_message.Message):
    __slots__ = ("name", "token", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    token: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., token: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class LockReleaseResponse(_message.Message):
    __slots__ = ("header", "released")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    released: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., released: bool = ...) -> None: ...

class CampaignRequest(_message.Message):
    __slots__ = ("election", "value", "lease", "wait_ms", "request_id")
    ELECTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    election: bytes
    value: bytes
    lease: int
    wait_ms: int
    request_id: bytes
    def __init__(self, election: _Optional[bytes] = ..., value: _Optional[bytes] = ..., lease: _Optional[int] = ..., wait_ms: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class CampaignResponse(_message.Message):
    __slots__ = ("header", "elected", "claim")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ELECTED_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    elected: bool
    claim: Claim
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., elected: bool = ..., claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class ProclaimRequest(_message.Message):
    __slots__ = ("election", "token", "value", "request_id")
    ELECTION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    election: bytes
    token: int
    value: bytes
    request_id: bytes
    def __init__(self, election: _Optional[bytes] = ..., token: _Optional[int] = ..., value: _Optional[bytes] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class ProclaimResponse(_message.Message):
    __slots__ = ("header", "proclaimed")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PROCLAIMED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    proclaimed: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., proclaimed: bool = ...) -> None: ...

class ResignRequest(_message.Message):
    __slots__ = ("election", "token", "request_id")
    ELECTION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    election: bytes
    token: int
    request_id: bytes
    def __init__(self, election: _Optional[bytes] = ..., token: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class ResignResponse(_message.Message):
    __slots__ = ("header", "resigned")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RESIGNED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    resigned: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., resigned: bool = ...) -> None: ...

class LeaderRequest(_message.Message):
    __slots__ = ("election", "consistency")
    ELECTION_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    election: bytes
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, election: _Optional[bytes] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class LeaderResponse(_message.Message):
    __slots__ = ("header", "found", "leader")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    found: bool
    leader: Claim
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., found: bool = ..., leader: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...
