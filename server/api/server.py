"""Builds the client-facing gRPC server of one node.

Owns the server's shape: a `grpc.aio` server on the event loop of the node
it serves (`node.event_loop()`, server/node/event_loop.py; a loop of its own for a
node without one), with one generic handler (dispatch.py) serving the KV,
Counter, Batch, Cluster, Crdt, Gossip, Lease, Registry, Lock, Election,
Watch, PubSub and Presence servicers, the standard health service (following the node's
readiness, health_follower.py) and server reflection; the lanes and their
limits (CONCURRENT_RPCS_MAX, STREAMS_OPEN_MAX, OPERATOR_RPCS_MAX) and the
message-size limit. Writes and reads await the node's asyncio calls, so a
call in flight holds no thread, and an idle stream (watch, keepalive,
election observe, CRDT subscription) costs memory only; calls that block
in the node (lock and campaign waits, CRDT catalog changes) run on the
loop's executor, GRPC_CALL_THREADS_MAX threads. It does not start or stop
the node, nor the node's pub/sub and presence planes: it serves them
(`node.pubsub_plane`, `node.presence_plane`, which run on the same loop).
"""

from __future__ import annotations

import dataclasses

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from tandemkv import limits
from tandemkv.server.api.batch_servicer import BatchServicer
from tandemkv.server.api.coordination_servicers import (
    ElectionServicer, LeaseServicer, LockServicer, RegistryServicer, WatchServicer,
)
from tandemkv.server.api.crdt_servicers import CrdtServicer, GossipServicer
from tandemkv.server.api.dispatch import LANE_STREAMS, Admission, Dispatcher, MalformedRequests, Service
from tandemkv.server.api.edge import NodeCalls
from tandemkv.server.api.health_follower import HealthFollower
from tandemkv.server.api.auth_calls import AuthGate, applied_job_queue
from tandemkv.server.api.auth_servicer import AuthServicer
from tandemkv.server.api.jobs_servicer import JobsServicer
from tandemkv.server.api.maintenance_servicer import MaintenanceServicer
from tandemkv.server.api.presence_servicers import PresenceServicer
from tandemkv.server.api.pubsub_servicers import PubSubServicer
from tandemkv.server.api.streams import StreamStops
from tandemkv.server.security.server_tls import ReloadingCredentials
from tandemkv.server.node.event_loop import NodeLoop
from tandemkv.server.api.servicers import ClusterServicer, CounterServicer, KVServicer
from tandemkv.v1 import (
    batch_pb2, cluster_pb2, coordination_pb2, counter_pb2, crdt_pb2, kv_pb2, lease_pb2, pubsub_pb2, watch_pb2,
)
from tandemkv.v1 import auth_pb2, jobs_pb2, maintenance_pb2, presence_pb2

# Grace a stopping server gives calls in flight before cancelling them.
STOP_GRACE_S = 5.0

_STRONG_SERVICES = (
    kv_pb2.DESCRIPTOR.services_by_name["KV"],
    counter_pb2.DESCRIPTOR.services_by_name["Counter"],
    batch_pb2.DESCRIPTOR.services_by_name["Batch"],
    cluster_pb2.DESCRIPTOR.services_by_name["Cluster"],
    lease_pb2.DESCRIPTOR.services_by_name["Lease"],
    coordination_pb2.DESCRIPTOR.services_by_name["Registry"],
    coordination_pb2.DESCRIPTOR.services_by_name["Lock"],
    coordination_pb2.DESCRIPTOR.services_by_name["Election"],
    watch_pb2.DESCRIPTOR.services_by_name["Watch"],
    maintenance_pb2.DESCRIPTOR.services_by_name["Maintenance"],
    jobs_pb2.DESCRIPTOR.services_by_name["Jobs"],
    auth_pb2.DESCRIPTOR.services_by_name["Auth"],
)
_AVAILABLE_SERVICES = (
    crdt_pb2.DESCRIPTOR.services_by_name["Crdt"],
    crdt_pb2.DESCRIPTOR.services_by_name["Gossip"],
    pubsub_pb2.DESCRIPTOR.services_by_name["PubSub"],
    presence_pb2.DESCRIPTOR.services_by_name["Presence"],
)
SERVICE_NAMES = tuple(s.full_name for s in (*_STRONG_SERVICES, *_AVAILABLE_SERVICES))


@dataclasses.dataclass
class ClientServer:
    """A built, bound, not yet started server, and the port it bound."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    streams: StreamStops
    admission: Admission
    malformed: MalformedRequests
    follower: HealthFollower
    method_paths: list[str]
    _loop: NodeLoop
    # Whether the loop is the server's own (a node without one: a test's
    # fake node), to close with it; a node's loop is the node's to close.
    _owns_loop: bool = True

    def start(self) -> None:
        self._loop.run(self.server.start())
        self.follower.start()

    @property
    def streams_open(self) -> int:
        """Streams holding a slot of STREAMS_OPEN_MAX now."""
        return self.admission.open_count(LANE_STREAMS)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stops taking calls, ends open streams (watches, observes,
        keepalives, subscriptions) at once, lets unary calls in flight
        finish for `grace_s`."""
        self.follower.stop()
        self._loop.run(self.health.enter_graceful_shutdown())
        self.streams.stop_all()
        self._loop.run(self.server.stop(grace_s))
        if self._owns_loop:
            self._loop.close()


