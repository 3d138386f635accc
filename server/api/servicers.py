"""gRPC servicers for the KV, Counter and Cluster services.

Each RPC is one line: hand the request to `edge.handle` with the node call
it maps to (writes: `node.propose`, reads: `node.query`). No business logic
lives here; the node's state machine decides every answer. Cluster.Status
adds the available plane's gossip view (`node.available.status()`) to the
node's Raft status. MemberList/MemberAdd/MemberRemove/MemberPromote serve
the committed member set and its changes (server/node/membership.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging

import grpc
import grpc.aio

from tandemkv import errors
from tandemkv.server.api.edge import NodeCalls, abort, handle, node_timeout_s
from tandemkv.server.available.gossip.liveness import PeerState
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, counter_pb2_grpc, kv_pb2_grpc

log = logging.getLogger(__name__)

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
            add_roles(response.members, self._node)
            add_gossip(response, getattr(self._node, "available", None))
            return response
        except Exception as error:  # noqa: BLE001 - reported as a status
            await abort(context, error)

    async def Members(self, request, context: grpc.aio.ServicerContext):
        try:
            members = self._node.status().members
            response = cluster_pb2.MembersResponse(members=[member_to_proto(m) for m in members])
            add_roles(response.members, self._node)
            return response
        except Exception as error:  # noqa: BLE001 - reported as a status
            await abort(context, error)

    # The committed member set, answered on the loop (it never waits). A
    # removed node still answers it: its own set shows why it serves nothing.
    async def MemberList(self, request, context: grpc.aio.ServicerContext):
        try:
            status = self._node.status()
            response = member_list(self._node.member_set(), status.leader or "")
            response.change_in_progress = self._node.change_in_progress()
            return response
        except Exception as error:  # noqa: BLE001 - reported as a status
            await abort(context, error)

    # Changes wait for a Raft commit: on a call thread (edge.node_timeout_s
    # bounds the wait by the caller's deadline).
    async def MemberAdd(self, request, context: grpc.aio.ServicerContext):
        return await _change(context, functools.partial(self._node.add_member, request.member,
                                                        learner=request.learner))

    async def MemberRemove(self, request, context: grpc.aio.ServicerContext):
        return await _change(context, functools.partial(self._node.remove_member, request.name))

    async def MemberPromote(self, request, context: grpc.aio.ServicerContext):
        return await _change(context, functools.partial(self._node.promote_member, request.name))


async def _change(context: grpc.aio.ServicerContext, change) -> cluster_pb2.MemberListResponse:
    try:
        timeout_s = node_timeout_s(context)
        member_set = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(change, timeout_s=timeout_s))
        return member_list(member_set, "")
    except Exception as error:  # noqa: BLE001 - reported as a status
        if not isinstance(error, errors.TandemKVError):
            log.exception("unexpected error changing the members")
        await abort(context, error)


def member_list(member_set: cluster_pb2.MemberSet, leader: str) -> cluster_pb2.MemberListResponse:
    return cluster_pb2.MemberListResponse(members=member_set.members,
                                          config_index=member_set.config_index, leader=leader)


def member_to_proto(member) -> cluster_pb2.Member:
    return cluster_pb2.Member(
        name=member.name,
        raft_address=member.raft_address,
        client_address=member.client_address,
    )


def add_roles(members, node) -> None:
    """Sets each member's `voter` from the node's committed member set
    (learners are not voters); a node without one leaves them as they are."""
    member_set = getattr(node, "member_set", None)
    if member_set is None:
        return
    voters = {m.name: m.voter for m in member_set().members}
    for member in members:
        member.voter = voters.get(member.name, member.voter)


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
