"""The Crdt and Gossip servicers over a fake node, with the node's real
CRDT front door (`NodeCrdt`) over a fake plane: bad input is refused with
the right status before the plane is called, each update becomes the
typed mutation its op names, values and scans come back in the wire
shape."""

from __future__ import annotations

import grpc
import pytest

from tandemkv import errors, limits
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.crdt.mutations import Decrement, Increment, Put, Remove, RemoveKey
from tandemkv.server.available.inbox import Verdict
from tandemkv.server.node.crdt import NodeCrdt
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc


class FakePlane:
    node_name = "fake"

    def __init__(self):
        self.kinds = {"hits": TableKind.PN_COUNTER, "grow": TableKind.G_COUNTER,
                      "online": TableKind.OR_SET, "profile": TableKind.AW_LWW_MAP}
        self.values = {"hits": 4, "grow": 0, "online": [b"a1", b"a2", b"b1"],
                       "profile": {b"k": b"v", b"j": b"w"}}
        self.updates: list[tuple] = []
        self.verdict = Verdict({}, {})

    def tables(self):
        return dict(self.kinds)

    def read(self, table, key=None):
        assert key is None, "the fake holds single-value tables"
        if table not in self.kinds:
            raise errors.NotFound(f"no CRDT table {table!r} on node fake")
        return self.kinds[table], self.values[table]

    def table_kind(self, table):
        return self.read(table)[0]

    def update(self, table, mutation, *, timeout_s, key=None):
        assert key is None, "the fake holds single-value tables"
        self.updates.append((table, mutation))

    def is_keyed(self, table):
        self.read(table)
        return False

    def refresh_catalog(self):
        pass

    def deliver(self, frames):
        return self.verdict


@pytest.fixture(autouse=True)
def crdt_front_door(fake_node):
    fake_node.crdt = NodeCrdt(fake_node)


@pytest.fixture
def plane(fake_node):
    fake_node.available = FakePlane()
    return fake_node.available


@pytest.fixture
def stub(channel):
    return crdt_pb2_grpc.CrdtStub(channel)


def rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=5)
    return raised.value


@pytest.mark.parametrize("request_, code, words", [
    (crdt_pb2.CrdtUpdateRequest(table="hits"), grpc.StatusCode.INVALID_ARGUMENT, "one of"),
    (crdt_pb2.CrdtUpdateRequest(table="", increment=1), grpc.StatusCode.INVALID_ARGUMENT, "CRDT_TABLE_NAME"),
    (crdt_pb2.CrdtUpdateRequest(table="online", add=b"x" * (limits.CRDT_VALUE_BYTES_MAX + 1)),
     grpc.StatusCode.INVALID_ARGUMENT, "CRDT_VALUE_BYTES_MAX"),
    (crdt_pb2.CrdtUpdateRequest(table="hits", add=b"x"), grpc.StatusCode.FAILED_PRECONDITION, "'hits'"),
    (crdt_pb2.CrdtUpdateRequest(table="grow", increment=-1), grpc.StatusCode.FAILED_PRECONDITION, "G_COUNTER"),
    (crdt_pb2.CrdtUpdateRequest(table="ghost", increment=1), grpc.StatusCode.NOT_FOUND, "'ghost'"),
])
def test_a_bad_update_is_refused_and_never_applied(plane, stub, request_, code, words):
    error = rpc_error(stub.Update, request_)
    assert error.code() == code
    assert words in error.details()
    assert plane.updates == []


@pytest.mark.parametrize("request_, applied", [
    (crdt_pb2.CrdtUpdateRequest(table="hits", increment=-3), ("hits", Decrement(3))),
    (crdt_pb2.CrdtUpdateRequest(table="hits", increment=2), ("hits", Increment(2))),
    (crdt_pb2.CrdtUpdateRequest(table="online", remove=b"a1"), ("online", Remove(b"a1"))),
    (crdt_pb2.CrdtUpdateRequest(table="profile", put=crdt_pb2.MapPut(key=b"k", value=b"z")),
     ("profile", Put(b"k", b"z"))),
    (crdt_pb2.CrdtUpdateRequest(table="profile", remove_key=b"k"), ("profile", RemoveKey(b"k"))),
])
def test_an_update_becomes_the_typed_mutation_its_op_names(plane, stub, request_, applied):
    assert stub.Update(request_, timeout=5).node == "fake"
    assert plane.updates == [applied]


def test_a_read_returns_the_value_in_its_wire_shape(plane, stub):
    value = stub.Read(crdt_pb2.CrdtReadRequest(table="profile"), timeout=5)
    assert value.type == crdt_pb2.AW_LWW_MAP and value.present and value.node == "fake"
    assert [(e.key, e.value) for e in value.map.entries] == [(b"j", b"w"), (b"k", b"v")]
    assert stub.Read(crdt_pb2.CrdtReadRequest(table="hits"), timeout=5).counter == 4


def test_a_scan_filters_by_prefix_and_stops_at_the_limit(plane, stub):
    response = stub.Scan(crdt_pb2.CrdtScanRequest(table="online", prefix=b"a", limit=1), timeout=5)
    assert [e.key for e in response.entries] == [b"a1"] and response.more
    error = rpc_error(stub.Scan, crdt_pb2.CrdtScanRequest(table="hits"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_without_a_running_plane_calls_are_unavailable(fake_node, stub):
    fake_node.available = None
    error = rpc_error(stub.Read, crdt_pb2.CrdtReadRequest(table="hits"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_gossip_refuses_too_many_frames_and_reports_rejections(plane, channel):
    gossip = crdt_pb2_grpc.GossipStub(channel)
    frames = [b"x"] * (limits.GOSSIP_DELIVER_FRAMES_MAX + 1)
    error = rpc_error(gossip.Deliver, crdt_pb2.GossipFrames(frames=frames))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    plane.verdict = Verdict({"bad_mac": 1}, {"bad_mac": 4})
    error = rpc_error(gossip.Deliver, crdt_pb2.GossipFrames(frames=[b"x"]))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "bad_mac=4" in error.details()
    plane.verdict = Verdict({"bad_mac": 1}, {"bad_mac": 5})
    assert gossip.Deliver(crdt_pb2.GossipFrames(frames=[b"x", b"y"]), timeout=5) is not None


class StoppingPlane(FakePlane):
    def refresh_catalog(self):
        raise errors.Unavailable("node fake: the available plane is not running")


class CatalogNode:
    """Applies every catalog write; its plane cannot follow the catalog."""

    def __init__(self):
        self.available = StoppingPlane()
        self.proposed = []

    def propose(self, request, *, timeout_s):
        self.proposed.append(request)
        return crdt_pb2.CreateTableResponse(created=True)


def test_an_applied_create_is_reported_applied_even_if_the_plane_cannot_follow_now():
    node = CatalogNode()
    response = NodeCrdt(node).create_table("fresh", "or_set")
    assert response.created
    assert node.proposed[0].type == crdt_pb2.OR_SET and node.proposed[0].name == "fresh"
