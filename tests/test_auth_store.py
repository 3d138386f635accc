"""Auth changes applied by the state machine (server/strong/auth_store.py),
over the in-memory view and the LMDB view alike: each change bumps the
auth revision and is stored; errors are results with their own codes
(exists, not found, precondition, invalid) and leave the store as it was;
a retried change (same request id) applies once; a replayed entry is
skipped; the store travels in a snapshot image to a new member's state.

Method: AuthChange commands built as node.auth builds them (salts, hashes
and the token key fixed here, as the proposer would carry them), applied
at increasing indexes through `apply_entry`.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tandemkv.server.storage import snapshot
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong import auth, auth_store
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import auth_pb2, raft_pb2
from tests.support.applier import Applier, make_view

SALT = b"s" * limits.AUTH_SALT_BYTES
TOKEN_KEY = b"k" * limits.AUTH_TOKEN_KEY_BYTES


@pytest.fixture(scope="module")
def password_hash():
    return auth.hash_password("pw", SALT)


@pytest.fixture(params=["memory", "lmdb"])
def sm(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def change(kind: str, request_id: bytes = b"", **fields) -> raft_pb2.AuthChange:
    body = raft_pb2.AuthChange(request_id=request_id)
    getattr(body, kind).CopyFrom(getattr(body, kind).__class__(**fields))
    return body


def bootstrap(sm: Applier, password_hash: bytes) -> None:
    sm.write(change("user_add", user="root", salt=SALT, password_hash=password_hash))
    sm.write(change("user_grant_role", user="root", role="root"))
    sm.write(change("role_add", role="app"))
    sm.write(change("role_grant_permission", role="app", permission=auth_pb2.Permission(
        kind=auth_pb2.RESOURCE_KEY, prefix=b"app/", mode=auth_pb2.ACCESS_WRITE)))
    sm.write(change("user_add", user="app", salt=SALT, password_hash=password_hash))
    sm.write(change("user_grant_role", user="app", role="app"))


def test_changes_bump_the_revision_and_are_stored(sm, password_hash):
    bootstrap(sm, password_hash)
    enabled = sm.write(change("enable", token_key=TOKEN_KEY))
    assert enabled.auth_revision == 7 and enabled.header.revision == sm.index
    store = auth_store.load(sm.view)
    assert store.enabled and store.token_key == TOKEN_KEY and auth_store.stored_revision(sm.view) == 7
    assert store.users["app"].roles == {"app"}
    assert store.roles["app"] == [auth.Permission("key", b"app/", "write")]
    auth.verify_password(store, "app", "pw")
    token = auth.issue_token(store, "app", 1_000)
    assert auth.verify_token(store, token, 2_000) == "app"


def test_errors_are_results_with_their_codes_and_change_nothing(sm, password_hash):
    bootstrap(sm, password_hash)
    before = auth_store.stored_revision(sm.view)
    with pytest.raises(AlreadyExists, match="user 'app' already exists"):
        sm.write(change("user_add", user="app"))
    with pytest.raises(NotFound, match="role 'ghost' does not exist"):
        sm.write(change("user_grant_role", user="app", role="ghost"))
    with pytest.raises(NotFound):
        sm.write(change("role_revoke_permission", role="app", permission=auth_pb2.Permission(
            kind=auth_pb2.RESOURCE_QUEUE, mode=auth_pb2.ACCESS_READ)))
    with pytest.raises(InvalidArgument, match="permission kind 99"):
        sm.write(change("role_grant_permission", role="app", permission=auth_pb2.Permission(
            kind=99, mode=auth_pb2.ACCESS_READ)))
    with pytest.raises(InvalidArgument, match="token key"):
        sm.write(change("enable", token_key=b"short"))
    with pytest.raises(InvalidArgument, match="names no change"):
        sm.write(raft_pb2.AuthChange())
    sm.write(change("enable", token_key=TOKEN_KEY))
    with pytest.raises(FailedPrecondition, match="root user cannot be deleted"):
        sm.write(change("user_delete", user="root"))
    assert auth_store.stored_revision(sm.view) == before + 1


def test_enabling_needs_a_root_user_with_a_password(sm):
    with pytest.raises(FailedPrecondition, match="user 'root'"):
        sm.write(change("enable", token_key=TOKEN_KEY))
    assert not auth_store.load(sm.view).enabled


def test_a_retried_change_applies_once_and_a_replayed_entry_is_skipped(sm, password_hash):
    request_id = b"r" * limits.REQUEST_ID_BYTES
    first = sm.write(change("role_add", request_id, role="ops"), request_id=request_id)
    again = sm.write(change("role_add", request_id, role="ops"), request_id=request_id)
    assert again == first and auth_store.stored_revision(sm.view) == 1
    command = raft_pb2.Command(format_version=1, ts_ms=1, auth_change=change("role_add", role="dev"))
    assert apply_entry_at(sm, sm.index, command.SerializeToString()) is None
    assert "dev" not in auth_store.load(sm.view).roles


def apply_entry_at(sm: Applier, index: int, command: bytes):
    from tandemkv.server.strong.state_machine import apply_entry
    return apply_entry(sm.view, index, command)


def test_the_store_travels_in_a_snapshot(tmp_path, password_hash):
    source = StateStore(tmp_path / "a", map_size_bytes=64 << 20)
    target = StateStore(tmp_path / "b", map_size_bytes=64 << 20)
    try:
        source.begin_batch()
        sm = Applier(source.batch_view())
        bootstrap(sm, password_hash)
        sm.write(change("enable", token_key=TOKEN_KEY))
        source.commit_batch()
        path = str(tmp_path / "snapshot")
        snapshot.write_snapshot(path, source, (b"last", sm.index, 1), (b"prev", sm.index - 1, 1), ["a", "b"])
        snapshot.read_snapshot(path, target)
        with target.read_view() as view:
            restored = auth_store.load(view)
        with source.read_view() as view:
            assert auth.encode(restored) == auth.encode(auth_store.load(view))
        assert restored.enabled and "app" in restored.users
    finally:
        source.close()
        target.close()


def test_an_empty_view_holds_auth_off():
    view = MemoryView()
    assert not auth_store.load(view).enabled and auth_store.stored_revision(view) == 0
