from tandemkv.v1 import coordination_pb2 as _coordination_pb2
from tandemkv.v1 import counter_pb2 as _counter_pb2
from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchOp(_message.Message):
    __slots__ = ("put", "get", "delete", "range", "counter_incr", "counter_get", "counter_set", "counter_compare_and_set", "counter_delete", "whereis")
    PUT_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_INCR_FIELD_NUMBER: _ClassVar[int]
    COUNTER_GET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_COMPARE_AND_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_DELETE_FIELD_NUMBER: _ClassVar[int]
    WHEREIS_FIELD_NUMBER: _ClassVar[int]
    put: _kv_pb2.PutRequest
    get: _kv_pb2.GetRequest
    delete: _kv_pb2.DeleteRequest
    range: _kv_pb2.RangeRequest
    counter_incr: _counter_pb2.CounterIncrRequest
    counter_get: _counter_pb2.CounterGetRequest
    counter_set: _counter_pb2.CounterSetRequest
    counter_compare_and_set: _counter_pb2.CounterCompareAndSetRequest
    counter_delete: _counter_pb2.CounterDeleteRequest
    whereis: _coordination_pb2.WhereisRequest
    def __init__(self, put: _Optional[_Union[_kv_pb2.PutRequest, _Mapping]] = ..., get: _Optional[_Union[_kv_pb2.GetRequest, _Mapping]] = ..., delete: _Optional[_Union[_kv_pb2.DeleteRequest, _Mapping]] = ..., range: _Optional[_Union[_kv_pb2.RangeRequest, _Mapping]] = ..., counter_incr: _Optional[_Union[_counter_pb2.CounterIncrRequest, _Mapping]] = ..., counter_get: _Optional[_Union[_counter_pb2.CounterGetRequest, _Mapping]] = ..., counter_set: _Optional[_Union[_counter_pb2.CounterSetRequest, _Mapping]] = ..., counter_compare_and_set: _Optional[_Union[_counter_pb2.CounterCompareAndSetRequest, _Mapping]] = ..., counter_delete: _Optional[_Union[_counter_pb2.CounterDeleteRequest, _Mapping]] = ..., whereis: _Optional[_Union[_coordination_pb2.WhereisRequest, _Mapping]] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[BatchOp]
    def __init__(self, ops: _Optional[_Iterable[_Union[BatchOp, _Mapping]]] = ...) -> None: ...

class BatchError(_message.Message):
    __slots__ = ("code", "message", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("put", "get", "delete", "range", "counter_incr", "counter_get", "counter_set", "counter_compare_and_set", "counter_delete", "whereis", "error")
    PUT_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_INCR_FIELD_NUMBER: _ClassVar[int]
    COUNTER_GET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_COMPARE_AND_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_DELETE_FIELD_NUMBER: _ClassVar[int]
    WHEREIS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    put: _kv_pb2.PutResponse
    get: _kv_pb2.GetResponse
    delete: _kv_pb2.DeleteResponse
    range: _kv_pb2.RangeResponse
    counter_incr: _counter_pb2.CounterIncrResponse
    counter_get: _counter_pb2.CounterGetResponse
    counter_set: _counter_pb2.CounterSetResponse
    counter_compare_and_set: _counter_pb2.CounterCompareAndSetResponse
    counter_delete: _counter_pb2.CounterDeleteResponse
    whereis: _coordination_pb2.WhereisResponse
    error: BatchError
    def __init__(self, put: _Optional[_Union[_kv_pb2.PutResponse, _Mapping]] = ..., get: _Optional[_Union[_kv_pb2.GetResponse, _Mapping]] = ..., delete: _Optional[_Union[_kv_pb2.DeleteResponse, _Mapping]] = ..., range: _Optional[_Union[_kv_pb2.RangeResponse, _Mapping]] = ..., counter_incr: _Optional[_Union[_counter_pb2.CounterIncrResponse, _Mapping]] = ..., counter_get: _Optional[_Union[_counter_pb2.CounterGetResponse, _Mapping]] = ..., counter_set: _Optional[_Union[_counter_pb2.CounterSetResponse, _Mapping]] = ..., counter_compare_and_set: _Optional[_Union[_counter_pb2.CounterCompareAndSetResponse, _Mapping]] = ..., counter_delete: _Optional[_Union[_counter_pb2.CounterDeleteResponse, _Mapping]] = ..., whereis: _Optional[_Union[_coordination_pb2.WhereisResponse, _Mapping]] = ..., error: _Optional[_Union[BatchError, _Mapping]] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...
