"""Each SDK call as an `Operation`: which RPC, the request (with a fresh
request id for writes, reused on every retry), and how to decode the
answer. Every unary call of `Client` and `AsyncClient` is one of these,
run by the core's retry loop (`_core.unary`) through the shells' single
entry point, `_call`."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from google.protobuf.message import Message

from tandemkv import limits
from tandemkv.client._results import (
    BytesLike, ClusterStatus, GossipPeer, GossipView, KeyValue, NodeInfo, PutResult, RangeResult, TxnResult,
    to_bytes,
)
from tandemkv.v1 import cluster_pb2, counter_pb2, kv_pb2


@dataclasses.dataclass(frozen=True)
class Operation:
    service: str  # a key of the clients' STUBS: "KV", "Counter", "Lease", ...
    method: str
    request: Message
    decode: Callable[[Any], Any]
    write: bool
    # A bidirectional-stream RPC sent as one request with one answer
    # (Lease.KeepAlive).
    stream: bool = False
    # An available-plane call (CRDT tables): any node serves it, no leader.
    local: bool = False
    # Whether an attempt whose outcome is unknown may be sent again. True
    # for every write with a request id (the server applies it once); a
    # CRDT counter increment has none.
    idempotent: bool = True

    @property
    def request_id(self) -> bytes:
        return getattr(self.request, "request_id", b"")


def new_request_id(given: bytes | None = None) -> bytes:
    """`given` (to retry an earlier write whose outcome is unknown), else a
    fresh random id of REQUEST_ID_BYTES bytes."""
    return given if given else os.urandom(limits.REQUEST_ID_BYTES)


def _consistency(stale: bool) -> int:
    return kv_pb2.STALE if stale else kv_pb2.LINEARIZABLE


def decode_put(response: kv_pb2.PutResponse) -> PutResult:
    prev = KeyValue.from_proto(response.prev_kv) if response.has_prev_kv else None
    return PutResult(response.header.revision, prev)


def decode_range(response: kv_pb2.RangeResponse) -> RangeResult:
    kvs = tuple(KeyValue.from_proto(kv) for kv in response.kvs)
    return RangeResult(kvs, response.more, response.header.revision)


def put(key: BytesLike, value: BytesLike, prev_kv: bool = False, request_id: bytes | None = None,
        lease: int = 0) -> Operation:
    request = kv_pb2.PutRequest(
        key=to_bytes(key, "key"), value=to_bytes(value, "value"), prev_kv=prev_kv,
        request_id=new_request_id(request_id), lease=lease,
    )
    return Operation("KV", "Put", request, decode_put, write=True)


def get(key: BytesLike, stale: bool = False) -> Operation:
    request = kv_pb2.GetRequest(key=to_bytes(key, "key"), consistency=_consistency(stale))
    return Operation("KV", "Get", request, lambda r: KeyValue.from_proto(r.kv) if r.found else None, write=False)


def key_range(prefix: BytesLike = b"", end: BytesLike | None = None) -> kv_pb2.KeyRange:
    """Keys starting with `prefix`, or with `end`: keys in [prefix, end)."""
    if end is not None:
        return kv_pb2.KeyRange(key=to_bytes(prefix, "key"), range_end=to_bytes(end, "end"))
    return kv_pb2.KeyRange(key=to_bytes(prefix, "prefix"), prefix=True)


def range_(prefix: BytesLike = b"", end: BytesLike | None = None, limit: int = 0,
           keys_only: bool = False, stale: bool = False) -> Operation:
    request = kv_pb2.RangeRequest(
        range=key_range(prefix, end), limit=limit, keys_only=keys_only, consistency=_consistency(stale)
    )
    return Operation("KV", "Range", request, decode_range, write=False)


def delete(key: BytesLike, prefix: bool = False, request_id: bytes | None = None) -> Operation:
    selected = key_range(key) if prefix else kv_pb2.KeyRange(key=to_bytes(key, "key"))
    request = kv_pb2.DeleteRequest(range=selected, request_id=new_request_id(request_id))
    return Operation("KV", "Delete", request, lambda r: r.deleted, write=True)


def txn(request: kv_pb2.TxnRequest, decoders: list[Callable[[Any], Any]],
        failure_decoders: list[Callable[[Any], Any]], request_id: bytes | None = None) -> Operation:
    request.request_id = new_request_id(request_id)

    def decode(response: kv_pb2.TxnResponse) -> TxnResult:
        chosen = decoders if response.succeeded else failure_decoders
        answers = tuple(
            decode_one(getattr(op, op.WhichOneof("response")))
            for decode_one, op in zip(chosen, response.responses)
        )
        return TxnResult(response.succeeded, response.header.revision, answers)

    return Operation("KV", "Txn", request, decode, write=True)


def counter_incr(name: BytesLike, delta: int, request_id: bytes | None = None) -> Operation:
    request = counter_pb2.CounterIncrRequest(name=to_bytes(name, "name"), delta=delta, request_id=new_request_id(request_id))
    return Operation("Counter", "Incr", request, lambda r: r.value, write=True)


def counter_get(name: BytesLike, stale: bool = False) -> Operation:
    request = counter_pb2.CounterGetRequest(name=to_bytes(name, "name"), consistency=_consistency(stale))
    return Operation("Counter", "Get", request, lambda r: r.value, write=False)


def counter_set(name: BytesLike, value: int, request_id: bytes | None = None) -> Operation:
    request = counter_pb2.CounterSetRequest(name=to_bytes(name, "name"), value=value, request_id=new_request_id(request_id))
    return Operation("Counter", "Set", request, lambda r: r.prev_value, write=True)


def counter_compare_and_set(name: BytesLike, expected: int, value: int, request_id: bytes | None = None) -> Operation:
    request = counter_pb2.CounterCompareAndSetRequest(
        name=to_bytes(name, "name"), expected=expected, value=value, request_id=new_request_id(request_id)
    )
    return Operation("Counter", "CompareAndSet", request, lambda r: r.succeeded, write=True)


def counter_delete(name: BytesLike, request_id: bytes | None = None) -> Operation:
    request = counter_pb2.CounterDeleteRequest(name=to_bytes(name, "name"), request_id=new_request_id(request_id))
    return Operation("Counter", "Delete", request, lambda r: r.deleted, write=True)


def status() -> Operation:
    return Operation("Cluster", "Status", cluster_pb2.StatusRequest(), lambda r: r, write=False)


_ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}
_PEER_STATE_NAMES = {cluster_pb2.GOSSIP_PEER_ALIVE: "alive", cluster_pb2.GOSSIP_PEER_SUSPECT: "suspect",
                     cluster_pb2.GOSSIP_PEER_DEAD: "dead"}


def node_info(endpoint: str, response: Any) -> NodeInfo:
    return NodeInfo(
        endpoint=endpoint, name=response.name, role=_ROLE_NAMES.get(response.role, "unknown"),
        leader=response.leader, leader_endpoint=response.leader_client_address, term=response.term,
        commit_index=response.commit_index, applied_index=response.applied_index,
        has_quorum=response.has_quorum, ready=response.ready, gossip=gossip_view(response),
    )


def gossip_view(response: Any) -> GossipView | None:
    """None for a node whose available plane did not answer (or a server
    that predates the gossip fields: they read as not running)."""
    if not response.gossip_running:
        return None
    peers = tuple(GossipPeer(p.name, _PEER_STATE_NAMES.get(p.state, "unknown"), p.rounds_silent, p.heartbeat_ms)
                  for p in response.gossip_peers)
    return GossipView(response.gossip_round, peers, dict(sorted(response.gossip_rejected.items())))


def cluster_status(nodes: list[NodeInfo]) -> ClusterStatus:
    """Sorted by name (unreachable endpoints last); the leader is the one
    named at the highest term any node reports."""
    answered = [n for n in nodes if not n.error]
    term = max((n.term for n in answered), default=0)
    leaders = [n.leader for n in answered if n.term == term and n.leader]
    leader = max(set(leaders), key=leaders.count) if leaders else ""
    ordered = sorted(nodes, key=lambda n: (bool(n.error), n.name, n.endpoint))
    return ClusterStatus(nodes=tuple(ordered), leader=leader, term=term)


def member_endpoints(response: Any) -> list[str]:
    return [m.client_address for m in response.members if m.client_address]
