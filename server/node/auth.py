"""The auth half of the `Node` API, `node.auth`: authenticate, change users
and roles, enable and disable auth, list them; and `state()`, the applied
auth store that the gRPC server's gate (server/api/auth_calls.py) reads
before every call.

Changes are writes like any other (`node.propose`): linearizable, exactly
once by request id. A caller's request id (kept across its retries) becomes
the AuthChange's, checked before any hashing; without one the node draws
one, so only that attempt is deduplicated. What is random or costly is done here, on the
proposing node, never in apply: a password is hashed (scrypt, ~50 ms of
CPU, at most AUTH_HASHINGS_IN_FLIGHT_MAX at once, RESOURCE_EXHAUSTED
beyond) under a fresh salt, and enabling draws the token key; the command
carries the results. Authenticate and the lists wait for a read barrier
first, as a linearizable read does, so a user added through any member is
known here.

`state()` is the applied auth store as the gate sees it: one small LMDB
read of its revision per call, and a decode only when the revision moved.

Every method has an `_async` twin that holds no thread while it waits
(hashing runs on the event loop's executor).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import lmdb

from tandemkv import limits
from tandemkv.errors import InvalidArgument, ResourceExhausted
from tandemkv.server.node.deadlines import deadline_of, read_timed_out
from tandemkv.server.strong import auth, auth_store, validation
from tandemkv.v1 import auth_pb2, raft_pb2

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node


def _now_ms() -> int:
    return int(time.time() * 1000)


class NodeAuth:
    """`node.auth`: users, roles and tokens of one embedded node."""

    def __init__(self, node: "Node"):
        self._node = node
        self._cached: tuple[int, auth.AuthState] = (-1, auth.AuthState())
        self._hashings = threading.BoundedSemaphore(limits.AUTH_HASHINGS_IN_FLIGHT_MAX)

    # -- the applied store --
    def state(self) -> auth.AuthState:
        """The applied auth store (decoded again only when its revision moved)."""
        store = self._node._state
        if store is None:
            return self._cached[1]
        try:
            with store.read_view() as view:
                revision = auth_store.stored_revision(view)
                if revision != self._cached[0]:
                    self._cached = (revision, auth_store.load(view))
        except lmdb.Error:  # the node is stopping and closed its state: the last store read
            pass
        return self._cached[1]

    def enabled(self) -> bool:
        return self.state().enabled

    def _fresh_state(self, timeout_s: float | None) -> auth.AuthState:
        """The store after a read barrier: every change acknowledged before is in it."""
        node = self._node
        deadline = deadline_of(timeout_s)
        try:
            outcome = node._require_barrier().join().result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise read_timed_out() from None
        node._check_barrier(outcome)
        return self.state()

    async def _fresh_state_async(self, timeout_s: float | None) -> auth.AuthState:
        node = self._node
        deadline = deadline_of(timeout_s)
        shared = node._async_barrier(node._require_barrier().join())
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                outcome = await asyncio.shield(shared)
        except TimeoutError:
            raise read_timed_out() from None
        node._check_barrier(outcome)
        return self.state()

    def _hashing(self, function: Callable[[], Any]) -> Any:
        """Runs a password hashing under AUTH_HASHINGS_IN_FLIGHT_MAX."""
        if not self._hashings.acquire(blocking=False):
            raise ResourceExhausted(f"this node is hashing AUTH_HASHINGS_IN_FLIGHT_MAX="
                                    f"{limits.AUTH_HASHINGS_IN_FLIGHT_MAX} passwords already; retry shortly")
        try:
            return function()
        finally:
            self._hashings.release()

    async def _hashing_async(self, function: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self._hashing, function)

    # -- authenticate --
    def _token(self, state: auth.AuthState, user: str, password: str) -> auth_pb2.AuthenticateResponse:
        auth.verify_password(state, user, password)
        now_ms = _now_ms()
        token = auth.issue_token(state, user, now_ms)
        return auth_pb2.AuthenticateResponse(token=token, expires_at_ms=now_ms + limits.AUTH_TOKEN_TTL_MS)

    def authenticate(self, user: str, password: str, *, timeout_s: float | None = None
                     ) -> auth_pb2.AuthenticateResponse:
        """A token for `user` (send it as `authorization: Bearer TOKEN`);
        Unauthenticated with one message for an unknown user or a wrong
        password; FailedPrecondition while auth is disabled."""
        state = self._fresh_state(timeout_s)
        return self._hashing(lambda: self._token(state, user, password))

    async def authenticate_async(self, user: str, password: str, *, timeout_s: float | None = None
                                 ) -> auth_pb2.AuthenticateResponse:
        state = await self._fresh_state_async(timeout_s)
        return await self._hashing_async(lambda: self._token(state, user, password))

    # -- changes --
    def _propose(self, change: raft_pb2.AuthChange, timeout_s: float | None) -> auth_pb2.AuthChangeResponse:
        result = self._node.propose(change, timeout_s=timeout_s)
        return auth_pb2.AuthChangeResponse(auth_revision=result.auth_revision)

    async def _propose_async(self, change: raft_pb2.AuthChange, timeout_s: float | None
                             ) -> auth_pb2.AuthChangeResponse:
        result = await self._node.propose_async(change, timeout_s=timeout_s)
        return auth_pb2.AuthChangeResponse(auth_revision=result.auth_revision)

    def change(self, kind: str, timeout_s: float | None = None, request_id: bytes | None = None,
               **fields) -> auth_pb2.AuthChangeResponse:
        """One change of the store: `kind` is an AuthChange field (user_add,
        user_delete, user_password, user_grant_role, user_revoke_role,
        role_add, role_delete, role_grant_permission, role_revoke_permission,
        enable, disable) and `fields` its request's fields; a `password` is
        hashed here, and `enable` draws the token key. A retry with the same
        `request_id` answers as its first attempt did and applies nothing."""
        validation.check_request_id(request_id or b"")
        secret = self._hashing(lambda: _secret(fields["password"])) if _hashes(kind, fields) else None
        return self._propose(_build(kind, fields, secret, request_id), timeout_s)

    async def change_async(self, kind: str, timeout_s: float | None = None, request_id: bytes | None = None,
                           **fields) -> auth_pb2.AuthChangeResponse:
        validation.check_request_id(request_id or b"")
        secret = None
        if _hashes(kind, fields):
            secret = await self._hashing_async(lambda: _secret(fields["password"]))
        return await self._propose_async(_build(kind, fields, secret, request_id), timeout_s)

    # shorthands
    def user_add(self, user: str, password: str = "", **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("user_add", user=user, password=password, **kw)

    def user_delete(self, user: str, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("user_delete", user=user, **kw)

    def user_grant_role(self, user: str, role: str, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("user_grant_role", user=user, role=role, **kw)

    def user_revoke_role(self, user: str, role: str, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("user_revoke_role", user=user, role=role, **kw)

    def role_add(self, role: str, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("role_add", role=role, **kw)

    def role_delete(self, role: str, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("role_delete", role=role, **kw)

    def role_grant_permission(self, role: str, kind: str, prefix: bytes, mode: str, **kw
                              ) -> auth_pb2.AuthChangeResponse:
        """Grants `mode` ('read' or 'write') on names of `kind` starting with `prefix`."""
        return self.change("role_grant_permission", role=role, permission=permission(kind, prefix, mode), **kw)

    def role_revoke_permission(self, role: str, kind: str, prefix: bytes, mode: str, **kw
                               ) -> auth_pb2.AuthChangeResponse:
        return self.change("role_revoke_permission", role=role, permission=permission(kind, prefix, mode), **kw)

    def enable(self, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("enable", **kw)

    def disable(self, **kw) -> auth_pb2.AuthChangeResponse:
        return self.change("disable", **kw)

    # -- lists --
    def users(self, *, timeout_s: float | None = None) -> auth_pb2.UserListResponse:
        return _users(self._fresh_state(timeout_s))

    async def users_async(self, *, timeout_s: float | None = None) -> auth_pb2.UserListResponse:
        return _users(await self._fresh_state_async(timeout_s))

    def roles(self, *, timeout_s: float | None = None) -> auth_pb2.RoleListResponse:
        return _roles(self._fresh_state(timeout_s))

    async def roles_async(self, *, timeout_s: float | None = None) -> auth_pb2.RoleListResponse:
        return _roles(await self._fresh_state_async(timeout_s))

    def status(self, caller: str | None = None) -> auth_pb2.AuthStatusResponse:
        """Whether auth is on and its revision, as this node applied them."""
        state = self.state()
        return auth_pb2.AuthStatusResponse(enabled=state.enabled, auth_revision=state.revision,
                                           caller=caller or "")


_BODIES = {
    "user_add": raft_pb2.AuthUserSecret, "user_password": raft_pb2.AuthUserSecret,
    "user_delete": auth_pb2.UserDeleteRequest, "user_grant_role": auth_pb2.UserRoleRequest,
    "user_revoke_role": auth_pb2.UserRoleRequest, "role_add": auth_pb2.RoleAddRequest,
    "role_delete": auth_pb2.RoleDeleteRequest, "role_grant_permission": auth_pb2.RolePermissionRequest,
    "role_revoke_permission": auth_pb2.RolePermissionRequest, "enable": raft_pb2.AuthEnableChange,
    "disable": auth_pb2.AuthDisableRequest,
}


def _hashes(kind: str, fields: dict) -> bool:
    return kind in ("user_add", "user_password") and bool(fields.get("password"))


def _build(kind: str, fields: dict, secret: tuple[bytes, bytes] | None,
           request_id: bytes | None = None) -> raft_pb2.AuthChange:
    fields = dict(fields)
    fields.pop("request_id", None)  # the AuthChange carries it, once
    if kind in ("user_add", "user_password"):
        if kind == "user_password" and not fields.pop("password", ""):
            auth.check_password("")  # raises, saying what a password must be
        fields.pop("password", None)
        salt, password_hash = secret or (b"", b"")
        fields.update(salt=salt, password_hash=password_hash)
    elif kind == "enable":
        fields = {"token_key": os.urandom(limits.AUTH_TOKEN_KEY_BYTES)}
    body = _BODIES.get(kind)
    if body is None:
        raise InvalidArgument(f"auth change {kind!r} is unknown; use one of {', '.join(sorted(_BODIES))}")
    change = raft_pb2.AuthChange(request_id=request_id or b"")
    getattr(change, kind).CopyFrom(body(**fields))
    return change


def _secret(password: str) -> tuple[bytes, bytes]:
    salt = os.urandom(limits.AUTH_SALT_BYTES)
    return salt, auth.hash_password(password, salt)


def permission(kind: str, prefix: bytes | str, mode: str) -> auth_pb2.Permission:
    """The proto permission for model names ('key', ..., 'read' | 'write')."""
    prefix = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
    return auth_store.permission_to_proto(auth.make_permission(kind, prefix, mode))


def _users(state: auth.AuthState) -> auth_pb2.UserListResponse:
    return auth_pb2.UserListResponse(
        users=[auth_pb2.UserInfo(user=name, roles=sorted(user.roles), has_password=bool(user.password_hash))
               for name, user in sorted(state.users.items())],
        auth_revision=state.revision)


def _roles(state: auth.AuthState) -> auth_pb2.RoleListResponse:
    return auth_pb2.RoleListResponse(
        roles=[auth_pb2.RoleInfo(role=name, permissions=[auth_store.permission_to_proto(p) for p in perms])
               for name, perms in sorted(state.roles.items())],
        auth_revision=state.revision)
