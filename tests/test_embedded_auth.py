"""`node.auth` on embedded nodes: three members in this process.

Covers the front door the gRPC tests reach only through the servicer: the
blocking calls, a change made on a follower and authenticated on another
member, the lists, a password that travels as a hash (the stored command
holds no password), and the bound on password hashings in flight.

Method: the `Cluster` harness of test_embedded_node.py; every wait has a
deadline.
"""

from __future__ import annotations

import threading

import pytest

from tandemkv import limits
from tandemkv.errors import AlreadyExists, FailedPrecondition, InvalidArgument, ResourceExhausted, Unauthenticated
from tandemkv.server.node.auth import permission
from tandemkv.server.strong import auth
from tandemkv.v1 import auth_pb2
from tests.test_embedded_node import Cluster

CALL_S = 15


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop()


def test_changes_on_a_follower_and_a_token_from_another_member(cluster):
    leader = cluster.leader()
    follower, other = [n for n in cluster.nodes.values() if n is not leader]
    follower.auth.user_add("root", "pw", timeout_s=CALL_S)
    follower.auth.user_grant_role("root", "root", timeout_s=CALL_S)
    follower.auth.role_add("app", timeout_s=CALL_S)
    follower.auth.role_grant_permission("app", "queue", b"q/", "read", timeout_s=CALL_S)
    with pytest.raises(AlreadyExists):
        follower.auth.role_add("app", timeout_s=CALL_S)
    with pytest.raises(FailedPrecondition, match="auth is not enabled"):
        other.auth.authenticate("root", "pw", timeout_s=CALL_S)
    revision = leader.auth.enable(timeout_s=CALL_S).auth_revision
    answer = other.auth.authenticate("root", "pw", timeout_s=CALL_S)
    assert auth.verify_token(other.auth.state(), answer.token, answer.expires_at_ms - 1) == "root"
    with pytest.raises(Unauthenticated, match="unknown user or wrong password"):
        other.auth.authenticate("root", "wrong", timeout_s=CALL_S)
    roles = other.auth.roles(timeout_s=CALL_S)
    assert roles.auth_revision == revision
    assert list(roles.roles[0].permissions) == [permission("queue", b"q/", "read")]
    users = other.auth.users(timeout_s=CALL_S)
    assert [(u.user, list(u.roles), u.has_password) for u in users.users] == [("root", ["root"], True)]
    assert other.auth.status().enabled


def test_the_stored_user_holds_a_salted_hash_not_the_password(cluster):
    node = cluster.leader()
    node.auth.user_add("app", "correct horse", timeout_s=CALL_S)
    node.auth.user_add("cert-only", timeout_s=CALL_S)
    state = node.auth.state()
    app = state.users["app"]
    assert len(app.salt) == limits.AUTH_SALT_BYTES and b"correct horse" not in auth.encode(state)
    assert app.password_hash == auth.hash_password("correct horse", app.salt)
    assert not state.users["cert-only"].password_hash
    with pytest.raises(InvalidArgument, match="password must be"):
        node.auth.change("user_password", user="app", password="", timeout_s=CALL_S)
    with pytest.raises(InvalidArgument, match="auth change 'nonsense' is unknown"):
        node.auth.change("nonsense", timeout_s=CALL_S)


def test_hashings_beyond_the_limit_are_refused(cluster):
    node = cluster.leader()
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold():
        started.release()
        release.wait(CALL_S)

    holders = [threading.Thread(target=node.auth._hashing, args=(hold,))
               for _ in range(limits.AUTH_HASHINGS_IN_FLIGHT_MAX)]
    for thread in holders:
        thread.start()
    for _ in holders:
        assert started.acquire(timeout=CALL_S)
    try:
        with pytest.raises(ResourceExhausted, match="AUTH_HASHINGS_IN_FLIGHT_MAX"):
            node.auth.user_add("late", "pw", timeout_s=CALL_S)
    finally:
        release.set()
        for thread in holders:
            thread.join(CALL_S)
    assert node.auth.user_add("late", "pw", timeout_s=CALL_S).auth_revision == 1
    assert isinstance(node.auth.status(), auth_pb2.AuthStatusResponse)
