from tandemkv.v1 import counter_pb2 as _counter_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadConsistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINEARIZABLE: _ClassVar[ReadConsistency]
    STALE: _ClassVar[ReadConsistency]
LINEARIZABLE: ReadConsistency
STALE: ReadConsistency

class ResponseHeader(_message.Message):
    __slots__ = ("revision", "node")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    revision: int
    node: str
    def __init__(self, revision: _Optional[int] = ..., node: _Optional[str] = ...) -> None: ...

class KeyValue(_message.Message):
    __slots__ = ("key", "value", "create_revision", "mod_revision", "version", "lease")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CREATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., create_revision: _Optional[int] = ..., mod_revision: _Optional[int] = ..., version: _Optional[int] = ..., lease: _Optional[int] = ...) -> None: ...

class KeyRange(_message.Message):
    __slots__ = ("key", "range_end", "prefix")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RANGE_END_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    range_end: bytes
    prefix: bool
    def __init__(self, key: _Optional[bytes] = ..., range_end: _Optional[bytes] = ..., prefix: bool = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("key", "value", "prev_kv", "request_id", "lease")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PREV_KV_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    prev_kv: bool
    request_id: bytes
    lease: int
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., prev_kv: bool = ..., request_id: _Optional[bytes] = ..., lease: _Optional[int] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("header", "prev_kv", "has_prev_kv")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PREV_KV_FIELD_NUMBER: _ClassVar[int]
    HAS_PREV_KV_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    prev_kv: KeyValue
    has_prev_kv: bool
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., prev_kv: _Optional[_Union[KeyValue, _Mapping]] = ..., has_prev_kv: bool = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("key", "consistency")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    consistency: ReadConsistency
    def __init__(self, key: _Optional[bytes] = ..., consistency: _Optional[_Union[ReadConsistency, str]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("header", "kv", "found")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    KV_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    kv: KeyValue
    found: bool
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., kv: _Optional[_Union[KeyValue, _Mapping]] = ..., found: bool = ...) -> None: ...

class RangeRequest(_message.Message):
    __slots__ = ("range", "limit", "keys_only", "consistency")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KEYS_ONLY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    range: KeyRange
    limit: int
    keys_only: bool
    consistency: ReadConsistency
    def __init__(self, range: _Optional[_Union[KeyRange, _Mapping]] = ..., limit: _Optional[int] = ..., keys_only: bool = ..., consistency: _Optional[_Union[ReadConsistency, str]] = ...) -> None: ...

class RangeResponse(_message.Message):
    __slots__ = ("header", "kvs", "more")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    KVS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    kvs: _containers.RepeatedCompositeFieldContainer[KeyValue]
    more: bool
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., kvs: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ..., more: bool = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("range", "prev_kv", "request_id")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PREV_KV_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    range: KeyRange
    prev_kv: bool
    request_id: bytes
    def __init__(self, range: _Optional[_Union[KeyRange, _Mapping]] = ..., prev_kv: bool = ..., request_id: _Optional[bytes] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("header", "deleted", "prev_kvs")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    PREV_KVS_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    deleted: int
    prev_kvs: _containers.RepeatedCompositeFieldContainer[KeyValue]
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., deleted: _Optional[int] = ..., prev_kvs: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ...) -> None: ...

class Compare(_message.Message):
    __slots__ = ("result", "target", "key", "value", "version", "create_revision", "mod_revision", "counter")
    class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EQUAL: _ClassVar[Compare.Result]
        NOT_EQUAL: _ClassVar[Compare.Result]
        GREATER: _ClassVar[Compare.Result]
        LESS: _ClassVar[Compare.Result]
    EQUAL: Compare.Result
    NOT_EQUAL: Compare.Result
    GREATER: Compare.Result
    LESS: Compare.Result
    class Target(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VALUE: _ClassVar[Compare.Target]
        VERSION: _ClassVar[Compare.Target]
        CREATE_REVISION: _ClassVar[Compare.Target]
        MOD_REVISION: _ClassVar[Compare.Target]
        COUNTER: _ClassVar[Compare.Target]
    VALUE: Compare.Target
    VERSION: Compare.Target
    CREATE_REVISION: Compare.Target
    MOD_REVISION: Compare.Target
    COUNTER: Compare.Target
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    result: Compare.Result
    target: Compare.Target
    key: bytes
    value: bytes
    version: int
    create_revision: int
    mod_revision: int
    counter: int
    def __init__(self, result: _Optional[_Union[Compare.Result, str]] = ..., target: _Optional[_Union[Compare.Target, str]] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., version: _Optional[int] = ..., create_revision: _Optional[int] = ..., mod_revision: _Optional[int] = ..., counter: _Optional[int] = ...) -> None: ...

class RequestOp(_message.Message):
    __slots__ = ("put", "delete", "range", "counter_incr", "counter_set", "counter_delete", "counter_get")
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_INCR_FIELD_NUMBER: _ClassVar[int]
    COUNTER_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_DELETE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_GET_FIELD_NUMBER: _ClassVar[int]
    put: PutRequest
    delete: DeleteRequest
    range: RangeRequest
    counter_incr: _counter_pb2.CounterIncrRequest
    counter_set: _counter_pb2.CounterSetRequest
    counter_delete: _counter_pb2.CounterDeleteRequest
    counter_get: _counter_pb2.CounterGetRequest
    def __init__(self, put: _Optional[_Union[PutRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., range: _Optional[_Union[RangeRequest, _Mapping]] = ..., counter_incr: _Optional[_Union[_counter_pb2.CounterIncrRequest, _Mapping]] = ..., counter_set: _Optional[_Union[_counter_pb2.CounterSetRequest, _Mapping]] = ..., counter_delete: _Optional[_Union[_counter_pb2.CounterDeleteRequest, _Mapping]] = ..., counter_get: _Optional[_Union[_counter_pb2.CounterGetRequest, _Mapping]] = ...) -> None: ...

class ResponseOp(_message.Message):
    __slots__ = ("put", "delete", "range", "counter_incr", "counter_set", "counter_delete", "counter_get")
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_INCR_FIELD_NUMBER: _ClassVar[int]
    COUNTER_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_DELETE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_GET_FIELD_NUMBER: _ClassVar[int]
    put: PutResponse
    delete: DeleteResponse
    range: RangeResponse
    counter_incr: _counter_pb2.CounterIncrResponse
    counter_set: _counter_pb2.CounterSetResponse
    counter_delete: _counter_pb2.CounterDeleteResponse
    counter_get: _counter_pb2.CounterGetResponse
    def __init__(self, put: _Optional[_Union[PutResponse, _Mapping]] = ..., delete: _Optional[_Union[DeleteResponse, _Mapping]] = ..., range: _Optional[_Union[RangeResponse, _Mapping]] = ..., counter_incr: _Optional[_Union[_counter_pb2.CounterIncrResponse, _Mapping]] = ..., counter_set: _Optional[_Union[_counter_pb2.CounterSetResponse, _Mapping]] = ..., counter_delete: _Optional[_Union[_counter_pb2.CounterDeleteResponse, _Mapping]] = ..., counter_get: _Optional[_Union[_counter_pb2.CounterGetResponse, _Mapping]] = ...) -> None: ...

class TxnRequest(_message.Message):
    __slots__ = ("compare", "success", "failure", "request_id")
    COMPARE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    compare: _containers.RepeatedCompositeFieldContainer[Compare]
    success: _containers.RepeatedCompositeFieldContainer[RequestOp]
    failure: _containers.RepeatedCompositeFieldContainer[RequestOp]
    request_id: bytes
    def __init__(self, compare: _Optional[_Iterable[_Union[Compare, _Mapping]]] = ..., success: _Optional[_Iterable[_Union[RequestOp, _Mapping]]] = ..., failure: _Optional[_Iterable[_Union[RequestOp, _Mapping]]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class TxnResponse(_message.Message):
    __slots__ = ("header", "succeeded", "responses")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    succeeded: bool
    responses: _containers.RepeatedCompositeFieldContainer[ResponseOp]
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., succeeded: bool = ..., responses: _Optional[_Iterable[_Union[ResponseOp, _Mapping]]] = ...) -> None: ...
