"""Auth on a real 3-node cluster, over raw gRPC with metadata: a table of
(user, call) -> allowed or the exact status and the permission it names,
for KV, registry, lock, election, CRDT, topic and queue calls; a token from
one node accepted by the others and after the leader is killed; a revoked
role, a deleted user and a changed password refused at the next call; the
store surviving a restart of every node; disabling auth opening the
cluster again.

Method: one `ServeCluster` of `tandemkv serve` processes on 127.0.0.1 for
the module; users and roles are made through the Auth service before
enabling (no credentials needed then), exactly as an operator bootstraps.
Every wait polls with a deadline.
"""

from __future__ import annotations

import time

import grpc
import pytest

from tandemkv.v1 import (
    auth_pb2, auth_pb2_grpc, batch_pb2, batch_pb2_grpc, coordination_pb2, coordination_pb2_grpc, counter_pb2,
    counter_pb2_grpc, crdt_pb2, crdt_pb2_grpc, jobs_pb2, jobs_pb2_grpc, kv_pb2, kv_pb2_grpc, lease_pb2,
    lease_pb2_grpc, pubsub_pb2, pubsub_pb2_grpc,
)
from tests.support.cluster import ServeCluster

# Generous: under a heavily loaded machine the nodes alone take most of a minute to start.
LEADER_TIMEOUT_S = 120
CALL_TIMEOUT_S = 20
# How long a change made through one node may take to reach the others.
SPREAD_TIMEOUT_S = 20
OK = "OK"
R, W = auth_pb2.ACCESS_READ, auth_pb2.ACCESS_WRITE

# role -> its permissions (kind, prefix, mode)
ROLES = {
    "app": [(auth_pb2.RESOURCE_KEY, b"app/", W), (auth_pb2.RESOURCE_KEY, b"pub/", R),
            (auth_pb2.RESOURCE_REGISTRY, b"svc/", W), (auth_pb2.RESOURCE_LOCK, b"lk/", W),
            (auth_pb2.RESOURCE_ELECTION, b"el/", W), (auth_pb2.RESOURCE_CRDT, b"tbl", W),
            (auth_pb2.RESOURCE_TOPIC, b"t/", W), (auth_pb2.RESOURCE_QUEUE, b"q/", W)],
    "ro": [(auth_pb2.RESOURCE_KEY, b"app/", R), (auth_pb2.RESOURCE_REGISTRY, b"", R)],
}
USERS = {"app": ["app"], "reader": ["ro"], "nobody": []}
PASSWORD = "s3cret-pw"


class Caller:
    """Raw stubs on one node, sending `authorization: Bearer TOKEN` when given one."""

    def __init__(self, endpoint: str):
        self.channel = grpc.insecure_channel(endpoint)

    def call(self, service: str, method: str, request, token: str | None = None):
        stubs = {"KV": kv_pb2_grpc.KVStub, "Auth": auth_pb2_grpc.AuthStub, "Batch": batch_pb2_grpc.BatchStub,
                 "Registry": coordination_pb2_grpc.RegistryStub, "Lock": coordination_pb2_grpc.LockStub,
                 "Election": coordination_pb2_grpc.ElectionStub, "Crdt": crdt_pb2_grpc.CrdtStub,
                 "PubSub": pubsub_pb2_grpc.PubSubStub, "Jobs": jobs_pb2_grpc.JobsStub,
                 "Lease": lease_pb2_grpc.LeaseStub, "Counter": counter_pb2_grpc.CounterStub}
        stub = stubs[service](self.channel)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        return getattr(stub, method)(request, timeout=CALL_TIMEOUT_S, metadata=metadata)

    def status(self, service: str, method: str, request, token: str | None = None) -> tuple[str, str]:
        """(status name, details) of one call."""
        try:
            self.call(service, method, request, token)
        except grpc.RpcError as error:
            return error.code().name, error.details() or ""
        return OK, ""

    def settled(self, service: str, method: str, request, token: str | None = None):
        """A setup call, tried again while the cluster settles (no leader yet,
        a deadline under load); a change a lost answer had applied counts."""
        deadline = time.monotonic() + LEADER_TIMEOUT_S
        retried = False
        while True:
            try:
                return self.call(service, method, request, token)
            except grpc.RpcError as error:
                if retried and error.code() == grpc.StatusCode.ALREADY_EXISTS:
                    return None
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                        or time.monotonic() > deadline:
                    raise
                retried = True
                time.sleep(0.2)

    def token(self, user: str, password: str = PASSWORD) -> str:
        return self.call("Auth", "Authenticate", auth_pb2.AuthenticateRequest(user=user, password=password)).token


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("auth")) as c:
        c.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
        callers = {m.name: Caller(m.client_address) for m in c.members}
        admin = callers["n1"]
        for name in ("root", *USERS):
            admin.settled("Auth", "UserAdd", auth_pb2.UserAddRequest(user=name, password=PASSWORD))
        admin.settled("Auth", "UserGrantRole", auth_pb2.UserRoleRequest(user="root", role="root"))
        for role, permissions in ROLES.items():
            admin.settled("Auth", "RoleAdd", auth_pb2.RoleAddRequest(role=role))
            for kind, prefix, mode in permissions:
                admin.settled("Auth", "RoleGrantPermission", auth_pb2.RolePermissionRequest(
                    role=role, permission=auth_pb2.Permission(kind=kind, prefix=prefix, mode=mode)))
        for user, roles in USERS.items():
            for role in roles:
                admin.settled("Auth", "UserGrantRole", auth_pb2.UserRoleRequest(user=user, role=role))
        admin.settled("Crdt", "CreateTable", crdt_pb2.CreateTableRequest(name="tbl", type=crdt_pb2.G_COUNTER))
        admin.settled("KV", "Put", kv_pb2.PutRequest(key=b"app/seed", value=b"v"))
        admin.settled("Auth", "AuthEnable", auth_pb2.AuthEnableRequest())
        assert admin.call("Auth", "AuthStatus", auth_pb2.AuthStatusRequest()).enabled
        yield c, callers


