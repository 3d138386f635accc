"""The call gate (server/api/auth_calls.py) on the pure auth store: bearer
metadata, certificate CNs, the KV rules with ranges, root-only methods, the
per-revision cache refusing a revoked user at its next call, and expiry."""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import PermissionDenied, Unauthenticated
from tandemkv.server.api.auth_calls import AuthGate, credentials
from tandemkv.server.strong import auth
from tandemkv.v1 import kv_pb2

SALT = b"s" * limits.AUTH_SALT_BYTES


@pytest.fixture(scope="module")
def password_hash():
    return auth.hash_password("pw", SALT)


@pytest.fixture
def world(password_hash):
    store = auth.AuthState()
    for name in ("root", "app"):
        auth.add_user(store, name, SALT, password_hash)
    auth.grant_role(store, "root", auth.ROOT_ROLE)
    auth.add_role(store, "app-rw")
    auth.grant_permission(store, "app-rw", auth.make_permission("key", b"app/", "write"))
    auth.grant_role(store, "app", "app-rw")
    auth.enable(store, b"k" * limits.AUTH_TOKEN_KEY_BYTES)
    clock = {"now": 1_000}
    gate = AuthGate(lambda: store, lambda: clock["now"])
    return store, gate, clock


def _bearer(token):
    return (("authorization", f"Bearer {token}"),)


def test_rules_by_method_and_request(world):
    store, gate, _ = world
    md = _bearer(auth.issue_token(store, "app", 1_000))
    assert gate.check("/tandemkv.v1.KV/Put", kv_pb2.PutRequest(key=b"app/1"), md) == "app"
    assert gate.check("/tandemkv.v1.KV/Range",
                      kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"app/", prefix=True)), md) == "app"
    with pytest.raises(PermissionDenied, match=r"write on key prefix b'other'"):
        gate.check("/tandemkv.v1.KV/Put", kv_pb2.PutRequest(key=b"other"), md)
    with pytest.raises(PermissionDenied, match="range"):
        gate.check("/tandemkv.v1.KV/Range",
                   kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"app/", range_end=b"\0")), md)
    with pytest.raises(PermissionDenied, match="root role"):
        gate.check("/tandemkv.v1.Auth/UserAdd", None, md)
    with pytest.raises(Unauthenticated, match="Bearer TOKEN"):
        gate.check("/tandemkv.v1.KV/Get", kv_pb2.GetRequest(key=b"app/1"), ())
    assert gate.check("/tandemkv.v1.Auth/Authenticate", None, ()) is None


def test_certificate_cn_names_a_user(world):
    _, gate, _ = world
    assert gate.check("/tandemkv.v1.KV/Get", kv_pb2.GetRequest(key=b"app/1"), (), "app") == "app"
    with pytest.raises(Unauthenticated):
        gate.check("/tandemkv.v1.KV/Get", kv_pb2.GetRequest(key=b"app/1"), (), "stranger")


def test_revoked_user_refused_at_next_call_and_token_expiry(world):
    store, gate, clock = world
    md = _bearer(auth.issue_token(store, "app", 1_000))
    put = kv_pb2.PutRequest(key=b"app/1")
    assert gate.check("/tandemkv.v1.KV/Put", put, md) == "app"
    auth.revoke_role(store, "app", "app-rw")
    with pytest.raises(PermissionDenied):
        gate.check("/tandemkv.v1.KV/Put", put, md)
    auth.grant_role(store, "app", "app-rw")
    auth.delete_user(store, "app")
    with pytest.raises(Unauthenticated, match="deleted"):
        gate.check("/tandemkv.v1.KV/Put", put, md)
    md = _bearer(auth.issue_token(store, "root", 1_000))
    assert gate.check("/tandemkv.v1.KV/Put", put, md) == "root"
    clock["now"] = 1_000 + limits.AUTH_TOKEN_TTL_MS
    with pytest.raises(Unauthenticated, match="expired"):
        gate.check("/tandemkv.v1.KV/Put", put, md)


