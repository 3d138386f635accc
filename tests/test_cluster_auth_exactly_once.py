"""Auth changes are exactly once on a real 3-node cluster: a change whose
first attempt was applied but whose answer was lost answers success when
retried (never ALREADY_EXISTS for the user it just added), through the SDK
and over raw gRPC alike; a different request id gets the usual refusal; a
malformed request id is INVALID_ARGUMENT naming the field.

Method: one `ServeCluster` of `tandemkv serve` processes on 127.0.0.1 for
the module, auth left off (anyone may change users then). The SDK case
runs a `Client` whose first UserAdd attempt reaches the node and is
answered, and then reports DEADLINE_EXCEEDED as a lost answer would; the
client's own retry must end with the first attempt's answer. The raw case
sends one UserAdd request twice. Every call has a deadline; every retry
loop is bounded in attempts and time.
"""

from __future__ import annotations

import time

import grpc
import pytest

from tandemkv import limits
from tandemkv.client import Client
from tandemkv.v1 import auth_pb2, auth_pb2_grpc
from tests.support.cluster import ServeCluster
from tests.test_client_core import FakeRpcError

# Generous: under a heavily loaded machine the nodes alone take most of a minute to start.
LEADER_TIMEOUT_S = 120
CALL_TIMEOUT_S = 20
# A raw call is sent again (same request) while the cluster settles: no leader
# yet, a follower's refusal, a deadline under load.
SETTLE_TIMEOUT_S = 60
SETTLE_PAUSE_S = 0.2
_SETTLING = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("auth-once")) as started:
        started.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
        yield started


class AnswerLostOnce(Client):
    """A client whose first attempt of `method` is sent and answered, and
    then reported as DEADLINE_EXCEEDED: the change applied, its answer lost."""

    def __init__(self, *args, method: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.lost: list[tuple[bytes, object]] = []  # (request id, the answer the caller never saw)
        self.sent_ids: list[bytes] = []

    def _send_plain(self, endpoint, operation, timeout_s):
        answer = super()._send_plain(endpoint, operation, timeout_s)
        if operation.method == self.method:
            self.sent_ids.append(operation.request_id)
            if not self.lost:
                self.lost.append((operation.request_id, answer))
                raise FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded (the answer was lost)")
        return answer


def test_an_sdk_change_whose_answer_was_lost_answers_its_first_result_when_retried(cluster):
    with AnswerLostOnce(cluster.endpoints, method="UserAdd") as client:
        revision = client.auth.user_add("alice", "alice-password")
        (lost_id, lost_answer), = client.lost
        assert revision == lost_answer.auth_revision
        assert len(client.sent_ids) >= 2 and set(client.sent_ids) == {lost_id}
        alices = [info for info in client.auth.user_list()[0] if info.user == "alice"]
        assert len(alices) == 1 and alices[0].has_password


def _settled(endpoints: list[str], method: str, request):
    """`request` sent (unchanged, so with its request id) until a node
    answers it, or the status it was refused with."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    attempt = 0
    while True:
        endpoint = endpoints[attempt % len(endpoints)]
        attempt += 1
        with grpc.insecure_channel(endpoint) as channel:
            try:
                return getattr(auth_pb2_grpc.AuthStub(channel), method)(request, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as error:
                if error.code() not in _SETTLING or time.monotonic() > deadline:
                    return error
        time.sleep(SETTLE_PAUSE_S)


def test_a_raw_change_sent_twice_with_one_request_id_answers_twice_alike_and_applies_once(cluster):
    request = auth_pb2.RoleAddRequest(role="ops", request_id=b"o" * limits.REQUEST_ID_BYTES)
    first = _settled(cluster.endpoints, "RoleAdd", request)
    again = _settled(cluster.endpoints, "RoleAdd", request)
    assert isinstance(first, auth_pb2.AuthChangeResponse), first
    assert again == first
    refused = _settled(cluster.endpoints, "RoleAdd",
                       auth_pb2.RoleAddRequest(role="ops", request_id=b"p" * limits.REQUEST_ID_BYTES))
    assert isinstance(refused, grpc.RpcError) and refused.code() == grpc.StatusCode.ALREADY_EXISTS, refused
    with Client(cluster.endpoints) as client:
        assert [info.role for info in client.auth.role_list()[0]].count("ops") == 1


@pytest.mark.parametrize("method, request_class", [
    ("UserAdd", auth_pb2.UserAddRequest), ("RoleDelete", auth_pb2.RoleDeleteRequest),
    ("AuthEnable", auth_pb2.AuthEnableRequest), ("AuthDisable", auth_pb2.AuthDisableRequest),
])
@pytest.mark.parametrize("request_id", [b"g", b"g" * (limits.REQUEST_ID_BYTES + 1)])
def test_a_malformed_request_id_is_invalid_argument_naming_the_field(cluster, method, request_class, request_id):
    fields = {"UserAdd": {"user": "bob"}, "RoleDelete": {"role": "ops"}}.get(method, {})
    refused = _settled(cluster.endpoints, method, request_class(request_id=request_id, **fields))
    assert isinstance(refused, grpc.RpcError) and refused.code() == grpc.StatusCode.INVALID_ARGUMENT, refused
    assert "request_id" in refused.details() and "REQUEST_ID_BYTES" in refused.details()
