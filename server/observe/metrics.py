"""A node's Prometheus metrics, in a `CollectorRegistry` of its own (several
nodes may run in one process, as in tests).

Two kinds:
- counted as it happens, through hooks: RPCs by service, method and status
  code with their latency (the gRPC dispatcher calls `RpcMetrics.call_started`),
  Raft proposals and the commands per log entry, the Raft log's fsync
  latency (`RaftMetrics`, hooked into the node's replica), leader changes
  (the sampler, sampler.py);
- read at scrape time from the node (`NodeCollector`): Raft term, role,
  commit and applied index, quorum; streams open; gossip rounds, peers by
  state, rejected frames; CRDT tables and keys; LMDB map use; pub/sub
  subscribers and relay drops; presence entries.
Names follow Prometheus' naming guide: `tandemkv_` prefix, base units
(seconds, bytes), `_total` for counters, `_ratio` for fractions.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
# A job queue's counts by state, in the order the metrics and the dashboard's columns give them.
JOB_COUNTS = ("available", "scheduled", "claimed", "retryable", "dead", "completed", "cancelled")

# Unary RPC latency buckets, in seconds: from a local stale read to a write
# waiting out a leader change.
RPC_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One fsync of a batch of Raft log writes, in seconds.
FSYNC_LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Commands proposed in one round of the tick thread (they arrive together).
ROUND_COMMANDS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)

_CODE_NAMES: dict[int, str] = {}


def code_name(code: Any) -> str:
    """'OK', 'UNAVAILABLE', ... from what `context.code()` gives (None: OK)."""
    if code is None:
        return "OK"
    name = getattr(code, "name", None)
    if name is not None:
        return name
    if not _CODE_NAMES:
        import grpc

        _CODE_NAMES.update({status.value[0]: status.name for status in grpc.StatusCode})
    return _CODE_NAMES.get(code, str(code))


def split_path(path: str) -> tuple[str, str]:
    """'/tandemkv.v1.KV/Put' -> ('tandemkv.v1.KV', 'Put')."""
    service, _, method = path.lstrip("/").partition("/")
    return service, method


class RpcMetrics:
    """RPCs by service, method and status code, and unary latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter("tandemkv_grpc_server_handled", "RPCs completed, by service, method and status code",
                               ("service", "method", "code"), registry=registry)
        self.latency = Histogram("tandemkv_grpc_server_handling_seconds",
                                 "Time from a unary RPC's arrival to its answer", ("service", "method"),
                                 buckets=RPC_LATENCY_BUCKETS_S, registry=registry)
        # Totals the dashboard turns into operations per second and mean latency.
        self.unary_total = 0
        self.unary_seconds_total = 0.0

    def call_started(self, path: str, context: Any, streaming: bool) -> None:
        """Counts the call when it is done (the dispatcher calls this as
        each call starts, on the event loop)."""
        started = time.perf_counter()
        service, method = split_path(path)

        def done(finished_context: Any) -> None:
            try:
                code = code_name(finished_context.code())
            except Exception:  # noqa: BLE001 - a context that cannot say: counted as unknown
                code = "UNKNOWN"
            if finished_context.cancelled() and code == "OK":
                code = "CANCELLED"
            self.handled.labels(service, method, code).inc()
            if not streaming:
                elapsed_s = time.perf_counter() - started
                self.latency.labels(service, method).observe(elapsed_s)
                self.unary_total += 1
                self.unary_seconds_total += elapsed_s
        context.add_done_callback(done)


