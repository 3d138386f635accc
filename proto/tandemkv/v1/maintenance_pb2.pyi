from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SnapshotInfo(_message.Message):
    __slots__ = ("node", "revision", "applied_index", "key_count", "state_image_bytes", "crdt_image_bytes", "file_bytes", "taken_unix_ms")
    NODE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CRDT_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TAKEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    node: str
    revision: int
    applied_index: int
    key_count: int
    state_image_bytes: int
    crdt_image_bytes: int
    file_bytes: int
    taken_unix_ms: int
    def __init__(self, node: _Optional[str] = ..., revision: _Optional[int] = ..., applied_index: _Optional[int] = ..., key_count: _Optional[int] = ..., state_image_bytes: _Optional[int] = ..., crdt_image_bytes: _Optional[int] = ..., file_bytes: _Optional[int] = ..., taken_unix_ms: _Optional[int] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("data", "info", "sha256")
    DATA_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    info: SnapshotInfo
    sha256: bytes
    def __init__(self, data: _Optional[bytes] = ..., info: _Optional[_Union[SnapshotInfo, _Mapping]] = ..., sha256: _Optional[bytes] = ...) -> None: ...
