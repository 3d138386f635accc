from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOURCE_KIND_UNSPECIFIED: _ClassVar[ResourceKind]
    RESOURCE_KEY: _ClassVar[ResourceKind]
    RESOURCE_REGISTRY: _ClassVar[ResourceKind]
    RESOURCE_LOCK: _ClassVar[ResourceKind]
    RESOURCE_ELECTION: _ClassVar[ResourceKind]
    RESOURCE_CRDT: _ClassVar[ResourceKind]
    RESOURCE_TOPIC: _ClassVar[ResourceKind]
    RESOURCE_QUEUE: _ClassVar[ResourceKind]

class AccessMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_MODE_UNSPECIFIED: _ClassVar[AccessMode]
    ACCESS_READ: _ClassVar[AccessMode]
    ACCESS_WRITE: _ClassVar[AccessMode]
RESOURCE_KIND_UNSPECIFIED: ResourceKind
RESOURCE_KEY: ResourceKind
RESOURCE_REGISTRY: ResourceKind
RESOURCE_LOCK: ResourceKind
RESOURCE_ELECTION: ResourceKind
RESOURCE_CRDT: ResourceKind
RESOURCE_TOPIC: ResourceKind
RESOURCE_QUEUE: ResourceKind
ACCESS_MODE_UNSPECIFIED: AccessMode
ACCESS_READ: AccessMode
ACCESS_WRITE: AccessMode

class Permission(_message.Message):
    __slots__ = ("kind", "prefix", "mode")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    kind: ResourceKind
    prefix: bytes
    mode: AccessMode
    def __init__(self, kind: _Optional[_Union[ResourceKind, str]] = ..., prefix: _Optional[bytes] = ..., mode: _Optional[_Union[AccessMode, str]] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("user", "password")
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    user: str
    password: str
    def __init__(self, user: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("token", "expires_at_ms")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at_ms: int
    def __init__(self, token: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class UserAddRequest(_message.Message):
    __slots__ = ("user", "password", "request_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    password: str
    request_id: bytes
    def __init__(self, user: _Optional[str] = ..., password: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class UserDeleteRequest(_message.Message):
    __slots__ = ("user", "request_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    request_id: bytes
    def __init__(self, user: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class UserPasswordRequest(_message.Message):
    __slots__ = ("user", "password", "request_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    password: str
    request_id: bytes
    def __init__(self, user: _Optional[str] = ..., password: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class UserRoleRequest(_message.Message):
    __slots__ = ("user", "role", "request_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    role: str
    request_id: bytes
    def __init__(self, user: _Optional[str] = ..., role: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class UserListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UserInfo(_message.Message):
    __slots__ = ("user", "roles", "has_password")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    HAS_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    user: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    has_password: bool
    def __init__(self, user: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., has_password: bool = ...) -> None: ...

class UserListResponse(_message.Message):
    __slots__ = ("users", "auth_revision")
    USERS_FIELD_NUMBER: _ClassVar[int]
    AUTH_REVISION_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserInfo]
    auth_revision: int
    def __init__(self, users: _Optional[_Iterable[_Union[UserInfo, _Mapping]]] = ..., auth_revision: _Optional[int] = ...) -> None: ...

class RoleAddRequest(_message.Message):
    __slots__ = ("role", "request_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    request_id: bytes
    def __init__(self, role: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class RoleDeleteRequest(_message.Message):
    __slots__ = ("role", "request_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    request_id: bytes
    def __init__(self, role: _Optional[str] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class RolePermissionRequest(_message.Message):
    __slots__ = ("role", "permission", "request_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    permission: Permission
    request_id: bytes
    def __init__(self, role: _Optional[str] = ..., permission: _Optional[_Union[Permission, _Mapping]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class RoleListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoleInfo(_message.Message):
    __slots__ = ("role", "permissions")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    role: str
    permissions: _containers.RepeatedCompositeFieldContainer[Permission]
    def __init__(self, role: _Optional[str] = ..., permissions: _Optional[_Iterable[_Union[Permission, _Mapping]]] = ...) -> None: ...

class RoleListResponse(_message.Message):
    __slots__ = ("roles", "auth_revision")
    ROLES_FIELD_NUMBER: _ClassVar[int]
    AUTH_REVISION_FIELD_NUMBER: _ClassVar[int]
    roles: _containers.RepeatedCompositeFieldContainer[RoleInfo]
    auth_revision: int
    def __init__(self, roles: _Optional[_Iterable[_Union[RoleInfo, _Mapping]]] = ..., auth_revision: _Optional[int] = ...) -> None: ...

class AuthEnableRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    def __init__(self, request_id: _Optional[bytes] = ...) -> None: ...

class AuthDisableRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    def __init__(self, request_id: _Optional[bytes] = ...) -> None: ...

class AuthStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuthStatusResponse(_message.Message):
    __slots__ = ("enabled", "auth_revision", "caller")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    AUTH_REVISION_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    auth_revision: int
    caller: str
    def __init__(self, enabled: bool = ..., auth_revision: _Optional[int] = ..., caller: _Optional[str] = ...) -> None: ...

class AuthChangeResponse(_message.Message):
    __slots__ = ("auth_revision",)
    AUTH_REVISION_FIELD_NUMBER: _ClassVar[int]
    auth_revision: int
    def __init__(self, auth_revision: _Optional[int] = ...) -> None: ...
