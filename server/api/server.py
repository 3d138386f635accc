"""Builds the client-facing gRPC server of one node.

Owns the server's shape: a thread-pool `grpc.server` (measured faster than
grpc.aio for this workload), the KV, Counter, Cluster, Lease, Registry,
Lock, Election and Watch servicers, the standard health service, server reflection, the concurrent-RPC limit and
the message-size limit. It does not start or stop the node.
"""

from __future__ import annotations

import dataclasses
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tandemkv import limits
from tandemkv.server.api.edge import NodeCalls
from tandemkv.server.api.coordination_servicers import (
    ElectionServicer, LeaseServicer, LockServicer, RegistryServicer, StreamStops, WatchServicer,
)
from tandemkv.server.api.servicers import ClusterServicer, CounterServicer, KVServicer
from tandemkv.server.api.crdt_servicers import CrdtServicer, GossipServicer
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc
from tandemkv.v1 import (
    cluster_pb2, cluster_pb2_grpc, coordination_pb2, coordination_pb2_grpc, counter_pb2, counter_pb2_grpc,
    kv_pb2, kv_pb2_grpc, lease_pb2, lease_pb2_grpc, watch_pb2, watch_pb2_grpc,
)

# Threads serving calls other than streams. A write holds its thread until
# Raft commits it, so this bounds the writes in flight on one node; calls
# beyond it queue (and count towards CONCURRENT_RPCS_MAX) until a thread
# frees up. The pool has STREAMS_OPEN_MAX threads more, so that open streams
# (each holds its thread for its life) can never starve other calls.
GRPC_CALL_THREADS_MAX = 128
# Grace a stopping server gives calls in flight before cancelling them.
STOP_GRACE_SECONDS = 5.0

SERVICE_NAMES = (
    kv_pb2.DESCRIPTOR.services_by_name["KV"].full_name,
    counter_pb2.DESCRIPTOR.services_by_name["Counter"].full_name,
    cluster_pb2.DESCRIPTOR.services_by_name["Cluster"].full_name,
    crdt_pb2.DESCRIPTOR.services_by_name["Crdt"].full_name,
    lease_pb2.DESCRIPTOR.services_by_name["Lease"].full_name,
    coordination_pb2.DESCRIPTOR.services_by_name["Registry"].full_name,
    coordination_pb2.DESCRIPTOR.services_by_name["Lock"].full_name,
    coordination_pb2.DESCRIPTOR.services_by_name["Election"].full_name,
    watch_pb2.DESCRIPTOR.services_by_name["Watch"].full_name,
)


@dataclasses.dataclass
class ClientServer:
    """A built, bound, not yet started server, and the port it bound."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    streams: StreamStops = dataclasses.field(default_factory=StreamStops)

    def start(self) -> None:
        self.server.start()
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace_s: float = STOP_GRACE_SECONDS) -> None:
        """Stops taking calls, ends open streams (watches, observes,
        keepalives) at once, lets unary calls in flight finish for `grace_s`."""
        self.health.enter_graceful_shutdown()
        self.streams.stop_all()
        self.server.stop(grace_s).wait()


def build_server(
    node: NodeCalls,
    address: str,
    *,
    call_threads: int = GRPC_CALL_THREADS_MAX,
    concurrent_rpcs_max: int = limits.CONCURRENT_RPCS_MAX,
    streams_open_max: int = limits.STREAMS_OPEN_MAX,
) -> ClientServer:
    """A server for `node` bound to `address` ('host:port'; port 0 picks a
    free port). Calls beyond `concurrent_rpcs_max`, and streams beyond
    `streams_open_max`, get RESOURCE_EXHAUSTED."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=call_threads + streams_open_max,
                                   thread_name_prefix="tandemkv-rpc"),
        maximum_concurrent_rpcs=concurrent_rpcs_max,
        options=[
            ("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
            ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
            ("grpc.so_reuseport", 0),
        ],
    )
    kv_pb2_grpc.add_KVServicer_to_server(KVServicer(node), server)
    counter_pb2_grpc.add_CounterServicer_to_server(CounterServicer(node), server)
    cluster_pb2_grpc.add_ClusterServicer_to_server(ClusterServicer(node), server)
    crdt_pb2_grpc.add_CrdtServicer_to_server(CrdtServicer(node), server)
    crdt_pb2_grpc.add_GossipServicer_to_server(GossipServicer(node), server)
    streams = StreamStops(streams_open_max)
    lease_pb2_grpc.add_LeaseServicer_to_server(LeaseServicer(node, streams), server)
    coordination_pb2_grpc.add_RegistryServicer_to_server(RegistryServicer(node), server)
    coordination_pb2_grpc.add_LockServicer_to_server(LockServicer(node), server)
    coordination_pb2_grpc.add_ElectionServicer_to_server(ElectionServicer(node, streams), server)
    watch_pb2_grpc.add_WatchServicer_to_server(WatchServicer(node, streams), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot listen on {address}: {error}; is the port in use?") from error
    if port == 0:
        raise OSError(f"cannot listen on {address}; is the port in use?")
    return ClientServer(server=server, port=port, health=health_servicer, streams=streams)