def _wait(condition, what: str, timeout_s: float = SPREAD_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s} s")


def _lease(caller: Caller, token: str) -> int:
    return caller.call("Lease", "Grant", lease_pb2.LeaseGrantRequest(ttl_ms=30_000), token).id


def _table(lease: int):
    """(service, method, request, {user: expected}); expected is OK or
    (status, text the details must hold)."""
    denied = lambda text: ("PERMISSION_DENIED", text)  # noqa: E731
    return [
        ("KV", "Put", kv_pb2.PutRequest(key=b"app/1", value=b"x"),
         {"app": OK, "reader": denied("lacks write on key prefix b'app/1'"), "nobody": denied("write on key")}),
        ("KV", "Get", kv_pb2.GetRequest(key=b"app/seed"), {"app": OK, "reader": OK, "nobody": denied("read")}),
        ("KV", "Put", kv_pb2.PutRequest(key=b"other", value=b"x"), {"app": denied("b'other'")}),
        ("KV", "Get", kv_pb2.GetRequest(key=b"pub/x"), {"app": OK, "reader": denied("read on key prefix b'pub/x'")}),
        ("KV", "Put", kv_pb2.PutRequest(key=b"pub/x", value=b"x"), {"app": denied("write on key prefix b'pub/x'")}),
        ("KV", "Range", kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"app/", prefix=True)),
         {"app": OK, "reader": OK}),
        ("KV", "Range", kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"a", range_end=b"\0")),
         {"app": denied("range"), "reader": denied("range")}),
        ("Batch", "Call", batch_pb2.BatchRequest(ops=[
            batch_pb2.BatchOp(get=kv_pb2.GetRequest(key=b"app/seed")),
            batch_pb2.BatchOp(put=kv_pb2.PutRequest(key=b"zzz", value=b"x"))]),
         {"app": denied("batch op 1: user 'app' lacks write on key prefix b'zzz'"), "reader": denied("batch op 1")}),
        ("Counter", "Incr", counter_pb2.CounterIncrRequest(name=b"c", delta=1),
         {"app": denied("lacks the root role, which calls of /tandemkv.v1.Counter/Incr need")}),
        ("Registry", "Register", coordination_pb2.RegisterRequest(name=b"svc/a", value=b"v", lease=lease),
         {"app": OK, "reader": denied("write on registry prefix b'svc/a'")}),
        ("Registry", "Whereis", coordination_pb2.WhereisRequest(name=b"svc/a"), {"reader": OK, "nobody": denied("registry")}),
        ("Lock", "Acquire", coordination_pb2.LockAcquireRequest(name=b"lk/1", lease=lease),
         {"app": OK, "reader": denied("write on lock prefix b'lk/1'")}),
        ("Lock", "Acquire", coordination_pb2.LockAcquireRequest(name=b"other", lease=lease), {"app": denied("lock")}),
        ("Election", "Campaign", coordination_pb2.CampaignRequest(election=b"el/1", value=b"me", lease=lease),
         {"app": OK, "reader": denied("write on election prefix b'el/1'")}),
        ("Crdt", "Update", crdt_pb2.CrdtUpdateRequest(table="tbl", increment=1),
         {"app": OK, "reader": denied("write on crdt prefix b'tbl'")}),
        ("Crdt", "Read", crdt_pb2.CrdtReadRequest(table="tbl"), {"app": OK, "nobody": denied("read on crdt")}),
        ("Crdt", "CreateTable", crdt_pb2.CreateTableRequest(name="t2", type=crdt_pb2.G_COUNTER),
         {"app": denied("root role")}),
        ("PubSub", "Publish", pubsub_pb2.PublishRequest(topic=b"t/news", payload=b"hi"),
         {"app": OK, "reader": denied("write on topic prefix b't/news'")}),
        ("PubSub", "Publish", pubsub_pb2.PublishRequest(topic=b"x", payload=b"hi"), {"app": denied("topic")}),
        ("Jobs", "Enqueue", jobs_pb2.JobEnqueueRequest(queue=b"q/work", args=b"a"),
         {"app": OK, "reader": denied("write on queue prefix b'q/work'")}),
        ("Jobs", "Stats", jobs_pb2.JobStatsRequest(queue=b"q/work"), {"app": OK, "nobody": denied("read on queue")}),
        ("Auth", "UserAdd", auth_pb2.UserAddRequest(user="x", password="p"),
         {"app": denied("lacks the root role, which user and role changes need")}),
        ("Auth", "UserList", auth_pb2.UserListRequest(), {"reader": denied("root role")}),
    ]


