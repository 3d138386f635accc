"""Users, roles and tokens: the auth store of the strong plane, as pure records
and pure functions (no I/O, no clock, no randomness of its own).

The model, after etcd's RBAC:
- a user has a password hash (scrypt with a per-user salt) and/or is named by
  a client certificate's CN, and holds roles;
- a role grants permissions; a permission is (resource kind, name prefix,
  read | write); write implies read; the empty prefix covers every name;
- the role "root" grants everything, and enabling auth requires a user who
  holds it;
- every change to a user or role bumps `revision`, so a node caches its
  decisions by revision and a revoked user is refused at the next call.

Determinism: everything random (a salt, the token key) is drawn by the node
that proposes the change and carried in the command, so every member applies
the same bytes. Hashing a password is done by the proposer too
(`hash_password`): the command carries (salt, hash), never the password.

Tokens are "user.expiry_ms.generation.hmac" signed with the HMAC key kept
in this store, so every member verifies them and they survive a leader change.
A token names the user's `generation` (bumped when the user is deleted and
re-added or the password changes), so a changed password ends old tokens.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from typing import Iterable

from tandemkv import limits
from tandemkv.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound,
                             PermissionDenied, Unauthenticated)

ROOT_USER = "root"
ROOT_ROLE = "root"
# The resources a permission can name; each is checked against a name prefix.
KINDS = ("key", "registry", "lock", "election", "crdt", "topic", "queue")
MODES = ("read", "write")
# One message for an unknown user and a wrong password, so neither is revealed.
BAD_CREDENTIALS = "authentication failed: unknown user or wrong password"
SIGN_IN_HINT = ("auth is enabled: send 'authorization: Bearer TOKEN' (from Auth.Authenticate) "
                "or a client certificate whose CN names a user")


@dataclasses.dataclass(frozen=True)
class Permission:
    kind: str
    prefix: bytes
    mode: str

    def covers(self, kind: str, name: bytes, mode: str) -> bool:
        if self.kind != kind or not name.startswith(self.prefix):
            return False
        return self.mode == mode or (self.mode == "write" and mode == "read")

    def describe(self) -> str:
        return f"{self.mode} on {self.kind} prefix {self.prefix!r}"


@dataclasses.dataclass
class User:
    salt: bytes = b""
    password_hash: bytes = b""
    roles: set[str] = dataclasses.field(default_factory=set)
    generation: int = 0


@dataclasses.dataclass
class AuthState:
    enabled: bool = False
    revision: int = 0
    token_key: bytes = b""
    users: dict[str, User] = dataclasses.field(default_factory=dict)
    roles: dict[str, list[Permission]] = dataclasses.field(default_factory=dict)


# -- checks on input --

def check_name(what: str, name: str) -> None:
    if not name or len(name.encode()) > limits.AUTH_NAME_BYTES_MAX or not name.isprintable():
        raise InvalidArgument(f"{what} name must be 1 to {limits.AUTH_NAME_BYTES_MAX} printable bytes",
                              "AUTH_NAME_BYTES_MAX")


def check_password(password: str) -> None:
    if not password or len(password.encode()) > limits.AUTH_PASSWORD_BYTES_MAX:
        raise InvalidArgument(f"password must be 1 to {limits.AUTH_PASSWORD_BYTES_MAX} bytes",
                              "AUTH_PASSWORD_BYTES_MAX")


def make_permission(kind: str, prefix: bytes, mode: str) -> Permission:
    if kind not in KINDS:
        raise InvalidArgument(f"permission kind {kind!r} is not one of {', '.join(KINDS)}")
    if mode not in MODES:
        raise InvalidArgument(f"permission mode {mode!r} is not one of read, write")
    if len(prefix) > limits.AUTH_PREFIX_BYTES_MAX:
        raise InvalidArgument(f"permission prefix is over {limits.AUTH_PREFIX_BYTES_MAX} bytes",
                              "AUTH_PREFIX_BYTES_MAX")
    return Permission(kind, bytes(prefix), mode)


# -- passwords --

def hash_password(password: str, salt: bytes) -> bytes:
    """scrypt of the password under the user's salt (the proposer runs it)."""
    check_password(password)
    return hashlib.scrypt(password.encode(), salt=salt, n=limits.AUTH_SCRYPT_N,
                          r=limits.AUTH_SCRYPT_R, p=limits.AUTH_SCRYPT_P,
                          dklen=limits.AUTH_HASH_BYTES, maxmem=64 << 20)


def verify_password(state: AuthState, name: str, password: str) -> None:
    """Raises Unauthenticated with one message for every failure."""
    user = state.users.get(name)
    if user is None or not user.password_hash or not password:
        raise Unauthenticated(BAD_CREDENTIALS)
    if len(password.encode()) > limits.AUTH_PASSWORD_BYTES_MAX:
        raise Unauthenticated(BAD_CREDENTIALS)
    if not hmac.compare_digest(hash_password(password, user.salt), user.password_hash):
        raise Unauthenticated(BAD_CREDENTIALS)


