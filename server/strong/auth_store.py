"""The auth store inside the strong plane's state: how an `AuthChange`
command applies (through the pure model of auth.py) and where the store is
kept (two records of the view's meta table, so snapshots, restarts and
backups carry it with the rest of the state).

- `auth_state` holds the whole store in auth.py's deterministic stored
  form; `auth_revision` holds its revision alone (8 bytes), so a node can
  see whether the store changed with one small read and decode it only
  when it did (server/node/auth.py).
- The command carries everything random or secret, drawn by the proposer:
  a password's salt and scrypt hash (never the password) and the token key.
  Apply only checks and stores them, the same on every member.
- The model's errors become error results with their own codes (exists,
  not found, precondition); bad input was checked before proposing
  (`CHECKS`) and is checked again here.

Part of the pure core: no clock, no randomness, no I/O.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tandemkv.v1 import auth_pb2, kv_pb2, raft_pb2

from tandemkv.server.strong import auth
from tandemkv.server.strong.context import ApplyContext, CommandFailed
from tandemkv.server.strong.view import StoreView

AUTH_STATE_KEY = b"auth_state"
AUTH_REVISION_KEY = b"auth_revision"

# auth.proto's enums, by number, as the model names them.
KIND_NAMES = {auth_pb2.RESOURCE_KEY: "key", auth_pb2.RESOURCE_REGISTRY: "registry",
              auth_pb2.RESOURCE_LOCK: "lock", auth_pb2.RESOURCE_ELECTION: "election",
              auth_pb2.RESOURCE_CRDT: "crdt", auth_pb2.RESOURCE_TOPIC: "topic",
              auth_pb2.RESOURCE_QUEUE: "queue"}
MODE_NAMES = {auth_pb2.ACCESS_READ: "read", auth_pb2.ACCESS_WRITE: "write"}


def load(view: StoreView) -> auth.AuthState:
    return auth.decode(view.meta_get(AUTH_STATE_KEY) or b"")


def stored_revision(view: StoreView) -> int:
    raw = view.meta_get(AUTH_REVISION_KEY)
    return int.from_bytes(raw, "big") if raw else 0


def _save(view: StoreView, state: auth.AuthState) -> None:
    view.meta_put(AUTH_STATE_KEY, auth.encode(state))
    view.meta_put(AUTH_REVISION_KEY, state.revision.to_bytes(8, "big"))


def permission_of(permission: auth_pb2.Permission) -> auth.Permission:
    """The model's permission for a proto one; InvalidArgument naming the
    enum values to use for an unknown kind or mode."""
    kind = KIND_NAMES.get(permission.kind)
    if kind is None:
        raise InvalidArgument(f"permission kind {permission.kind} is unknown; use one of "
                              + ", ".join(auth_pb2.ResourceKind.Name(k) for k in KIND_NAMES))
    mode = MODE_NAMES.get(permission.mode)
    if mode is None:
        raise InvalidArgument(f"permission mode {permission.mode} is unknown; use ACCESS_READ or ACCESS_WRITE")
    return auth.make_permission(kind, permission.prefix, mode)


def permission_to_proto(permission: auth.Permission) -> auth_pb2.Permission:
    kinds = {name: number for number, name in KIND_NAMES.items()}
    modes = {name: number for number, name in MODE_NAMES.items()}
    return auth_pb2.Permission(kind=kinds[permission.kind], prefix=permission.prefix,
                               mode=modes[permission.mode])


def _check_secret(secret: raft_pb2.AuthUserSecret, password_required: bool) -> None:
    auth.check_name("user", secret.user)
    if not secret.salt and not secret.password_hash and not password_required:
        return
    if len(secret.salt) != limits.AUTH_SALT_BYTES or len(secret.password_hash) != limits.AUTH_HASH_BYTES:
        raise InvalidArgument(f"a password travels as a {limits.AUTH_SALT_BYTES}-byte salt and a "
                              f"{limits.AUTH_HASH_BYTES}-byte scrypt hash")


def check_change(change: raft_pb2.AuthChange) -> None:
    """Raises InvalidArgument for a change that cannot apply as sent."""
    kind = change.WhichOneof("change")
    if kind is None:
        raise InvalidArgument("an auth change names no change")
    body = getattr(change, kind)
    if kind in ("user_add", "user_password"):
        _check_secret(body, password_required=kind == "user_password")
    elif kind == "user_delete":
        auth.check_name("user", body.user)
    elif kind in ("user_grant_role", "user_revoke_role"):
        auth.check_name("user", body.user)
        auth.check_name("role", body.role)
    elif kind in ("role_add", "role_delete"):
        auth.check_name("role", body.role)
    elif kind in ("role_grant_permission", "role_revoke_permission"):
        auth.check_name("role", body.role)
        permission_of(body.permission)
    elif kind == "enable" and len(body.token_key) != limits.AUTH_TOKEN_KEY_BYTES:
        raise InvalidArgument(f"the token key must be {limits.AUTH_TOKEN_KEY_BYTES} bytes")


def _change(state: auth.AuthState, kind: str, body) -> None:
    if kind == "user_add":
        auth.add_user(state, body.user, body.salt, body.password_hash)
    elif kind == "user_delete":
        auth.delete_user(state, body.user)
    elif kind == "user_password":
        auth.set_password(state, body.user, body.salt, body.password_hash)
    elif kind == "user_grant_role":
        auth.grant_role(state, body.user, body.role)
    elif kind == "user_revoke_role":
        auth.revoke_role(state, body.user, body.role)
    elif kind == "role_add":
        auth.add_role(state, body.role)
    elif kind == "role_delete":
        auth.delete_role(state, body.role)
    elif kind == "role_grant_permission":
        auth.grant_permission(state, body.role, permission_of(body.permission))
    elif kind == "role_revoke_permission":
        auth.revoke_permission(state, body.role, permission_of(body.permission))
    elif kind == "enable":
        auth.enable(state, body.token_key)
    else:
        assert kind == "disable", kind
        auth.disable(state)


_CODES = ((AlreadyExists, raft_pb2.ALREADY_EXISTS), (NotFound, raft_pb2.NOT_FOUND),
          (FailedPrecondition, raft_pb2.FAILED_PRECONDITION))


def _apply_change(context: ApplyContext, change: raft_pb2.AuthChange) -> raft_pb2.AuthChangeResult:
    state = load(context.view)
    try:
        _change(state, change.WhichOneof("change"), getattr(change, change.WhichOneof("change")))
    except (AlreadyExists, NotFound, FailedPrecondition) as error:
        code = next(code for kind, code in _CODES if isinstance(error, kind))
        raise CommandFailed(code, error.message) from None
    _save(context.view, state)
    return raft_pb2.AuthChangeResult(header=kv_pb2.ResponseHeader(revision=context.index),
                                     auth_revision=state.revision)


OPS = {raft_pb2.AuthChange: _apply_change}
CHECKS = {raft_pb2.AuthChange: check_change}