def test_table_of_user_and_call_over_every_member(cluster):
    c, callers = cluster
    names = sorted(callers)
    # Each user authenticates on one node; its token is used on every node.
    tokens = {user: callers[names[k % 3]].token(user) for k, user in enumerate(USERS)}
    lease = _lease(callers["n1"], tokens["app"])
    failures = []
    for row, (service, method, request, expected) in enumerate(_table(lease)):
        for user, want in expected.items():
            node = names[row % 3]
            code, details = callers[node].status(service, method, request, tokens[user])
            ok = code == OK if want == OK else (code == want[0] and want[1] in details)
            if not ok:
                failures.append(f"{user} {service}.{method} on {node}: got {code} {details!r}, want {want}")
    assert not failures, "\n".join(failures)


def test_no_credentials_is_unauthenticated_and_a_bad_password_is_one_message(cluster):
    _, callers = cluster
    caller = callers["n2"]
    code, details = caller.status("KV", "Get", kv_pb2.GetRequest(key=b"app/seed"))
    assert code == "UNAUTHENTICATED" and "Bearer TOKEN" in details
    wrong = caller.status("Auth", "Authenticate", auth_pb2.AuthenticateRequest(user="app", password="nope"))
    unknown = caller.status("Auth", "Authenticate", auth_pb2.AuthenticateRequest(user="ghost", password="nope"))
    assert wrong == unknown and wrong[0] == "UNAUTHENTICATED"
    assert caller.status("KV", "Get", kv_pb2.GetRequest(key=b"app/seed"), "not.a.real.token")[0] == "UNAUTHENTICATED"
    status = caller.call("Auth", "AuthStatus", auth_pb2.AuthStatusRequest(), caller.token("reader"))
    assert status.enabled and status.caller == "reader"


def test_a_revoked_role_a_deleted_user_and_a_new_password_are_refused_at_the_next_call(cluster):
    _, callers = cluster
    admin, other = callers["n1"], callers["n3"]
    root = admin.token("root")
    admin.call("Auth", "UserAdd", auth_pb2.UserAddRequest(user="temp", password=PASSWORD), root)
    admin.call("Auth", "UserGrantRole", auth_pb2.UserRoleRequest(user="temp", role="app"), root)
    token = _wait(lambda: _try_token(other, "temp"), "temp could authenticate on n3")
    get = kv_pb2.GetRequest(key=b"app/seed")
    assert other.status("KV", "Get", get, token) == (OK, "")
    revision = admin.call("Auth", "UserRevokeRole", auth_pb2.UserRoleRequest(user="temp", role="app"), root)
    # The node that applied the change refuses at once; the others once they applied it.
    assert admin.status("KV", "Get", get, token)[0] == "PERMISSION_DENIED"
    _wait(lambda: other.status("KV", "Get", get, token)[0] == "PERMISSION_DENIED", "n3 refused the revoked role")
    assert other.call("Auth", "AuthStatus", auth_pb2.AuthStatusRequest()).auth_revision >= revision.auth_revision
    admin.call("Auth", "UserGrantRole", auth_pb2.UserRoleRequest(user="temp", role="app"), root)
    admin.call("Auth", "UserChangePassword", auth_pb2.UserPasswordRequest(user="temp", password="new-pw"), root)
    code, details = admin.status("KV", "Get", get, token)
    assert code == "UNAUTHENTICATED" and "password changed" in details
    fresh = admin.token("temp", "new-pw")
    assert admin.status("KV", "Get", get, fresh) == (OK, "")
    admin.call("Auth", "UserDelete", auth_pb2.UserDeleteRequest(user="temp"), root)
    assert admin.status("KV", "Get", get, fresh)[0] == "UNAUTHENTICATED"