def test_malformed_authorization_header():
    with pytest.raises(Unauthenticated, match="Bearer TOKEN"):
        credentials((("authorization", "Basic abc"),))
    assert credentials((("other", "x"),)) is None


def test_every_rule_names_a_real_method_and_field(world):
    """A rule for a renamed method or field would open or close the wrong call."""
    import importlib
    from tandemkv.server.api.auth_calls import RULES, _by_job_id
    store, gate, _ = world
    md = _bearer(auth.issue_token(store, "root", 1_000))
    for path, rule in RULES.items():
        service, method = path.rsplit("/", 1)
        name = service.split(".")[-1]
        for module in ("kv", "coordination", "crdt", "pubsub", "jobs", "watch"):
            pb = importlib.import_module(f"tandemkv.v1.{module}_pb2")
            if name in pb.DESCRIPTOR.services_by_name:
                descriptor = pb.DESCRIPTOR.services_by_name[name].methods_by_name[method]
                request = pb.__dict__.get(descriptor.input_type.name)()
                break
        else:
            raise AssertionError(f"no service for {path}")
        assert gate.check(path, request, md) == "root"
        if rule.names is _by_job_id:
            job_id = request.DESCRIPTOR.fields_by_name["id"]
            assert job_id.type == job_id.TYPE_UINT64
        else:
            rule.names(request)


def test_job_calls_by_id_are_checked_against_the_queue_the_job_belongs_to(password_hash):
    from tandemkv.v1 import jobs_pb2
    store = auth.AuthState()
    for name in ("root", "worker"):
        auth.add_user(store, name, SALT, password_hash)
    auth.grant_role(store, "root", auth.ROOT_ROLE)
    auth.add_role(store, "mailer")
    auth.grant_permission(store, "mailer", auth.make_permission("queue", b"emails", "write"))
    auth.grant_role(store, "worker", "mailer")
    auth.enable(store, b"k" * limits.AUTH_TOKEN_KEY_BYTES)
    queues = {1: b"emails", 2: b"payroll"}
    gate = AuthGate(lambda: store, lambda: 1_000, job_queue=queues.get)
    worker = _bearer(auth.issue_token(store, "worker", 1_000))
    root = _bearer(auth.issue_token(store, "root", 1_000))
    for method, request in (("Complete", jobs_pb2.JobCompleteRequest(id=1, token=7)),
                            ("Fail", jobs_pb2.JobFailRequest(id=1, token=7)),
                            ("Progress", jobs_pb2.JobProgressRequest(id=1, token=7, progress=50)),
                            ("Get", jobs_pb2.JobGetRequest(id=1))):
        assert gate.check(f"/tandemkv.v1.Jobs/{method}", request, worker) == "worker"
    assert gate.check("/tandemkv.v1.Jobs/Heartbeat", jobs_pb2.JobHeartbeatRequest(queue=b"emails"),
                      worker) == "worker"
    with pytest.raises(PermissionDenied, match=r"write on queue prefix b'payroll'"):
        gate.check("/tandemkv.v1.Jobs/Complete", jobs_pb2.JobCompleteRequest(id=2, token=7), worker)
    with pytest.raises(PermissionDenied, match="job 3, which this node does not know"):
        gate.check("/tandemkv.v1.Jobs/Cancel", jobs_pb2.JobCancelRequest(id=3), worker)
    assert gate.check("/tandemkv.v1.Jobs/Cancel", jobs_pb2.JobCancelRequest(id=3), root) == "root"
    # Without a way to look jobs up, calls by id stay root's.
    blind = AuthGate(lambda: store, lambda: 1_000)
    with pytest.raises(PermissionDenied, match="root role"):
        blind.check("/tandemkv.v1.Jobs/Complete", jobs_pb2.JobCompleteRequest(id=1, token=7), worker)
