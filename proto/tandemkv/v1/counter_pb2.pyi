from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CounterHeader(_message.Message):
    __slots__ = ("revision", "node")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    revision: int
    node: str
    def __init__(self, revision: _Optional[int] = ..., node: _Optional[str] = ...) -> None: ...

class CounterIncrRequest(_message.Message):
    __slots__ = ("name", "delta", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    delta: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., delta: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class CounterIncrResponse(_message.Message):
    __slots__ = ("header", "value")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    header: CounterHeader
    value: int
    def __init__(self, header: _Optional[_Union[CounterHeader, _Mapping]] = ..., value: _Optional[int] = ...) -> None: ...

class CounterGetRequest(_message.Message):
    __slots__ = ("name", "consistency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    consistency: int
    def __init__(self, name: _Optional[bytes] = ..., consistency: _Optional[int] = ...) -> None: ...

class CounterGetResponse(_message.Message):
    __slots__ = ("header", "value", "found")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    header: CounterHeader
    value: int
    found: bool
    def __init__(self, header: _Optional[_Union[CounterHeader, _Mapping]] = ..., value: _Optional[int] = ..., found: bool = ...) -> None: ...

class CounterSetRequest(_message.Message):
    __slots__ = ("name", "value", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    value: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., value: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class CounterSetResponse(_message.Message):
    __slots__ = ("header", "prev_value")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PREV_VALUE_FIELD_NUMBER: _ClassVar[int]
    header: CounterHeader
    prev_value: int
    def __init__(self, header: _Optional[_Union[CounterHeader, _Mapping]] = ..., prev_value: _Optional[int] = ...) -> None: ...

class CounterCompareAndSetRequest(_message.Message):
    __slots__ = ("name", "expected", "value", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    expected: int
    value: int
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., expected: _Optional[int] = ..., value: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class CounterCompareAndSetResponse(_message.Message):
    __slots__ = ("header", "succeeded", "value")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    header: CounterHeader
    succeeded: bool
    value: int
    def __init__(self, header: _Optional[_Union[CounterHeader, _Mapping]] = ..., succeeded: bool = ..., value: _Optional[int] = ...) -> None: ...

class CounterDeleteRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class CounterDeleteResponse(_message.Message):
    __slots__ = ("header", "deleted")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    header: CounterHeader
    deleted: bool
    def __init__(self, header: _Optional[_Union[CounterHeader, _Mapping]] = ..., deleted: bool = ...) -> None: ...
