from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CrdtType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CRDT_TYPE_UNSPECIFIED: _ClassVar[CrdtType]
    G_COUNTER: _ClassVar[CrdtType]
    PN_COUNTER: _ClassVar[CrdtType]
    LWW_REGISTER: _ClassVar[CrdtType]
    MV_REGISTER: _ClassVar[CrdtType]
    OR_SET: _ClassVar[CrdtType]
    AW_LWW_MAP: _ClassVar[CrdtType]
CRDT_TYPE_UNSPECIFIED: CrdtType
G_COUNTER: CrdtType
PN_COUNTER: CrdtType
LWW_REGISTER: CrdtType
MV_REGISTER: CrdtType
OR_SET: CrdtType
AW_LWW_MAP: CrdtType

class CrdtTable(_message.Message):
    __slots__ = ("name", "type", "created_revision", "keyed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_REVISION_FIELD_NUMBER: _ClassVar[int]
    KEYED_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: CrdtType
    created_revision: int
    keyed: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[CrdtType, str]] = ..., created_revision: _Optional[int] = ..., keyed: bool = ...) -> None: ...

class CreateTableRequest(_message.Message):
    __slots__ = ("name", "type", "request_id", "keyed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEYED_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: CrdtType
    request_id: bytes
    keyed: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[CrdtType, str]] = ..., request_id: _Optional[bytes] = ..., keyed: bool = ...) -> None: ...

class CreateTableResponse(_message.Message):
    __slots__ = ("header", "created", "table")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    created: bool
    table: CrdtTable
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., created: bool = ..., table: _Optional[_Union[CrdtTable, _Mapping]] = ...) -> None: ...

class DropTableRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: bytes
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class DropTableResponse(_message.Message):
    __slots__ = ("header", "dropped")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    dropped: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., dropped: bool = ...) -> None: ...

class ListTablesRequest(_message.Message):
    __slots__ = ("consistency",)
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class ListTablesResponse(_message.Message):
    __slots__ = ("header", "tables")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    tables: _containers.RepeatedCompositeFieldContainer[CrdtTable]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., tables: _Optional[_Iterable[_Union[CrdtTable, _Mapping]]] = ...) -> None: ...

class MapPut(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class CrdtUpdateRequest(_message.Message):
    __slots__ = ("table", "increment", "add", "remove", "set", "put", "remove_key", "remove_entry", "key")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    REMOVE_KEY_FIELD_NUMBER: _ClassVar[int]
    REMOVE_ENTRY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    table: str
    increment: int
    add: bytes
    remove: bytes
    set: bytes
    put: MapPut
    remove_key: bytes
    remove_entry: bool
    key: bytes
    def __init__(self, table: _Optional[str] = ..., increment: _Optional[int] = ..., add: _Optional[bytes] = ..., remove: _Optional[bytes] = ..., set: _Optional[bytes] = ..., put: _Optional[_Union[MapPut, _Mapping]] = ..., remove_key: _Optional[bytes] = ..., remove_entry: bool = ..., key: _Optional[bytes] = ...) -> None: ...

class CrdtUpdateResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class BytesList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, items: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MapEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class MapValue(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MapEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[MapEntry, _Mapping]]] = ...) -> None: ...

class CrdtValue(_message.Message):
    __slots__ = ("table", "type", "counter", "register", "values", "map", "present", "node", "key", "resync")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    table: str
    type: CrdtType
    counter: int
    register: bytes
    values: BytesList
    map: MapValue
    present: bool
    node: str
    key: bytes
    resync: bool
    def __init__(self, table: _Optional[str] = ..., type: _Optional[_Union[CrdtType, str]] = ..., counter: _Optional[int] = ..., register: _Optional[bytes] = ..., values: _Optional[_Union[BytesList, _Mapping]] = ..., map: _Optional[_Union[MapValue, _Mapping]] = ..., present: bool = ..., node: _Optional[str] = ..., key: _Optional[bytes] = ..., resync: bool = ...) -> None: ...

class CrdtReadRequest(_message.Message):
    __slots__ = ("table", "key")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: bytes
    def __init__(self, table: _Optional[str] = ..., key: _Optional[bytes] = ...) -> None: ...

class CrdtScanRequest(_message.Message):
    __slots__ = ("table", "prefix", "limit", "after")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    table: str
    prefix: bytes
    limit: int
    after: bytes
    def __init__(self, table: _Optional[str] = ..., prefix: _Optional[bytes] = ..., limit: _Optional[int] = ..., after: _Optional[bytes] = ...) -> None: ...

class CrdtScanResponse(_message.Message):
    __slots__ = ("entries", "more", "values", "resume_after")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MapEntry]
    more: bool
    values: _containers.RepeatedCompositeFieldContainer[CrdtValue]
    resume_after: bytes
    def __init__(self, entries: _Optional[_Iterable[_Union[MapEntry, _Mapping]]] = ..., more: bool = ..., values: _Optional[_Iterable[_Union[CrdtValue, _Mapping]]] = ..., resume_after: _Optional[bytes] = ...) -> None: ...

class CrdtSubscribeRequest(_message.Message):
    __slots__ = ("table", "key", "prefix")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: bytes
    prefix: bytes
    def __init__(self, table: _Optional[str] = ..., key: _Optional[bytes] = ..., prefix: _Optional[bytes] = ...) -> None: ...

class GossipFrames(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, frames: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GossipAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