# -- changes (each applied through Raft; each bumps the revision) --

def _bump(state: AuthState) -> None:
    state.revision += 1


def add_user(state: AuthState, name: str, salt: bytes = b"", password_hash: bytes = b"") -> None:
    check_name("user", name)
    if name in state.users:
        raise AlreadyExists(f"user {name!r} already exists")
    if len(state.users) >= limits.AUTH_USERS_MAX:
        raise InvalidArgument(f"the auth store holds {limits.AUTH_USERS_MAX} users already",
                              "AUTH_USERS_MAX")
    state.users[name] = User(salt=salt, password_hash=password_hash, generation=state.revision + 1)
    _bump(state)


def _user(state: AuthState, name: str) -> User:
    user = state.users.get(name)
    if user is None:
        raise NotFound(f"user {name!r} does not exist")
    return user


def delete_user(state: AuthState, name: str) -> None:
    _user(state, name)
    if state.enabled and name == ROOT_USER:
        raise FailedPrecondition("the root user cannot be deleted while auth is enabled; disable auth first")
    del state.users[name]
    _bump(state)


def set_password(state: AuthState, name: str, salt: bytes, password_hash: bytes) -> None:
    user = _user(state, name)
    user.salt, user.password_hash = salt, password_hash
    user.generation = state.revision + 1  # tokens issued under the old password end now
    _bump(state)


def add_role(state: AuthState, role: str) -> None:
    check_name("role", role)
    if role in state.roles or role == ROOT_ROLE:
        raise AlreadyExists(f"role {role!r} already exists")
    if len(state.roles) >= limits.AUTH_ROLES_MAX:
        raise InvalidArgument(f"the auth store holds {limits.AUTH_ROLES_MAX} roles already", "AUTH_ROLES_MAX")
    state.roles[role] = []
    _bump(state)


def _role(state: AuthState, role: str) -> list[Permission]:
    if role not in state.roles:
        raise NotFound(f"role {role!r} does not exist")
    return state.roles[role]


def delete_role(state: AuthState, role: str) -> None:
    _role(state, role)
    del state.roles[role]
    for user in state.users.values():
        user.roles.discard(role)
    _bump(state)


def grant_permission(state: AuthState, role: str, permission: Permission) -> None:
    permissions = _role(state, role)
    if permission in permissions:
        return
    if len(permissions) >= limits.AUTH_PERMISSIONS_PER_ROLE_MAX:
        raise InvalidArgument(f"role {role!r} holds {limits.AUTH_PERMISSIONS_PER_ROLE_MAX} permissions already",
                              "AUTH_PERMISSIONS_PER_ROLE_MAX")
    permissions.append(permission)
    _bump(state)


def revoke_permission(state: AuthState, role: str, permission: Permission) -> None:
    permissions = _role(state, role)
    if permission not in permissions:
        raise NotFound(f"role {role!r} does not grant {permission.describe()}")
    permissions.remove(permission)
    _bump(state)


def grant_role(state: AuthState, name: str, role: str) -> None:
    user = _user(state, name)
    if role != ROOT_ROLE:
        _role(state, role)
    if len(user.roles) >= limits.AUTH_ROLES_PER_USER_MAX:
        raise InvalidArgument(f"user {name!r} holds {limits.AUTH_ROLES_PER_USER_MAX} roles already",
                              "AUTH_ROLES_PER_USER_MAX")
    user.roles.add(role)
    _bump(state)


def revoke_role(state: AuthState, name: str, role: str) -> None:
    user = _user(state, name)
    if role not in user.roles:
        raise NotFound(f"user {name!r} does not hold role {role!r}")
    if state.enabled and name == ROOT_USER and role == ROOT_ROLE:
        raise FailedPrecondition("the root user keeps the root role while auth is enabled")
    user.roles.discard(role)
    _bump(state)


def enable(state: AuthState, token_key: bytes) -> None:
    """Turns auth on; requires a root user holding the root role (etcd's rule)."""
    root = state.users.get(ROOT_USER)
    if root is None or ROOT_ROLE not in root.roles or not root.password_hash:
        raise FailedPrecondition("auth needs a user 'root' with a password and the role 'root' first: "
                                 "`tandemkv user add root`, then `tandemkv user grant-role root root`")
    if len(token_key) != limits.AUTH_TOKEN_KEY_BYTES:
        raise InvalidArgument(f"the token key must be {limits.AUTH_TOKEN_KEY_BYTES} bytes")
    state.enabled, state.token_key = True, bytes(token_key)
    _bump(state)


def disable(state: AuthState) -> None:
    state.enabled = False
    _bump(state)


# -- tokens --

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(state: AuthState, body: str) -> str:
    return _b64(hmac.new(state.token_key, body.encode(), hashlib.sha256).digest())


