"""Auth changes are exactly once, like every write: the state machine
answers a change sent again with the same request id as it answered the
first time and applies nothing more; the node puts the caller's request id
on the Raft command (and refuses a malformed one before hashing anything);
the SDK draws one id per call and sends it on every retry, so a change whose
answer was lost is retried rather than left unknown.

Method: AuthChange commands applied by the pure state machine through
`Applier` (in memory and over LMDB); the node's command builder called
directly, and `NodeAuth` over a node that must never be asked to propose;
the SDK's retry core driven by hand, action by action, as in
tests/test_client_core.py.
"""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import AlreadyExists, InvalidArgument
from tandemkv.client import _auth as sdk_auth
from tandemkv.server.node import auth as node_auth
from tandemkv.server.strong import auth_store
from tandemkv.v1 import auth_pb2, raft_pb2
from tests.support.applier import Applier, make_view
from tests.test_client_core import leader_call, next_attempt, not_applied, router_led_by, timed_out

FIRST_ID = b"1" * limits.REQUEST_ID_BYTES
OTHER_ID = b"2" * limits.REQUEST_ID_BYTES
# A retrying node hashes the password again under a fresh salt: the retry's
# command differs from the first one's, and must still not apply.
FIRST_SALT, RETRY_SALT = b"a" * limits.AUTH_SALT_BYTES, b"b" * limits.AUTH_SALT_BYTES


@pytest.fixture(params=["memory", "lmdb"])
def sm(request, tmp_path):
    with make_view(request.param, tmp_path) as view:
        yield Applier(view)


def user_add(request_id: bytes, salt: bytes) -> raft_pb2.AuthChange:
    change = raft_pb2.AuthChange(request_id=request_id)
    change.user_add.CopyFrom(raft_pb2.AuthUserSecret(user="alice", salt=salt, password_hash=b"h" * 32))
    return change


def test_the_same_request_id_twice_answers_the_first_result_and_applies_one_change(sm):
    first = sm.write(user_add(FIRST_ID, FIRST_SALT), request_id=FIRST_ID)
    again = sm.write(user_add(FIRST_ID, RETRY_SALT), request_id=FIRST_ID)
    assert again == first and first.auth_revision == 1
    stored = auth_store.load(sm.view)
    assert stored.revision == 1 and stored.users["alice"].salt == FIRST_SALT


def test_a_different_request_id_gets_the_usual_refusal(sm):
    sm.write(user_add(FIRST_ID, FIRST_SALT), request_id=FIRST_ID)
    with pytest.raises(AlreadyExists, match="alice"):
        sm.write(user_add(OTHER_ID, RETRY_SALT), request_id=OTHER_ID)
    assert auth_store.stored_revision(sm.view) == 1


def test_a_refusal_is_answered_again_to_its_retry_even_once_the_change_would_apply(sm):
    delete = raft_pb2.AuthChange(request_id=OTHER_ID)
    delete.user_delete.user = "alice"
    with pytest.raises(Exception, match="alice") as first:
        sm.write(delete, request_id=OTHER_ID)
    sm.write(user_add(FIRST_ID, FIRST_SALT), request_id=FIRST_ID)
    with pytest.raises(type(first.value), match="alice"):
        sm.write(delete, request_id=OTHER_ID)
    assert "alice" in auth_store.load(sm.view).users


@pytest.mark.parametrize("kind, fields", [
    ("user_add", {"user": "alice", "password": ""}), ("user_delete", {"user": "alice"}),
    ("user_grant_role", {"user": "alice", "role": "ops"}), ("role_add", {"role": "ops"}),
    ("role_grant_permission", {"role": "ops", "permission": auth_pb2.Permission(kind=auth_pb2.RESOURCE_KEY)}),
    ("enable", {}), ("disable", {}),
])
def test_the_node_puts_the_callers_request_id_on_the_command_and_only_there(kind, fields):
    change = node_auth._build(kind, {**fields, "request_id": OTHER_ID}, None, FIRST_ID)
    assert change.request_id == FIRST_ID
    body = getattr(change, kind)
    assert "request_id" not in body.DESCRIPTOR.fields_by_name or body.request_id == b""
    assert node_auth._build(kind, fields, None).request_id == b""  # none given: node.propose draws one


class _NeverProposes:
    _state = None

    def propose(self, *args, **kwargs):
        raise AssertionError("a malformed request id reached the log")


@pytest.mark.parametrize("request_id", [b"x", b"x" * (limits.REQUEST_ID_BYTES + 1)])
def test_a_malformed_request_id_is_refused_naming_the_field_before_any_hashing(request_id, monkeypatch):
    hashed: list[str] = []
    monkeypatch.setattr(node_auth, "_secret", lambda password: hashed.append(password) or (b"", b""))
    auth = node_auth.NodeAuth(_NeverProposes())
    with pytest.raises(InvalidArgument, match=r"request_id is \d+ bytes; it must be empty or exactly REQUEST_ID_BYTES"):
        auth.change("user_add", request_id=request_id, user="alice", password="a-long-password")
    assert hashed == []


CHANGES = [
    sdk_auth.user_add("alice", "pw"), sdk_auth.user_delete("alice"), sdk_auth.user_change_password("alice", "pw"),
    sdk_auth.user_role("UserGrantRole", "alice", "ops"), sdk_auth.user_role("UserRevokeRole", "alice", "ops"),
    sdk_auth.role_add("ops"), sdk_auth.role_delete("ops"),
    sdk_auth.role_permission("RoleGrantPermission", "ops", "read", "key", "app/"),
    sdk_auth.role_permission("RoleRevokePermission", "ops", "read", "key", "app/"),
    sdk_auth.auth_enable(), sdk_auth.auth_disable(),
]


def test_every_sdk_auth_change_draws_its_own_request_id_and_may_be_retried():
    ids = [operation.request_id for operation in CHANGES]
    assert all(len(request_id) == limits.REQUEST_ID_BYTES for request_id in ids)
    assert len(set(ids)) == len(ids)
    assert all(operation.write and operation.idempotent for operation in CHANGES)


def test_retries_of_one_auth_change_carry_one_request_id_and_end_with_its_answer():
    trace = leader_call(sdk_auth.user_add("alice", "pw"), router_led_by("a:1"))
    first = trace.next()
    second = next_attempt(trace, trace.fail(timed_out()))  # the answer was lost: outcome unknown
    third = next_attempt(trace, trace.fail(not_applied()))
    assert trace.answer(auth_pb2.AuthChangeResponse(auth_revision=7)) is None
    assert trace.walk.result == 7
    sent = [action.operation.request.request_id for action in (first, second, third)]
    assert len(set(sent)) == 1 and len(sent[0]) == limits.REQUEST_ID_BYTES
    assert [action.operation.method for action in (first, second, third)] == ["UserAdd"] * 3
