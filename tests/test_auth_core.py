"""The pure auth store (server/strong/auth.py): a table of (role, operation,
resource) -> allowed or the exact error, tokens, revocation at once, the
bootstrap rule, bad input, and the stored form round-tripping."""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import (FailedPrecondition, InvalidArgument, PermissionDenied,
                             Unauthenticated)
from tandemkv.server.strong import auth

KEY = b"k" * limits.AUTH_TOKEN_KEY_BYTES
NOW_MS = 1_000_000


def _with_user(state, name, password, salt=b"s" * limits.AUTH_SALT_BYTES):
    auth.add_user(state, name, salt, auth.hash_password(password, salt))


@pytest.fixture(scope="module")
def hashed():
    """Hashing is slow by design; hash each password once for the module."""
    salt = b"s" * limits.AUTH_SALT_BYTES
    return {p: auth.hash_password(p, salt) for p in ("rootpw", "apppw", "newpw")}


@pytest.fixture
def state(hashed):
    s = auth.AuthState()
    salt = b"s" * limits.AUTH_SALT_BYTES
    auth.add_user(s, "root", salt, hashed["rootpw"])
    auth.grant_role(s, "root", auth.ROOT_ROLE)
    auth.add_user(s, "app", salt, hashed["apppw"])
    auth.add_role(s, "app-rw")
    auth.grant_permission(s, "app-rw", auth.make_permission("key", b"app/", "write"))
    auth.grant_permission(s, "app-rw", auth.make_permission("lock", b"app-", "read"))
    auth.grant_role(s, "app", "app-rw")
    auth.add_user(s, "nobody", salt, hashed["apppw"])
    auth.enable(s, KEY)
    return s


TABLE = [
    # user, kind, resource, mode -> None (allowed) or (error class, message)
    ("root", "key", b"anything", "write", None),
    ("app", "key", b"app/x", "write", None),
    ("app", "key", b"app/x", "read", None),
    ("app", "key", b"other/x", "read", (PermissionDenied, "user 'app' lacks read on key prefix b'other/x'")),
    ("app", "lock", b"app-1", "read", None),
    ("app", "lock", b"app-1", "write", (PermissionDenied, "user 'app' lacks write on lock prefix b'app-1'")),
    ("app", "topic", b"app/x", "read", (PermissionDenied, "user 'app' lacks read on topic prefix b'app/x'")),
    ("nobody", "key", b"app/x", "read", (PermissionDenied, "user 'nobody' lacks read on key prefix b'app/x'")),
    (None, "key", b"app/x", "read", (Unauthenticated, "auth is enabled")),
    ("ghost", "key", b"app/x", "read", (Unauthenticated, "user 'ghost' no longer exists")),
]


@pytest.mark.parametrize("user,kind,resource,mode,expected", TABLE)
def test_permission_table(state, user, kind, resource, mode, expected):
    if expected is None:
        auth.authorize(state, user, kind, resource, mode)
        return
    error, message = expected
    with pytest.raises(error) as caught:
        auth.authorize(state, user, kind, resource, mode)
    assert caught.value.message.startswith(message)


def test_everything_is_allowed_until_auth_is_enabled():
    s = auth.AuthState()
    auth.authorize(s, None, "key", b"x", "write")
    auth.require_root(s, None)


def test_enabling_requires_a_root_user_with_the_root_role(hashed):
    s = auth.AuthState()
    with pytest.raises(FailedPrecondition, match="user grant-role root root"):
        auth.enable(s, KEY)
    auth.add_user(s, "root", b"s" * 16, hashed["rootpw"])
    with pytest.raises(FailedPrecondition):
        auth.enable(s, KEY)
    auth.grant_role(s, "root", auth.ROOT_ROLE)
    auth.enable(s, KEY)
    assert s.enabled
    with pytest.raises(FailedPrecondition, match="cannot be deleted"):
        auth.delete_user(s, "root")


def test_same_message_for_unknown_user_and_wrong_password(state):
    messages = set()
    for name, password in (("ghost", "apppw"), ("app", "wrong"), ("app", "")):
        with pytest.raises(Unauthenticated) as caught:
            auth.verify_password(state, name, password)
        messages.add(caught.value.message)
    assert messages == {auth.BAD_CREDENTIALS}
    auth.verify_password(state, "app", "apppw")


def test_token_round_trip_expiry_and_tampering(state):
    token = auth.issue_token(state, "app", NOW_MS)
    assert auth.verify_token(state, token, NOW_MS + 1) == "app"
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify_token(state, token, NOW_MS + limits.AUTH_TOKEN_TTL_MS)
    forged = token.replace(token.split(".")[0], auth._b64(b"root"))
    with pytest.raises(Unauthenticated, match="signature"):
        auth.verify_token(state, forged, NOW_MS + 1)
    with pytest.raises(Unauthenticated, match="malformed"):
        auth.verify_token(state, "not-a-token", NOW_MS)


def test_token_survives_a_reload_of_the_stored_form(state):
    token = auth.issue_token(state, "app", NOW_MS)
    reloaded = auth.decode(auth.encode(state))
    assert auth.verify_token(reloaded, token, NOW_MS + 1) == "app"
    assert auth.encode(reloaded) == auth.encode(state)


def test_revoked_user_is_refused_at_once(state, hashed):
    token = auth.issue_token(state, "app", NOW_MS)
    before = state.revision
    auth.revoke_role(state, "app", "app-rw")
    assert state.revision > before
    assert auth.verify_token(state, token, NOW_MS + 1) == "app"
    with pytest.raises(PermissionDenied):
        auth.authorize(state, "app", "key", b"app/x", "read")
    auth.grant_role(state, "app", "app-rw")
    auth.set_password(state, "app", b"t" * 16, hashed["newpw"])
    with pytest.raises(Unauthenticated, match="password changed"):
        auth.verify_token(state, token, NOW_MS + 1)
    token = auth.issue_token(state, "app", NOW_MS)
    auth.delete_user(state, "app")
    with pytest.raises(Unauthenticated, match="deleted"):
        auth.verify_token(state, token, NOW_MS + 1)


def test_bad_input_names_what_to_fix(state):
    with pytest.raises(InvalidArgument, match="not one of key"):
        auth.make_permission("keys", b"", "read")
    with pytest.raises(InvalidArgument, match="read, write"):
        auth.make_permission("key", b"", "rw")
    with pytest.raises(InvalidArgument) as caught:
        auth.add_user(state, "x" * (limits.AUTH_NAME_BYTES_MAX + 1))
    assert caught.value.limit == "AUTH_NAME_BYTES_MAX"
    with pytest.raises(PermissionDenied, match="root role"):
        auth.require_root(state, "app")