def _try_token(caller: Caller, user: str, password: str = PASSWORD) -> str | None:
    try:
        return caller.token(user, password)
    except grpc.RpcError:
        return None


def test_tokens_outlive_a_leader_kill_and_auth_a_restart_of_every_node(cluster):
    c, callers = cluster
    token = callers["n2"].token("app")
    leader = c.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
    c.kill(leader)
    survivors = [m.name for m in c.members if m.name != leader]
    c.wait_for_leader(timeout_s=LEADER_TIMEOUT_S, among=survivors)
    put = kv_pb2.PutRequest(key=b"app/after-kill", value=b"v")
    _wait(lambda: callers[survivors[0]].status("KV", "Put", put, token) == (OK, ""), "a write with the old token")
    assert callers[survivors[1]].status("KV", "Put", kv_pb2.PutRequest(key=b"nope", value=b"v"), token)[0] \
        == "PERMISSION_DENIED"
    c.restart(leader)
    for member in c.members:
        if member.name != leader:
            assert c.stop_node(member.name) == 0
            c.restart(member.name)
    c.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
    # Tokens are signed with the stored key, so one from before the restarts still works.
    _wait(lambda: callers[leader].status("KV", "Get", kv_pb2.GetRequest(key=b"app/after-kill"), token) == (OK, ""),
          "a read with the old token after every node restarted")
    code, _ = callers[leader].status("KV", "Get", kv_pb2.GetRequest(key=b"app/seed"))
    assert code == "UNAUTHENTICATED"
    users = callers[leader].call("Auth", "UserList", auth_pb2.UserListRequest(), callers[leader].token("root"))
    assert {"root", "app", "reader", "nobody"} <= {u.user for u in users.users}


def test_a_worker_with_write_on_a_queue_settles_its_jobs_by_id_and_no_other_queues(cluster):
    _, callers = cluster
    n1, n2 = callers["n1"], callers["n2"]
    app, root = n1.token("app"), n1.token("root")
    mine = n1.settled("Jobs", "Enqueue", jobs_pb2.JobEnqueueRequest(queue=b"q/settle", args=b"a"), app).id
    theirs = n1.settled("Jobs", "Enqueue", jobs_pb2.JobEnqueueRequest(queue=b"payroll", args=b"b"), root).id
    lease = _lease(n1, app)
    claimed = n1.settled("Jobs", "Claim", jobs_pb2.JobClaimRequest(queue=b"q/settle", lease=lease, limit=1), app)
    assert [job.id for job in claimed.jobs] == [mine]
    # Another member checks the job's queue as it applied it.
    _wait(lambda: n2.status("Jobs", "Get", jobs_pb2.JobGetRequest(id=mine), app) == (OK, ""),
          "n2 answered app's Get of its job")
    n2.call("Jobs", "Progress", jobs_pb2.JobProgressRequest(id=mine, token=claimed.jobs[0].token, progress=50), app)
    done = n2.call("Jobs", "Complete", jobs_pb2.JobCompleteRequest(id=mine, token=claimed.jobs[0].token), app)
    assert done.job.state == jobs_pb2.JOB_COMPLETED
    for method, request in (("Cancel", jobs_pb2.JobCancelRequest(id=theirs)),
                            ("Get", jobs_pb2.JobGetRequest(id=theirs))):
        code, details = n1.status("Jobs", method, request, app)
        assert code == "PERMISSION_DENIED" and "on queue prefix b'payroll'" in details, (method, details)
    assert n1.status("Jobs", "Cancel", jobs_pb2.JobCancelRequest(id=theirs), root) == (OK, "")


def test_disabling_auth_opens_every_call_again(cluster):
    _, callers = cluster
    admin = callers["n1"]
    root = _wait(lambda: _try_token(admin, "root"), "root authenticated")
    assert admin.status("Auth", "AuthDisable", auth_pb2.AuthDisableRequest(), callers["n1"].token("app"))[0] \
        == "PERMISSION_DENIED"
    admin.call("Auth", "AuthDisable", auth_pb2.AuthDisableRequest(), root)
    _wait(lambda: callers["n3"].status("Counter", "Incr", counter_pb2.CounterIncrRequest(name=b"c", delta=1))
          == (OK, ""), "an anonymous call on n3 after disabling")
    code, details = admin.status("Auth", "Authenticate", auth_pb2.AuthenticateRequest(user="app", password=PASSWORD))
    assert code == "FAILED_PRECONDITION" and "not enabled" in details

