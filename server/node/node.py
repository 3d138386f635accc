"""`Node`: the composition root of one TandemKV node, usable in-process.

It owns the node's LMDB environments, its Raft replica and its read barrier,
and offers every strong-plane operation as a Python method (blocking, with
`*_async` twins for asyncio): KV and counters (kv.py), leases, the registry,
locks and elections (coordination.py), watches (watches.py) and batches
(batch.py); the CRDT plane's calls are on `node.crdt` (crdt.py), durable
topics on `node.topics` (topics.py), best-effort pub/sub on `node.pubsub`
(pubsub.py) and presence on `node.presence` (presence.py). The gRPC
servicers call exactly these methods, or the planes behind the last two.
It knows nothing of gRPC.

Threads: create and `start()` the node in the main thread (the Raft tick
thread stops when the thread that created it exits). Every other method is
safe from any thread. The tick thread applies committed entries to the
node's `StateHost` (host.py) through the `Replica` façade (server/raft/);
it never calls the node. The pub/sub and presence planes run on the node's
event loop (`node.loop`, event_loop.py), in a thread of its own, which the
gRPC server that serves the node shares.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import logging
import os
import shutil
import threading
import time

from google.protobuf.message import Message

from tandemkv import limits
from tandemkv.errors import InvalidArgument, NodeRemoved, OutcomeUnknown, ResourceExhausted, Unavailable
from tandemkv.server.available.node_plane import build_plane
from tandemkv.server.available.presence_plane import PresencePlane
from tandemkv.server.available.pubsub_plane import PubSubPlane
from tandemkv.server.available.runtime import AvailablePlane
from tandemkv.server.node.auth import NodeAuth
from tandemkv.server.node.backup import BackupCopies, NodeBackup
from tandemkv.server.node.batch import NodeBatches
from tandemkv.server.node.config import DURABILITY_DURABLE, Member, NodeConfig
from tandemkv.server.node.coordination import LeaseTicker, NodeCoordination
from tandemkv.server.node.crdt import NodeCrdt
from tandemkv.server.node.deadlines import deadline_of, read_timed_out
from tandemkv.server.node.event_loop import NodeLoop
from tandemkv.server.node.loop_planes import NodeLoopPlanes
from tandemkv.server.node.kv import NodeOperations
from tandemkv.server.node.membership import NodeMembership
from tandemkv.server.node.presence import NodePresence
from tandemkv.server.node.pubsub import NodePubSub
from tandemkv.server.node.jobs import NodeJobs
from tandemkv.server.node.topics import NodeTopics
from tandemkv.server.node.watches import NodeWatches
from tandemkv.server.storage import crash_marker, disk, snapshot
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.limits import MAP_FILL_RATIO_WRITES_MAX
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.raft.read_barrier import ReadBarrier
from tandemkv.server.raft.replica import NOT_APPLIED, Outcome, Replica
from tandemkv.server.strong import batching, catalog, commands, coordination, jobs, reads, topics, validation
from tandemkv.server.strong.state_machine import BATCHABLE_OPS
from tandemkv.v1 import kv_pb2

log = logging.getLogger(__name__)

LINEARIZABLE = kv_pb2.LINEARIZABLE
STALE = kv_pb2.STALE
# Writes between two looks at how full the LMDB map is (see _map_nearly_full).
MAP_FILL_CHECK_WRITES = 64
# How often wait_ready() looks at the replica while it waits.
READY_POLL_S = 0.02


_READERS = {**reads.READERS, **coordination.READERS, **catalog.READERS, **topics.READERS,
            **jobs.READERS}


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str
    leader: str | None
    leader_client_address: str
    term: int
    commit_index: int
    applied_index: int
    has_quorum: bool
    ready: bool
    members: tuple[Member, ...]


class Node(NodeOperations, NodeWatches, NodeCoordination, NodeBatches, NodeMembership, NodeBackup,
           NodeLoopPlanes):
    def __init__(self, config: NodeConfig):
        self.config = config
        self._init_membership()  # the committed member set: membership.py
        self._state: StateStore | None = None
        self._replica: Replica | None = None
        self._barrier: ReadBarrier | None = None
        self._stopping = threading.Event()
        self._backup_copies = BackupCopies(config.name)
        self._writes_since_fill_check = MAP_FILL_CHECK_WRITES
        self._map_full = False
        # Carried in every write so that every node refuses the same writes
        # when the state reaches it (see state_machine._refused_for_space).
        self._space_quota_bytes = config.map_size_bytes * limits.SPACE_QUOTA_PERCENT_OF_MAP // 100
        self._async_barriers: dict = {}
        # Notified after every apply batch commits: waiters and watches.
        self._applied = threading.Condition()
        self._ticker: LeaseTicker | None = None
        # The available plane (CRDT tables); built in start(), after the replica.
        self.available: AvailablePlane | None = None
        self.crdt = NodeCrdt(self)  # the CRDT tables: create, update, read, subscribe
        self.topics = NodeTopics(self)  # durable topics: publish, read, subscribe from an offset
        self.jobs = NodeJobs(self)  # the job queue: enqueue, claim under a lease, complete, fail
        self.auth = NodeAuth(self)  # users, roles, tokens; `auth.gate` decides each gRPC call
        # The loop the pub/sub and presence planes run on, and the gRPC
        # server that serves this node (event_loop.py); built in start().
        self.loop: NodeLoop | None = None
        # Best-effort pub/sub and presence (no Raft), on `loop`; their
        # front doors are `pubsub` and `presence`.
        self.pubsub_plane: PubSubPlane | None = None
        self.presence_plane: PresencePlane | None = None
        self.pubsub = NodePubSub(self)
        self.presence = NodePresence(self)

    # -- lifecycle --
    def start(self) -> None:
        config = self.config
        durable = config.durability == DURABILITY_DURABLE
        disk.make_private_dir(config.data_dir)
        self._recover_from_machine_crash(durable)
        self._state = StateStore(config.data_dir / "state", config.map_size_bytes)
        raft_log = DurableRaftLog(config.data_dir / "raft", durable)
        try:
            snapshot.check_log_covered(config.data_dir / snapshot.FILE_NAME, self._state.last_applied(),
                                       raft_log.first_index())
        except RuntimeError:
            raft_log._destroy()
            self._state.close()
            self._state = None
            raise
        crash_marker.mark_running(config.data_dir)
        host = self._membership_host(self._state, self._applied)
        # The committed member set (the configured one until the first change).
        peers = [m.raft_address for m in self.members() if m.raft_address != config.raft_address]
        self._replica = Replica(
            self_address=config.raft_address,
            peer_addresses=peers,
            raft_log=raft_log,
            host=host,
            snapshot_path=str(config.data_dir / snapshot.FILE_NAME),
            timings=config.timings,
            secret=config.cluster_secret,
            group_entries=batching.group_entries,
        )
        self._replica.wait_bound()
        self._barrier = ReadBarrier(lambda: self._replica.submit(commands.encode_noop(_now_ms())))
        self._ticker = LeaseTicker(self)
        self._ticker.start()
        self.available = build_plane(config, lambda request: self.query(request), self.member_set().members)
        self.available.start()
        self._start_loop_planes()
        log.info("node %s started: raft %s, data %s", config.name, config.raft_address,
                 config.data_dir)

    def _recover_from_machine_crash(self, durable: bool) -> None:
        data_dir = self.config.data_dir
        if not crash_marker.machine_crashed_since_last_run(data_dir):
            return
        if not durable:
            raise RuntimeError(
                f"{data_dir}: the machine went down while this node ran with durability="
                "'relaxed', so its Raft log may be torn; wipe the data dir and restart the "
                "node to rebuild it from the other members")
        # Unsynced state pages may be torn; the fsynced log and snapshot are
        # whole, and replaying them rebuilds the state.
        log.warning("%s: machine crash detected; rebuilding state from snapshot and log",
                    data_dir)
        shutil.rmtree(data_dir / "state", ignore_errors=True)

    def stop(self) -> None:
        # First: a backup copy under way reads LMDB and the CRDT store.
        self._backup_copies.close_and_wait()
        self._stop_loop_planes()
        if self.available is not None:
            self.available.stop()
            self.available = None
        self._stopping.set()
        with self._applied:
            self._applied.notify_all()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._replica is not None:
            self._replica.stop()
            self._replica = None
        if self._state is not None:
            self._state.close()
            self._state = None
            crash_marker.mark_stopped(self.config.data_dir)

    def __enter__(self) -> "Node":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Returns once a leader is known and this node has caught up with
        the log; raises Unavailable after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self._require_replica().status()
            if status.ready and status.leader_address is not None:
                return
            self._stopping.wait(READY_POLL_S)
        raise Unavailable(f"node {self.config.name} has no leader after {timeout_s} s; "
                          "are a majority of members running and reachable?")

    def compact(self) -> None:
        """Asks for a snapshot and log compaction on the next tick."""
        self._require_replica().compact_log()

    # -- writes --
    def propose(self, request: Message, *, timeout_s: float | None = None) -> Message:
        deadline = deadline_of(timeout_s)
        future, request_id = self._submit_write(request)
        try:
            outcome = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise self._timed_out(request_id) from None
        return self._write_response(outcome, request_id)

    async def propose_async(self, request: Message, *, timeout_s: float | None = None) -> Message:
        deadline = deadline_of(timeout_s)
        loop = asyncio.get_running_loop()
        future, request_id = self._submit_write(request, loop)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                outcome = await future
        except TimeoutError:
            raise self._timed_out(request_id) from None
        return self._write_response(outcome, request_id)

    def _submit_write(self, request: Message, loop: asyncio.AbstractEventLoop | None = None):
        """Proposes `request`; returns (future of the outcome, request id)."""
        if type(request) not in commands.WRITE_FIELDS:
            raise InvalidArgument(f"{type(request).__name__} is not a write request")
        validation.check_request(request)
        replica = self._require_replica()
        if self._map_nearly_full():
            raise ResourceExhausted(
                f"node {self.config.name}: storage map is over "
                f"{MAP_FILL_RATIO_WRITES_MAX:.0%} full; raise map_size_bytes on every "
                "member or delete data")
        request_id = request.request_id or _new_request_id()
        command = commands.encode_write(request, request_id, _now_ms(), self._space_quota_bytes)
        if len(command) > limits.COMMAND_SIZE_BYTES_MAX:
            raise InvalidArgument(
                f"request encodes to {len(command)} bytes; the limit COMMAND_SIZE_BYTES_MAX "
                f"is {limits.COMMAND_SIZE_BYTES_MAX} bytes", limit="COMMAND_SIZE_BYTES_MAX")
        batchable = commands.WRITE_FIELDS[type(request)] in BATCHABLE_OPS
        if loop is None:
            return replica.submit(command, batchable), request_id
        return replica.submit_async(command, loop, batchable), request_id

    def _map_nearly_full(self) -> bool:
        """A second line behind the space quota (which the state machine
        enforces on every write): LMDB's pages themselves, looked at every
        MAP_FILL_CHECK_WRITES writes, since the two calls into LMDB release
        the GIL, which costs a busy leader far more than the calls."""
        self._writes_since_fill_check += 1
        if self._writes_since_fill_check >= MAP_FILL_CHECK_WRITES:
            self._writes_since_fill_check = 0
            self._map_full = self._state.fill_ratio() > MAP_FILL_RATIO_WRITES_MAX
        return self._map_full

    def _write_response(self, outcome, request_id: bytes) -> Message:
        result, raft_outcome = outcome
        if raft_outcome in NOT_APPLIED:
            raise self._unavailable(f"write not applied (raft: {_reason(raft_outcome)}); retry")
        if raft_outcome is not Outcome.SUCCESS or result is None:
            raise OutcomeUnknown(
                f"write outcome unknown (raft: {_reason(raft_outcome)}); retry with the same "
                "request id", request_id=request_id)
        response = commands.decode_result(result)
        response.header.node = self.config.name
        return response

    def _timed_out(self, request_id: bytes) -> OutcomeUnknown:
        return OutcomeUnknown(
            "write not confirmed before the deadline; it may still apply: retry with the "
            "same request id", request_id=request_id)

    # -- reads --
    def query(self, request: Message, *, timeout_s: float | None = None) -> Message:
        deadline = deadline_of(timeout_s)
        reader = self._check_read(request)
        if request.consistency == LINEARIZABLE:
            barrier = self._require_barrier().join()
            try:
                outcome = barrier.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                raise read_timed_out() from None
            self._check_barrier(outcome)
        return self._read_local(reader, request)

    async def query_async(self, request: Message, *, timeout_s: float | None = None) -> Message:
        deadline = deadline_of(timeout_s)
        reader = self._check_read(request)
        if request.consistency == LINEARIZABLE:
            shared = self._async_barrier(self._require_barrier().join())
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    outcome = await asyncio.shield(shared)
            except TimeoutError:
                raise read_timed_out() from None
            self._check_barrier(outcome)
        return self._read_local(reader, request)

    def _async_barrier(self, group: concurrent.futures.Future) -> asyncio.Future:
        """One asyncio future per barrier group and loop, shared by every
        async reader waiting on that group (one thread hop, not one each)."""
        loop = asyncio.get_running_loop()
        key = (id(group), loop)
        shared = self._async_barriers.get(key)
        if shared is None:
            shared = self._async_barriers[key] = asyncio.wrap_future(group, loop=loop)
            shared.add_done_callback(lambda _: self._async_barriers.pop(key, None))
        return shared

    def _check_read(self, request: Message):
        reader = _READERS.get(type(request))
        if reader is None:
            raise InvalidArgument(f"{type(request).__name__} is not a read request")
        validation.check_request(request)
        self._require_replica()
        return reader

    def _check_barrier(self, outcome) -> None:
        _, raft_outcome = outcome
        if raft_outcome is not Outcome.SUCCESS:
            raise self._unavailable(
                f"read barrier not confirmed (raft: {_reason(raft_outcome)}); reads are safe to "
                "retry")

    def _read_local(self, reader, request: Message) -> Message:
        with self._state.read_view() as view:
            response = reader(view, request, view.last_applied())
        response.header.node = self.config.name
        return response

    # -- status --
    def status(self) -> NodeStatus:
        raft = self._require_running().status()
        # A removed node hears from no leader: the one it last knew is stale,
        # and a client told of it would ask a node that may be gone too.
        leader = None if self._removed_reason is not None else self.member_at(raft.leader_address)
        return NodeStatus(
            name=self.config.name,
            role=raft.role,
            leader=leader.name if leader else None,
            leader_client_address=leader.client_address if leader else "",
            term=raft.term,
            commit_index=raft.commit_index,
            applied_index=raft.applied_index,
            has_quorum=raft.has_quorum,
            ready=raft.ready,
            members=self.members(),
        )

    def observe_raft(self, on_proposed, on_flushed) -> None:
        """Hooks for metrics (server/observe/): `on_proposed(commands,
        entries)` after each round of proposals, `on_flushed(seconds)` after
        each durable write of the Raft log; both on Raft's threads."""
        self._require_running().observe(on_proposed, on_flushed)

    def map_use(self) -> tuple[float, int]:
        """(fraction of the state store's LMDB map in use, map size in bytes)."""
        state = self._state
        if state is None:
            raise Unavailable(f"node {self.config.name} is not running")
        return state.fill_ratio(), self.config.map_size_bytes

    def _unavailable(self, message: str) -> Unavailable:
        replica = self._replica
        leader = self.member_at(replica and replica.status().leader_address)
        hint = leader.client_address if leader else None
        return Unavailable(f"node {self.config.name}: {message}", leader_hint=hint)

    def _require_replica(self) -> Replica:
        """The replica, for a client's call: refused once this node was removed."""
        if self._removed_reason is not None:
            raise NodeRemoved(self._removed_reason)
        return self._require_running()

    def _require_running(self) -> Replica:
        if self._replica is None or self._stopping.is_set():
            raise Unavailable(f"node {self.config.name} is not running")
        return self._replica

    def _require_barrier(self) -> ReadBarrier:
        self._require_replica()
        return self._barrier


def _reason(raft_outcome: Outcome | None) -> str:
    return "timeout" if raft_outcome is None else raft_outcome.name


class _RequestIds:
    """Ids for writes that arrive without one: a random prefix drawn once per
    process (again after a fork) and a counter, so unique without a system
    call each (a syscall per write releases the GIL, which costs a busy
    process far more than the call itself)."""

    PREFIX_BYTES = limits.REQUEST_ID_BYTES // 2

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = os.urandom(self.PREFIX_BYTES)
        self._counter = itertools.count()

    def __call__(self) -> bytes:
        suffix_bytes = limits.REQUEST_ID_BYTES - self.PREFIX_BYTES
        return self._prefix + next(self._counter).to_bytes(suffix_bytes, "big")


_new_request_id = _RequestIds()


def _now_ms() -> int:
    return int(time.time() * 1000)