def issue_token(state: AuthState, name: str, now_ms: int) -> str:
    user = _user(state, name)
    if not state.enabled:
        raise FailedPrecondition("auth is not enabled; no token is needed")
    body = f"{_b64(name.encode())}.{now_ms + limits.AUTH_TOKEN_TTL_MS}.{user.generation}"
    return f"{body}.{_signature(state, body)}"


def verify_token(state: AuthState, token: str, now_ms: int) -> str:
    """The user a token names, or Unauthenticated saying why not."""
    parts = token.split(".")
    if len(parts) != 4 or not state.enabled:
        raise Unauthenticated("the token is malformed; authenticate again")
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_signature(state, body), parts[3]):
        raise Unauthenticated("the token's signature does not match; authenticate again")
    try:
        name = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
        expiry_ms, generation = int(parts[1]), int(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise Unauthenticated("the token is malformed; authenticate again") from None
    if now_ms >= expiry_ms:
        raise Unauthenticated("the token has expired; authenticate again")
    user = state.users.get(name)
    if user is None or user.generation != generation:
        raise Unauthenticated(f"user {name!r} was deleted or its password changed; authenticate again")
    return name


# -- authorization --

def permissions_of(state: AuthState, name: str) -> Iterable[Permission]:
    user = state.users.get(name)
    for role in sorted(user.roles) if user else ():
        yield from state.roles.get(role, ())


def is_root(state: AuthState, name: str) -> bool:
    user = state.users.get(name)
    return user is not None and ROOT_ROLE in user.roles


def require_signed_in(state: AuthState, name: str | None) -> None:
    """Unauthenticated unless a known user makes the call (auth enabled)."""
    if not state.enabled:
        return
    if name is None:
        raise Unauthenticated(SIGN_IN_HINT)
    if name not in state.users:
        raise Unauthenticated(f"user {name!r} no longer exists; authenticate again")


def authorize(state: AuthState, name: str | None, kind: str, resource: bytes, mode: str) -> None:
    """Nothing when allowed (or auth is off); Unauthenticated without a user;
    PermissionDenied naming the missing permission otherwise."""
    if not state.enabled:
        return
    require_signed_in(state, name)
    if is_root(state, name):
        return
    if any(p.covers(kind, resource, mode) for p in permissions_of(state, name)):
        return
    raise PermissionDenied(f"user {name!r} lacks {mode} on {kind} prefix {resource!r}")


def _prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key starting with prefix (None: no end)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


def authorize_range(state: AuthState, name: str | None, kind: str, start: bytes, end: bytes | None,
                    mode: str) -> None:
    """Like `authorize` for the names [start, end) (end None: to the last):
    allowed when one permission's prefix covers the whole range."""
    if not state.enabled or (name is not None and is_root(state, name)):
        return
    for p in permissions_of(state, name or ""):
        if p.kind != kind or not start.startswith(p.prefix):
            continue
        if not (p.mode == mode or p.mode == "write"):
            continue
        limit = _prefix_end(p.prefix)
        if limit is None or (end is not None and end <= limit):
            return
    require_signed_in(state, name)
    upto = "the last" if end is None else repr(end)
    raise PermissionDenied(f"user {name!r} lacks {mode} on {kind} range [{start!r}, {upto})")


def require_root(state: AuthState, name: str | None, what: str = "user and role changes") -> None:
    """User and role administration, and every call no permission names:
    root only (while auth is enabled). `what` says what needs it."""
    if not state.enabled:
        return
    if name is None:
        raise Unauthenticated(f"auth is enabled: {what} need the root user's token")
    require_signed_in(state, name)
    if not is_root(state, name):
        raise PermissionDenied(f"user {name!r} lacks the root role, which {what} need")


# -- the stored form (one record in the view, the same bytes on every member) --

def encode(state: AuthState) -> bytes:
    doc = {
        "enabled": state.enabled, "revision": state.revision, "token_key": state.token_key.hex(),
        "users": {n: {"salt": u.salt.hex(), "hash": u.password_hash.hex(), "roles": sorted(u.roles),
                      "generation": u.generation} for n, u in sorted(state.users.items())},
        "roles": {r: [[p.kind, p.prefix.hex(), p.mode] for p in ps] for r, ps in sorted(state.roles.items())},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode(data: bytes) -> AuthState:
    if not data:
        return AuthState()
    doc = json.loads(data)
    return AuthState(
        enabled=doc["enabled"], revision=doc["revision"], token_key=bytes.fromhex(doc["token_key"]),
        users={n: User(bytes.fromhex(u["salt"]), bytes.fromhex(u["hash"]), set(u["roles"]), u["generation"])
               for n, u in doc["users"].items()},
        roles={r: [Permission(k, bytes.fromhex(p), m) for k, p, m in ps] for r, ps in doc["roles"].items()},
    )