class RaftMetrics:
    """Proposals, commands per entry and log fsync latency: the replica's
    hooks call `proposed` (tick thread) and `flushed` (the log's flusher)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter("tandemkv_raft_proposed_commands", "Commands this node proposed to the Raft log",
                                registry=registry)
        self.entries = Counter("tandemkv_raft_proposed_entries", "Log entries this node proposed (a batch is one)",
                               registry=registry)
        self.round_commands = Histogram("tandemkv_raft_proposal_round_commands",
                                        "Commands handed to Raft in one round of the tick thread (group commit: "
                                        "one log entry holds up to RAFT_ENTRY_COMMANDS_MAX of them)",
                                        buckets=ROUND_COMMANDS_BUCKETS, registry=registry)
        self.fsync = Histogram("tandemkv_raft_log_fsync_seconds",
                               "One durable write (fsync) of a batch of Raft log changes",
                               buckets=FSYNC_LATENCY_BUCKETS_S, registry=registry)
        self.leader_changes = Counter("tandemkv_raft_leader_changes",
                                      "Times this node saw the leader change (to another member or to none)",
                                      registry=registry)

    # Both run on Raft's threads, where an exception would stop the node:
    # they never raise.
    def proposed(self, commands: int, entries: int) -> None:
        try:
            self.commands.inc(commands)
            self.entries.inc(entries)
            self.round_commands.observe(commands)
        except Exception:  # noqa: BLE001 - see above
            log.debug("counting a proposal failed", exc_info=True)

    def flushed(self, seconds: float) -> None:
        try:
            self.fsync.observe(seconds)
        except Exception:  # noqa: BLE001 - see above
            log.debug("timing a log write failed", exc_info=True)


class NodeCollector(Collector):
    """Reads the node at scrape time. `streams_open` gives open streams by
    lane (client streams, peer streams) from the gRPC server, if any."""

    def __init__(self, node: Any, streams_open: Callable[[], dict[str, int]] | None = None) -> None:
        self._node = node
        self._streams_open = streams_open

    def collect(self):
        yield from self._raft()
        yield from self._streams()
        yield from self._storage()
        yield from self._available()
        yield from self._pubsub()
        yield from self._presence()
        yield from self._jobs()

    def _raft(self):
        try:
            status = self._node.status()
        except Exception:  # noqa: BLE001 - a stopping node has no Raft status to give
            return
        yield _gauge("tandemkv_raft_term", "Current Raft term", status.term)
        yield _gauge("tandemkv_raft_commit_index", "Highest log index known committed", status.commit_index)
        yield _gauge("tandemkv_raft_applied_index", "Highest log index applied to this node's state",
                     status.applied_index)
        yield _gauge("tandemkv_raft_has_quorum", "1 while this node hears a majority", int(status.has_quorum))
        yield _gauge("tandemkv_raft_ready", "1 while this node knows a leader and has caught up", int(status.ready))
        yield _gauge("tandemkv_raft_members", "Members in the committed member set", len(status.members))
        role = GaugeMetricFamily("tandemkv_raft_role", "1 for this node's Raft role", labels=["role"])
        for name in ("leader", "follower", "candidate"):
            role.add_metric([name], int(status.role == name))
        yield role

    def _streams(self):
        if self._streams_open is None:
            return
        family = GaugeMetricFamily("tandemkv_grpc_streams_open", "Streams open on the gRPC server, by lane",
                                   labels=["lane"])
        for lane, count in self._streams_open().items():
            family.add_metric([lane], count)
        yield family

    def _storage(self):
        use = getattr(self._node, "map_use", None)
        if use is None:
            return
        try:
            used_ratio, map_size_bytes = use()
        except Exception:  # noqa: BLE001 - the store is closed
            return
        yield _gauge("tandemkv_lmdb_map_size_bytes", "Size of the state store's LMDB map", map_size_bytes)
        yield _gauge("tandemkv_lmdb_map_used_ratio", "Fraction of the state store's LMDB map in use", used_ratio)

    def _available(self):
        try:
            plane = self._node.crdt.status()
        except Exception:  # noqa: BLE001 - the available plane is not running
            return
        gossip = plane.gossip
        yield _counter("tandemkv_gossip_rounds", "Gossip rounds since this node started", gossip.round)
        peers = GaugeMetricFamily("tandemkv_gossip_peers", "Gossip peers by state", labels=["state"])
        states: dict[str, int] = {"alive": 0, "suspect": 0, "dead": 0}
        for liveness in gossip.peers.values():
            state = str(getattr(liveness.state, "value", liveness.state)).lower()
            states[state] = states.get(state, 0) + 1
        for state, count in sorted(states.items()):
            peers.add_metric([state], count)
        yield peers
        rejected = CounterMetricFamily("tandemkv_gossip_frames_rejected", "Gossip frames rejected, by reason",
                                       labels=["reason"])
        reasons: dict[str, int] = {}
        for source in (gossip.rejected, plane.keyed.rejected if plane.keyed else {}):
            for reason, count in source.items():
                reasons[reason] = reasons.get(reason, 0) + count
        for reason, count in sorted(reasons.items()):
            rejected.add_metric([reason], count)
        yield rejected
        tables = GaugeMetricFamily("tandemkv_crdt_tables", "CRDT tables on this node, by kind", labels=["kind"])
        kinds: dict[str, int] = {}
        for table in gossip.tables.values():
            kinds[str(table.kind.value)] = kinds.get(str(table.kind.value), 0) + 1
        keyed = plane.keyed.tables if plane.keyed else {}
        for table in keyed.values():
            kind = f"keyed_{table.kind.value}"
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, count in sorted(kinds.items()):
            tables.add_metric([kind], count)
        yield tables
        yield _gauge("tandemkv_crdt_keys", "Keys held in keyed CRDT tables (removed ones included)",
                     sum(table.keys for table in keyed.values()))

    def _pubsub(self):
        try:
            status = self._node.pubsub.status()
        except Exception:  # noqa: BLE001 - the plane is not running
            return
        hub = status["hub"]
        yield _gauge("tandemkv_pubsub_subscribers", "Pub/sub subscribers on this node", hub["subscribers"])
        yield _gauge("tandemkv_pubsub_subscriptions", "Topics and prefixes subscribed to on this node",
                     hub["subscriptions"])
        yield _counter("tandemkv_pubsub_published_messages", "Messages published on this node", hub["published"])
        yield _counter("tandemkv_pubsub_slow_subscriber_missed_messages",
                       "Messages slow subscribers missed (told by a Lagged notice)", hub["missed_by_slow_subscribers"])
        dropped = sum(int(peer.get("overflowed", 0)) + int(peer.get("lost_on_failed_write", 0))
                      for peer in status["peers"].values())
        yield _counter("tandemkv_pubsub_relay_dropped_messages",
                       "Messages the relay to other members dropped (queue full or a failed write)", dropped)

    def _presence(self):
        try:
            status = self._node.presence.status()
        except Exception:  # noqa: BLE001 - the plane is not running
            return
        engine = status["engine"]
        yield _gauge("tandemkv_presence_entries", "Presence entries this node owns", engine["log"]["entries"])
        yield _gauge("tandemkv_presence_sessions", "Presence sessions this node owns", engine["log"]["sessions"])
        yield _gauge("tandemkv_presence_watches", "Presence watches open on this node", status["watches"])
        owners = engine["replica"]["owners"]
        yield _gauge("tandemkv_presence_known_entries", "Presence entries this node knows, every owner's",
                     sum(int(owner["entries"]) for owner in owners.values()))


    def _jobs(self):
        """The job queues as this node's replica has them (a stale read: no
        Raft round per scrape), at most JOB_LIST_MAX queues."""
        try:
            stats = self._node.jobs.stats(stale=True)
        except Exception:  # noqa: BLE001 - stopping, or no jobs to read
            return
        jobs = GaugeMetricFamily("tandemkv_job_queue_jobs", "Jobs of each queue, by state", labels=["queue", "state"])
        limits_family = GaugeMetricFamily("tandemkv_job_queue_concurrency_limit",
                                          "The queue's cluster-wide limit on jobs claimed at once (queues with one)",
                                          labels=["queue"])
        for queue in stats.queues:
            name = queue.queue.decode(errors="replace")
            for state in JOB_COUNTS:
                jobs.add_metric([name, state], getattr(queue, state))
            if queue.concurrency_max:
                limits_family.add_metric([name], queue.concurrency_max)
        yield jobs
        yield limits_family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class NodeMetrics:
    """Every metric of one node, in its own registry."""

    def __init__(self, node: Any, streams_open: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.rpcs = RpcMetrics(self.registry)
        self.raft = RaftMetrics(self.registry)
        self.registry.register(NodeCollector(node, streams_open))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
