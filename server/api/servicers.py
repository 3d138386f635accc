"""gRPC servicers for the KV, Counter and Cluster services.

Each RPC is one line: hand the request to `edge.handle` with the node call
it maps to (writes: `node.propose`, reads: `node.query`). No business logic
lives here; the node's state machine decides every answer.
"""

from __future__ import annotations

import grpc

from tandemkv.server.api.edge import NodeCalls, abort, handle
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, counter_pb2_grpc, kv_pb2_grpc

_ROLES = {
    "leader": cluster_pb2.LEADER,
    "follower": cluster_pb2.FOLLOWER,
    "candidate": cluster_pb2.CANDIDATE,
}


class KVServicer(kv_pb2_grpc.KVServicer):
    def __init__(self, node: NodeCalls):
        self._node = node

    def Put(self, request, context):
        return handle(context, request, self._node.propose)

    def Get(self, request, context):
        return handle(context, request, self._node.query)

    def Range(self, request, context):
        return handle(context, request, self._node.query)

    def Delete(self, request, context):
        return handle(context, request, self._node.propose)

    def Txn(self, request, context):
        return handle(context, request, self._node.propose)


class CounterServicer(counter_pb2_grpc.CounterServicer):
    def __init__(self, node: NodeCalls):
        self._node = node

    def Incr(self, request, context):
        return handle(context, request, self._node.propose)

    def Get(self, request, context):
        return handle(context, request, self._node.query)

    def Set(self, request, context):
        return handle(context, request, self._node.propose)

    def CompareAndSet(self, request, context):
        return handle(context, request, self._node.propose)

    def Delete(self, request, context):
        return handle(context, request, self._node.propose)


class ClusterServicer(cluster_pb2_grpc.ClusterServicer):
    def __init__(self, node: NodeCalls):
        self._node = node

    def Status(self, request, context: grpc.ServicerContext):
        try:
            return status_to_proto(self._node.status())
        except Exception as error:  # noqa: BLE001 - reported as a status
            abort(context, error)

    def Members(self, request, context: grpc.ServicerContext):
        try:
            members = self._node.status().members
            return cluster_pb2.MembersResponse(members=[member_to_proto(m) for m in members])
        except Exception as error:  # noqa: BLE001 - reported as a status
            abort(context, error)


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
