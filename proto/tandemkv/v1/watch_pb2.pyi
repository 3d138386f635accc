from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("type", "kv", "prev_kv")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PUT: _ClassVar[Event.Type]
        DELETE: _ClassVar[Event.Type]
        EXPIRE: _ClassVar[Event.Type]
    PUT: Event.Type
    DELETE: Event.Type
    EXPIRE: Event.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KV_FIELD_NUMBER: _ClassVar[int]
    PREV_KV_FIELD_NUMBER: _ClassVar[int]
    type: Event.Type
    kv: _kv_pb2.KeyValue
    prev_kv: _kv_pb2.KeyValue
    def __init__(self, type: _Optional[_Union[Event.Type, str]] = ..., kv: _Optional[_Union[_kv_pb2.KeyValue, _Mapping]] = ..., prev_kv: _Optional[_Union[_kv_pb2.KeyValue, _Mapping]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("range", "start_revision", "prev_kv", "progress_interval_ms")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    START_REVISION_FIELD_NUMBER: _ClassVar[int]
    PREV_KV_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    range: _kv_pb2.KeyRange
    start_revision: int
    prev_kv: bool
    progress_interval_ms: int
    def __init__(self, range: _Optional[_Union[_kv_pb2.KeyRange, _Mapping]] = ..., start_revision: _Optional[int] = ..., prev_kv: bool = ..., progress_interval_ms: _Optional[int] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("header", "events", "progress", "compacted", "compact_revision")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    COMPACTED_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    events: _containers.RepeatedCompositeFieldContainer[Event]
    progress: bool
    compacted: bool
    compact_revision: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., progress: bool = ..., compacted: bool = ..., compact_revision: _Optional[int] = ...) -> None: ...

class WatchCreate(_message.Message):
    __slots__ = ("watch_id", "request")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    watch_id: int
    request: WatchRequest
    def __init__(self, watch_id: _Optional[int] = ..., request: _Optional[_Union[WatchRequest, _Mapping]] = ...) -> None: ...

class WatchCancel(_message.Message):
    __slots__ = ("watch_id",)
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    watch_id: int
    def __init__(self, watch_id: _Optional[int] = ...) -> None: ...

class WatchProgressRequest(_message.Message):
    __slots__ = ("interval_ms",)
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    interval_ms: int
    def __init__(self, interval_ms: _Optional[int] = ...) -> None: ...

class WatchStreamRequest(_message.Message):
    __slots__ = ("create", "cancel", "progress")
    CREATE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    create: WatchCreate
    cancel: WatchCancel
    progress: WatchProgressRequest
    def __init__(self, create: _Optional[_Union[WatchCreate, _Mapping]] = ..., cancel: _Optional[_Union[WatchCancel, _Mapping]] = ..., progress: _Optional[_Union[WatchProgressRequest, _Mapping]] = ...) -> None: ...

class WatchStreamResponse(_message.Message):
    __slots__ = ("watch_id", "created", "response", "canceled", "cancel_reason", "cancel_code", "progress_excluded")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    CANCEL_CODE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    watch_id: int
    created: bool
    response: WatchResponse
    canceled: bool
    cancel_reason: str
    cancel_code: int
    progress_excluded: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, watch_id: _Optional[int] = ..., created: bool = ..., response: _Optional[_Union[WatchResponse, _Mapping]] = ..., canceled: bool = ..., cancel_reason: _Optional[str] = ..., cancel_code: _Optional[int] = ..., progress_excluded: _Optional[_Iterable[int]] = ...) -> None: ...
