"""Users, roles and auth in the SDK: `client.auth` (and the same awaited
on `AsyncClient`), one `Operation` of the Auth service per method, run by
the client's retry core. Changes go to the leader and need the root
role once auth is enabled; each returns the auth revision after it.
Each change is exactly once, like every write: one request id per call,
the same on every retry.

    with Client(user="root", password=root_password) as client:
        client.auth.user_add("root", root_password)        # before enable: the first admin
        client.auth.user_grant_role("root", "root")
        client.auth.role_add("reader")
        client.auth.role_grant_permission("reader", "read", "key", "app/")
        client.auth.user_add("app", app_password)
        client.auth.user_grant_role("app", "reader")
        client.auth.enable()

Kinds: key, registry, lock, election, crdt, topic, queue; modes: read,
write (write implies read); the empty prefix covers every name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tandemkv.client import _operations as ops
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.v1 import auth_pb2

KINDS = {"key": auth_pb2.RESOURCE_KEY, "registry": auth_pb2.RESOURCE_REGISTRY, "lock": auth_pb2.RESOURCE_LOCK,
         "election": auth_pb2.RESOURCE_ELECTION, "crdt": auth_pb2.RESOURCE_CRDT,
         "topic": auth_pb2.RESOURCE_TOPIC, "queue": auth_pb2.RESOURCE_QUEUE}
MODES = {"read": auth_pb2.ACCESS_READ, "write": auth_pb2.ACCESS_WRITE}
KIND_NAMES = {number: name for name, number in KINDS.items()}
MODE_NAMES = {number: name for name, number in MODES.items()}


@dataclasses.dataclass(frozen=True)
class Permission:
    mode: str    # "read" or "write"
    kind: str    # "key", "registry", "lock", "election", "crdt", "topic", "queue"
    prefix: bytes


@dataclasses.dataclass(frozen=True)
class UserInfo:
    user: str
    roles: tuple[str, ...]
    has_password: bool


@dataclasses.dataclass(frozen=True)
class RoleInfo:
    role: str
    permissions: tuple[Permission, ...]


@dataclasses.dataclass(frozen=True)
class AuthStatus:
    """Whether auth is on, its revision, and who this client is to the
    node that answered ("" without credentials)."""

    enabled: bool
    auth_revision: int
    caller: str


@dataclasses.dataclass(frozen=True)
class AuthToken:
    """A token for `Client(token=...)`; `expires_at_ms` in the server's
    wall-clock milliseconds."""

    token: str = dataclasses.field(repr=False)
    expires_at_ms: int


def permission(mode: str, kind: str, prefix: BytesLike) -> auth_pb2.Permission:
    """The wire form; ValueError names what to pass instead."""
    if mode not in MODES:
        raise ValueError(f"auth: mode {mode!r} is not one of {', '.join(MODES)}")
    if kind not in KINDS:
        raise ValueError(f"auth: kind {kind!r} is not one of {', '.join(KINDS)}")
    return auth_pb2.Permission(kind=KINDS[kind], prefix=to_bytes(prefix, "prefix"), mode=MODES[mode])


def _decode_permission(wire: Any) -> Permission:
    return Permission(MODE_NAMES.get(wire.mode, str(wire.mode)), KIND_NAMES.get(wire.kind, str(wire.kind)),
                      bytes(wire.prefix))


def _revision(response: Any) -> int:
    return int(response.auth_revision)


def _change(method: str, request: Any) -> ops.Operation:
    # The request id is drawn once, here, and sent on every retry of this
    # call: a change whose answer was lost answers as its first attempt did
    # (never AlreadyExists for the user it just added), so it is retried
    # like any write.
    request.request_id = ops.new_request_id()
    return ops.Operation("Auth", method, request, _revision, write=True)


def _read(method: str, request: Any, decode: Any) -> ops.Operation:
    return ops.Operation("Auth", method, request, decode, write=False)


def authenticate(user: str, password: str) -> ops.Operation:
    return _read("Authenticate", auth_pb2.AuthenticateRequest(user=user, password=password),
                 lambda r: AuthToken(r.token, int(r.expires_at_ms)))


def user_add(user: str, password: str | None) -> ops.Operation:
    return _change("UserAdd", auth_pb2.UserAddRequest(user=user, password=password or ""))


def user_delete(user: str) -> ops.Operation:
    return _change("UserDelete", auth_pb2.UserDeleteRequest(user=user))


def user_change_password(user: str, password: str) -> ops.Operation:
    return _change("UserChangePassword", auth_pb2.UserPasswordRequest(user=user, password=password))


def user_role(method: str, user: str, role: str) -> ops.Operation:
    return _change(method, auth_pb2.UserRoleRequest(user=user, role=role))


def user_list() -> ops.Operation:
    return _read("UserList", auth_pb2.UserListRequest(), lambda r: (
        [UserInfo(u.user, tuple(u.roles), u.has_password) for u in r.users], int(r.auth_revision)))


def role_add(role: str) -> ops.Operation:
    return _change("RoleAdd", auth_pb2.RoleAddRequest(role=role))


def role_delete(role: str) -> ops.Operation:
    return _change("RoleDelete", auth_pb2.RoleDeleteRequest(role=role))


def role_permission(method: str, role: str, mode: str, kind: str, prefix: BytesLike) -> ops.Operation:
    return _change(method, auth_pb2.RolePermissionRequest(role=role, permission=permission(mode, kind, prefix)))


def role_list() -> ops.Operation:
    return _read("RoleList", auth_pb2.RoleListRequest(), lambda r: (
        [RoleInfo(x.role, tuple(map(_decode_permission, x.permissions))) for x in r.roles], int(r.auth_revision)))


def auth_enable() -> ops.Operation:
    return _change("AuthEnable", auth_pb2.AuthEnableRequest())


def auth_disable() -> ops.Operation:
    return _change("AuthDisable", auth_pb2.AuthDisableRequest())


def auth_status() -> ops.Operation:
    return _read("AuthStatus", auth_pb2.AuthStatusRequest(),
                 lambda r: AuthStatus(r.enabled, int(r.auth_revision), r.caller))


class _AuthOperations:
    """The operations of `client.auth`, shared by `Auth` and `AsyncAuth`:
    each method returns what `client.run` returns (an awaitable on
    `AsyncClient`)."""

    def __init__(self, client: Any):
        self._client = client

    def authenticate(self, user: str, password: str) -> Any:
        """A token for `user` (`AuthToken`), e.g. to hand to `Client(token=...)`."""
        return self._client.run(authenticate(user, password))

    def token(self) -> Any:
        """A fresh token of this client's own user and password (`AuthToken`),
        for a process that should hold a token and no password."""
        session = getattr(self._client, "_auth_session", None)
        if session is None or not session.keeper.renewable:
            raise ValueError("auth: a token needs a client made with user= and password=")
        operation = session.keeper.authenticate()
        return self._client.run(dataclasses.replace(
            operation, decode=lambda r: AuthToken(r.token, int(r.expires_at_ms))))

    def user_add(self, user: str, password: str | None = None) -> Any:
        """Adds `user`; without a password it signs in only by a client certificate's CN."""
        return self._client.run(user_add(user, password))

    def user_delete(self, user: str) -> Any:
        """Deletes `user`; its tokens end at once."""
        return self._client.run(user_delete(user))

    def user_change_password(self, user: str, password: str) -> Any:
        """Sets `user`'s password; its tokens end at once (this client's own,
        when it is that user, is replaced at its next call)."""
        result = self._client.run(user_change_password(user, password))
        session = getattr(self._client, "_auth_session", None)
        if session is not None:
            session.keeper.password_changed(user, password)
        return result

    def user_grant_role(self, user: str, role: str) -> Any:
        return self._client.run(user_role("UserGrantRole", user, role))

    def user_revoke_role(self, user: str, role: str) -> Any:
        return self._client.run(user_role("UserRevokeRole", user, role))

    def user_list(self) -> Any:
        """([UserInfo, ...], auth_revision), in name order."""
        return self._client.run(user_list())

    def role_add(self, role: str) -> Any:
        return self._client.run(role_add(role))

    def role_delete(self, role: str) -> Any:
        return self._client.run(role_delete(role))

    def role_grant_permission(self, role: str, mode: str, kind: str, prefix: BytesLike = b"") -> Any:
        """Grants `mode` ("read"/"write") on names of `kind` starting with `prefix`."""
        return self._client.run(role_permission("RoleGrantPermission", role, mode, kind, prefix))

    def role_revoke_permission(self, role: str, mode: str, kind: str, prefix: BytesLike = b"") -> Any:
        return self._client.run(role_permission("RoleRevokePermission", role, mode, kind, prefix))

    def role_list(self) -> Any:
        """([RoleInfo, ...], auth_revision), in name order."""
        return self._client.run(role_list())

    def enable(self) -> Any:
        """Turns auth on (needs user "root" with a password and the root role)."""
        return self._client.run(auth_enable())

    def disable(self) -> Any:
        return self._client.run(auth_disable())

    def status(self) -> Any:
        """`AuthStatus`: enabled, the auth revision, and who this client is."""
        return self._client.run(auth_status())


class Auth(_AuthOperations):
    """`client.auth` (blocking): users, roles, enable/disable/status."""


class AsyncAuth(_AuthOperations):
    """`AsyncClient.auth`: as `Auth`, each method awaited."""

    async def user_change_password(self, user: str, password: str) -> Any:  # type: ignore[override]
        result = await self._client.run(user_change_password(user, password))
        session = getattr(self._client, "_auth_session", None)
        if session is not None:
            session.keeper.password_changed(user, password)
        return result
