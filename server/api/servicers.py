"""gRPC servicers for the KV, Counter and Cluster services.

Each RPC is one line: hand the request to `edge.handle` with the node call
it maps to (writes: `node.propose`, reads: `node.query`). No business logic
lives here; the node's state machine decides every answer. Cluster.Status
adds the available plane's gossip view (`node.available.status()`) to the
node's Raft status.
"""

from __future__ import annotations

import grpc
import grpc.aio

from tandemkv import errors
from tandemkv.server.api.edge import NodeCalls, abort, handle
from tandemkv.server.available.gossip.liveness import PeerState
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, counter_pb2_grpc, kv_pb2_grpc

_ROLES = {
    "leader": cluster_pb2.LEADER,
    "follower": cluster_pb2.FOLLOWER,
    "candidate": cluster_pb2.CANDIDATE,
}

_PEER_STATES = {
    PeerState.ALIVE: cluster_pb2.GOSSIP_PEER_ALIVE,
    PeerState.SUSPECT: cluster_pb2.GOSSIP_PEER_SUSPECT,
    PeerState.DEAD: cluster_pb2.GOSSIP_PEER_DEAD,
}


class KVServicer(kv_pb2_grpc.KVServicer):
    def __init__(self, node: NodeCalls):
        self._node = node

    async def Put(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Get(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def Range(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def Delete(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Txn(self, request, context):
        return await handle(context, request, self._node.propose_async)


class CounterServicer(counter_pb2_grpc.CounterServicer):
    def __init__(self, node: NodeCalls):
        self._node = node

    async def Incr(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Get(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def Set(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def CompareAndSet(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def Delete(self, request, context):
        return await handle(context, request, self._node.propose_async)


class ClusterServicer(cluster_pb2_grpc.ClusterServicer):
    def __init__(self, node: NodeCalls):
        self._node = node

    # Answered on the event loop itself: reading a node's status never
    # waits, so an operator is answered even while every call thread waits.
    async def Status(self, request, context: grpc.aio.ServicerContext):
        try:
            response = status_to_proto(self._node.status())
            add_gossip(response, getattr(self._node, "available", None))
            return response
        except Exception as error:  # noqa: BLE001 - reported as a status
            await abort(context, error)

    async def Members(self, request, context: grpc.aio.ServicerContext):
        try:
            members = self._node.status().members
            return cluster_pb2.MembersResponse(members=[member_to_proto(m) for m in members])
        except Exception as error:  # noqa: BLE001 - reported as a status
            await abort(context, error)


def member_to_proto(member) -> cluster_pb2.Member:
    return cluster_pb2.Member(
        name=member.name,
        raft_address=member.raft_address,
        client_address=member.client_address,
    )


def status_to_proto(status) -> cluster_pb2.StatusResponse:
    """A `NodeStatus` as the wire type."""
    return cluster_pb2.StatusResponse(
        name=status.name,
        role=_ROLES[status.role],
        leader=status.leader or "",
        leader_client_address=status.leader_client_address or "",
        term=status.term,
        commit_index=status.commit_index,
        applied_index=status.applied_index,
        has_quorum=status.has_quorum,
        ready=status.ready,
        members=[member_to_proto(m) for m in status.members],
    )


def add_gossip(response: cluster_pb2.StatusResponse, plane) -> None:
    """Fills the gossip fields from `plane` (an `AvailablePlane`). A node
    without a running plane (none configured, not started yet, stopping)
    leaves them empty: the Raft status is still worth answering."""
    if plane is None:
        return
    try:
        gossip = plane.status().gossip
    except errors.Unavailable:
        return
    response.gossip_running = True
    response.gossip_round = gossip.round
    for name, liveness in gossip.peers.items():
        heartbeat = liveness.heartbeat
        response.gossip_peers.add(name=name, state=_PEER_STATES[liveness.state],
                                  rounds_silent=liveness.rounds_silent,
                                  heartbeat_ms=heartbeat.wall_ms if heartbeat else 0)
    response.gossip_rejected.update(gossip.rejected)