def build_server(
    node: NodeCalls,
    address: str,
    *,
    call_threads: int = limits.GRPC_CALL_THREADS_MAX,
    concurrent_rpcs_max: int = limits.CONCURRENT_RPCS_MAX,
    streams_open_max: int = limits.STREAMS_OPEN_MAX,
    operator_rpcs_max: int = limits.OPERATOR_RPCS_MAX,
    tls: ReloadingCredentials | None = None,
    observer=None,
) -> ClientServer:
    """A server for `node` bound to `address` ('host:port'; port 0 picks a
    free port). Calls beyond `concurrent_rpcs_max`, streams beyond
    `streams_open_max`, and health and status calls beyond
    `operator_rpcs_max` get RESOURCE_EXHAUSTED. `tls`: the port speaks TLS
    with these credentials (server/security/server_tls.py), else plaintext.
    `observer(path, context, streaming)` is told of every call as it starts
    (the node's metrics: server/observe/)."""
    event_loop = getattr(node, "event_loop", None)
    owns_loop = event_loop is None
    loop = NodeLoop(call_threads, name="tandemkv-grpc-loop") if event_loop is None else event_loop()
    try:
        return loop.run(_build(node, address, loop, owns_loop, concurrent_rpcs_max, streams_open_max,
                               operator_rpcs_max, tls, observer))
    except BaseException:
        if owns_loop:
            loop.close()
        raise


async def _build(node: NodeCalls, address: str, loop: NodeLoop, owns_loop: bool, concurrent_rpcs_max: int,
                 streams_open_max: int, operator_rpcs_max: int,
                 tls: ReloadingCredentials | None = None, observer=None) -> ClientServer:
    # Built on the loop it will run on. No maximum_concurrent_rpcs: the
    # dispatcher's lanes hold every limit.
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
        ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
        ("grpc.so_reuseport", 0),
        ("grpc.server.max_pending_requests", limits.GRPC_PENDING_CALLS_MAX),
        ("grpc.server.max_pending_requests_hard_limit", limits.GRPC_PENDING_CALLS_MAX),
    ])
    streams = StreamStops()
    # The planes are the node's, on its loop (this one); a fake node has none.
    pubsub = getattr(node, "pubsub_plane", None)
    presence = getattr(node, "presence_plane", None)
    health_servicer = health.aio.HealthServicer()
    reflection_names = (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
    descriptors = {d.name: d for d in (*_STRONG_SERVICES, *_AVAILABLE_SERVICES)}
    # "Gossip" is the frame-injection hook for tests and operators; nodes
    # gossip over UDP (available/transport.py), never through this server.
    # The gate every call passes, on the node's applied auth store (a
    # test's fake node has none: every call is allowed).
    auth = getattr(node, "auth", None)
    gate = AuthGate(auth.state, job_queue=applied_job_queue(node)) if auth is not None else None
    services = [Service(descriptors[name], servicer) for name, servicer in (
        ("KV", KVServicer(node)), ("Counter", CounterServicer(node)),
        ("Batch", BatchServicer(node)), ("Maintenance", MaintenanceServicer(node)),
        ("Cluster", ClusterServicer(node)), ("Lease", LeaseServicer(node, streams)),
        ("Registry", RegistryServicer(node)), ("Lock", LockServicer(node)),
        ("Election", ElectionServicer(node, streams)), ("Watch", WatchServicer(node, streams, gate)),
        ("Crdt", CrdtServicer(node, streams)), ("Gossip", GossipServicer(node)),
        ("PubSub", PubSubServicer(node, pubsub, streams)),
        ("Presence", PresenceServicer(presence, streams)), ("Jobs", JobsServicer(node)),
        ("Auth", AuthServicer(node, gate)))]
    assert len(services) == len(descriptors), "a service of the node has no servicer"
    services.append(Service(health_pb2.DESCRIPTOR.services_by_name["Health"], health_servicer))
    services.append(Service(reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
                            reflection.aio.ReflectionServicer(reflection_names)))
    admission = Admission(concurrent_rpcs_max, streams_open_max, operator_rpcs_max)
    malformed = MalformedRequests()
    dispatcher = Dispatcher(services, admission, malformed, observer,
                            gate=gate.check_call if gate is not None else None)
    server.add_generic_rpc_handlers((dispatcher,))
    follower = HealthFollower(node, lambda service, value: loop.run(health_servicer.set(service, value)),
                              [s.full_name for s in _STRONG_SERVICES],
                              [s.full_name for s in _AVAILABLE_SERVICES])
    try:
        port = (server.add_insecure_port(address) if tls is None
                else server.add_secure_port(address, tls.server_credentials()))
    except RuntimeError as error:
        raise OSError(f"cannot listen on {address}: {error}; is the port in use?") from error
    if port == 0:
        raise OSError(f"cannot listen on {address}; is the port in use?")
    return ClientServer(server=server, port=port, health=health_servicer, streams=streams,
                        admission=admission, malformed=malformed, follower=follower,
                        method_paths=dispatcher.method_paths, _loop=loop, _owns_loop=owns_loop)
