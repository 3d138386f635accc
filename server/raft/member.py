"""The Raft member: pysyncobj's SyncObj with TandemKV's overrides. Private
to this package; the node holds the façade (replica.py) instead.

What it changes in pysyncobj, and why:
- The journal is the `DurableRaftLog` it is given (fsynced, group-committed;
  pysyncobj's own never fsyncs). SyncObj builds its journal through its
  module's `createJournal`; this class runs SyncObj's constructor with its
  own log in that name's place (`_syncobj_init_with_journal`), so the log is
  installed for this instance only and pysyncobj's module is left as it is.
- `_SyncObj__applyLogEntries` is wrapped: the log is flushed first (a
  single-node cluster commits without sending anything), every entry of the
  tick is applied in one write transaction of the host (`begin`, `apply`
  per entry, `commit`), and the results are handed to callers only after
  that transaction committed, so an acknowledged write is durable and
  visible to the reads that follow it. The applied index in `raft_status`
  moves at that commit too, not per entry as pysyncobj's does, so a node
  never reports an entry applied that a local read cannot see yet. A
  leader sends the new commit index at once instead of waiting a heartbeat
  period.
- `_checkCommandsToApply` first turns the writes queued since the last tick
  into log entries (`group_entries`, which packs runs of KV and counter
  writes into one entry each), hands them to the log's flusher and sends
  them at once (the leader's fsync overlaps the followers'); a pipe wakes
  the tick thread when a command is queued: adaptive batching, i.e. low
  latency when idle and large batches when busy.
- Messages wait for durability in the transport (transport.py); replies and
  appends are read as progress.py says.
- A follower answers each snapshot chunk (the leader's connection would
  otherwise time out during a long transfer), a snapshot transfer restarts
  from its first byte after a lost connection, and a received snapshot that
  is not whole is refused before it is installed (snapshot_transfer.py).
- The Raft port reads a frame only while its declared length is within
  limits.RAFT_FRAME_BYTES_MAX (port_guard.py). pysyncobj builds its
  connections by class name in two modules, so this guard is the one change
  made to pysyncobj itself, once, when this module is imported.
- Membership changes (pysyncobj's dynamic membership, one at a time, a
  removed node told of its removal): membership.py; learners: learners.py.
- A member that started on an empty disk votes for no candidate with a
  history until a leader reached it (vote_guard.py).
- Raft peers' host names are looked up again after limits.RAFT_DNS_CACHE_MS
  (pysyncobj caches them 600 s), so a member whose name moved to another
  address (a Kubernetes pod restarted) is reached at its new one.
`pinned.check_pinned_internals()` fails loudly if any of this no longer
matches.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import threading
import types
from typing import Callable

import pysyncobj.syncobj as _syncobj_module
import pysyncobj.tcp_connection
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.config import FAIL_REASON
from pysyncobj.node import TCPNode
from pysyncobj.tcp_connection import TcpConnection

from tandemkv import limits
from tandemkv.server.raft import port_guard as raft_port_guard
from tandemkv.server.raft.contract import (ROLE_CANDIDATE, ROLE_FOLLOWER, ROLE_LEADER, Outcome,
                                           RaftStatus, ReplicaHost, Timings)
from tandemkv.server.raft.learners import Learners
from tandemkv.server.raft.membership import MembershipChanges
from tandemkv.server.raft.pinned import check_pinned_internals
from tandemkv.server.raft import snapshot_transfer
from tandemkv.server.raft.progress import ReplicationProgress
from tandemkv.server.raft.transport import FlushingTransport
from tandemkv.server.raft.vote_guard import VoteGuard
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.server.storage.snapshot_check import SnapshotInvalid

log = logging.getLogger(__name__)

# Exit status when applying an entry fails (storage: map full, I/O; or an
# entry written by a newer version): skipping the entry would diverge this
# node, so it stops instead.
EXIT_STORAGE_FAILURE = 70
# pysyncobj's append-entries batch; far above the largest command, which
# avoids its chunking bug for commands near a multiple of this size.
APPEND_ENTRIES_BATCH_BYTES = limits.RAFT_APPEND_BATCH_BYTES
# pysyncobj's snapshot chunk and socket buffers, as limits.py states them.
SNAPSHOT_CHUNK_BYTES = limits.RAFT_SNAPSHOT_CHUNK_BYTES
SOCKET_BUFFER_BYTES = limits.RAFT_SOCKET_BUFFER_BYTES

# pysyncobj's failure codes as Outcomes (a code it might add is an unknown outcome).
_OUTCOMES = {getattr(FAIL_REASON, outcome.name): outcome for outcome in Outcome}
_UNKNOWN = Outcome.UNKNOWN_OUTCOME
_ROLES = {0: ROLE_FOLLOWER, 1: ROLE_CANDIDATE, 2: ROLE_LEADER}  # pysyncobj's _RAFT_STATE

# What pysyncobj calls back with (result, failure code) once it is done with a command.
Callback = Callable[[object, int], None]
# (encoded command, callback, batchable) -> [(log entry, callback)], in order
GroupEntries = Callable[[list[tuple[bytes, Callback, bool]]], list[tuple[bytes, Callback]]]

check_pinned_internals()
raft_port_guard.bound_frame_reads(TcpConnection, limits.RAFT_FRAME_BYTES_MAX,
                                  clock=pysyncobj.tcp_connection.monotonicTime)


class RaftMember(VoteGuard, ReplicationProgress, MembershipChanges, Learners, SyncObj):
    """One Raft member. Create it in the main thread and keep a reference;
    its tick thread applies committed commands to `host`."""

    def __init__(self, self_address: str, peer_addresses: list[str], raft_log: DurableRaftLog,
                 host: ReplicaHost, snapshot_path: str, timings: Timings, secret: str | None,
                 group_entries: GroupEntries):
        # Attributes set before SyncObj.__init__ are not replicated state.
        self._raft_log = raft_log
        self._host = host
        self._group_entries = group_entries
        # Told of each round of proposals, (commands, log entries), on the
        # tick thread: the node's metrics (Replica.observe); None: not told.
        self.on_proposed: Callable[[int, int], None] | None = None
        # Commands queued by callers for the tick thread (deque: thread-safe).
        self._pending: collections.deque = collections.deque()
        self._batch_thread_id: int | None = None
        self._deferred: list[tuple[Callback, object, int]] = []
        self._deferred_async: dict[asyncio.AbstractEventLoop, list] = {}
        self._wakeup_pending = False
        self._snapshot_path = snapshot_path
        # Through this index the host's state holds every entry, committed
        # (status's applied index; pysyncobj's counts entries before their
        # batch commits). Entry 1 is pysyncobj's placeholder, applied at once.
        self._applied_committed = 1
        self._init_progress()
        self._init_vote_guard(empty_disk=len(raft_log) == 0 and not os.path.exists(snapshot_path))
        learners = set(host.learner_addresses())
        self._init_membership()
        self._init_learners(learners, host.self_role(self_address))
        # SyncObj starts with the voters; the learners join as read-only
        # peers on its first tick (membership.py).
        voters = [address for address in peer_addresses if address not in learners]
        self._append_period_s = timings.append_entries_period_s
        conf = SyncObjConf(
            bindAddress=self_address,
            password=secret,
            journalFile=raft_log,  # only our createJournal sees it (pysyncobj's would refuse it)
            fullDumpFile=snapshot_path,
            serializer=self._serialize,
            deserializer=self._deserialize,
            commandsWaitLeader=False,
            commandsQueueSize=limits.RAFT_QUEUE_COMMANDS_MAX,
            raftMinTimeout=timings.election_timeout_min_s,
            raftMaxTimeout=timings.election_timeout_max_s,
            leaderFallbackTimeout=timings.leader_fallback_timeout_s,
            connectionTimeout=max(timings.connection_timeout_s, timings.election_timeout_max_s),
            connectionRetryTime=timings.connection_retry_s,
            appendEntriesUseBatch=True,
            appendEntriesPeriod=timings.append_entries_period_s,
            autoTickPeriod=timings.tick_period_s,
            appendEntriesBatchSizeBytes=APPEND_ENTRIES_BATCH_BYTES,
            logCompactionBatchSize=SNAPSHOT_CHUNK_BYTES,
            sendBufferSize=SOCKET_BUFFER_BYTES,
            recvBufferSize=SOCKET_BUFFER_BYTES,
            logCompactionMinEntries=timings.snapshot_entries_min,
            logCompactionMinTime=timings.snapshot_interval_s,
            logCompactionSplit=False,
            dynamicMembershipChange=True,  # changes one at a time: membership.py
            maxBindRetries=20,
            dnsCacheTime=limits.RAFT_DNS_CACHE_MS / 1000,
            dnsFailCacheTime=limits.RAFT_DNS_FAIL_CACHE_MS / 1000,
        )
        raft_log.set_callbacks(on_durable=self._wake, on_failure=_log_write_failed)
        init = _syncobj_init_with_journal(raft_log)
        init(self, self_address, voters, conf, transportClass=FlushingTransport)
        self.addOnTickCallback(self._release_held)
        self.addOnTickCallback(self._drop_retired)

    def _wake(self) -> None:
        transport = getattr(self, "_SyncObj__transport", None)
        if transport is not None:
            transport.wakeup.notify()

    def _release_held(self) -> None:
        self._transport().release_held()

    def _transport(self) -> FlushingTransport:
        return self._SyncObj__transport

    # -- the one replicated method --
    @replicated
    def apply(self, command: bytes):
        try:
            return self._host.apply(self.raftLastApplied + 1, command)
        except Exception:
            _crash("applying a committed entry failed in storage")

    def _apply_members(self, index: int, member_set: bytes):
        """A committed membership entry's member set, to the host (tick thread)."""
        try:
            return self._host.apply_members(index, member_set)
        except Exception:
            _crash("applying a committed membership entry failed in storage")

    # -- submitting (any thread) --
    def submit(self, command: bytes, batchable: bool) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def resolve(result, failure_code):
            try:
                future.set_result((result, _OUTCOMES.get(failure_code, _UNKNOWN)))
            except concurrent.futures.InvalidStateError:
                pass  # the waiter gave up (timeout); the outcome is dropped

        self._queue(command, self._after_commit(resolve), batchable)
        return future

    def submit_async(self, command: bytes, loop: asyncio.AbstractEventLoop,
                     batchable: bool) -> asyncio.Future:
        future = loop.create_future()

        def resolve(result, failure_code):
            outcome = (result, _OUTCOMES.get(failure_code, _UNKNOWN))
            if self._batch_thread_id == threading.get_ident():
                self._deferred_async.setdefault(loop, []).append((future, outcome))
            else:
                loop.call_soon_threadsafe(_resolve_many, [(future, outcome)])

        self._queue(command, resolve, batchable)
        return future

    def _queue(self, command: bytes, callback: Callback, batchable: bool) -> None:
        if len(self._pending) >= limits.RAFT_QUEUE_COMMANDS_MAX:
            callback(None, FAIL_REASON.QUEUE_FULL)
            return
        self._pending.append((command, callback, batchable))
        # One wake-up is enough while the tick thread has not drained the
        # queue yet; a pipe write per command costs a syscall each.
        if not self._wakeup_pending:
            self._wakeup_pending = True
            self._transport().wakeup.notify()

    def _propose_pending(self) -> None:
        """Hands the queued commands to pysyncobj as log entries (tick thread)."""
        pending = self._pending
        taken = [pending.popleft() for _ in range(len(pending))]
        if taken:
            entries = self._group_entries(taken)
            for entry, callback in entries:
                self.apply(entry, callback=callback)
            if self.on_proposed is not None:
                self.on_proposed(len(taken), len(entries))

    def _after_commit(self, callback: Callback) -> Callback:
        def deferred(result, failure_code):
            if self._batch_thread_id == threading.get_ident():
                self._deferred.append((callback, result, failure_code))
            else:
                callback(result, failure_code)
        return deferred

    def _release_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for callback, result, failure_code in deferred:
            callback(result, failure_code)
        by_loop, self._deferred_async = self._deferred_async, {}
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_many, items)
            except RuntimeError:
                pass  # that loop is closed; nobody waits any more

    # -- overrides of pysyncobj internals (see the module docstring) --
    def _SyncObj__applyLogEntries(self):  # noqa: N802
        self._raft_log.wait_durable_through(self.raftCommitIndex)
        if self.raftCommitIndex <= self.raftLastApplied:
            return SyncObj._SyncObj__applyLogEntries(self)
        self._host.begin()
        self._batch_thread_id = threading.get_ident()
        try:
            need_send = SyncObj._SyncObj__applyLogEntries(self)
            self._host.commit()
            self._applied_committed = self.raftLastApplied
        except Exception:
            _crash("committing an apply batch failed")
        finally:
            self._batch_thread_id = None
        self._release_deferred()
        return need_send or self._isLeader()

    def _checkCommandsToApply(self):  # noqa: N802
        self._wakeup_pending = False
        self._run_tick_calls()
        self._propose_pending()
        last_before = self._raft_log.last_index()
        super()._checkCommandsToApply()
        if self._raft_log.last_index() > last_before and self._isLeader():
            # The leader's own fsync starts now and overlaps the followers'
            # round trip; left to the apply's wait it would follow it.
            self._raft_log.request_flush()
            self._SyncObj__sendAppendEntries()

    # -- snapshots (pysyncobj's serializer hooks, tick thread) --
    def _serialize(self, path: str, data) -> None:
        last_entry, prev_entry, cluster = data
        # Its members are the voters: learners come from the member set it holds.
        learners = set(self._learners)
        self._host.write_snapshot(path, last_entry, prev_entry,
                                  sorted(n.address for n in cluster if n not in learners))

    def _deserialize(self, path: str):
        try:
            last_entry, prev_entry, members = self._host.read_snapshot(path)
        except SnapshotInvalid as error:
            # A received snapshot was checked whole before it was renamed
            # into place, so this is this node's own file, damaged on disk;
            # without it the state cannot be rebuilt here (pysyncobj would
            # only log the error and go on, wedged).
            log.critical("%s; move this node's data dir aside and restart the node to rebuild "
                         "it from the other members", error)
            _crash("the snapshot this node needs is damaged")
        # The state now holds (and has committed) every entry the snapshot covers.
        self._applied_committed = last_entry[1]
        # A crash between publishing a snapshot and compacting the log leaves
        # older entries at the log's head; drop them so pysyncobj keeps the
        # entries after the snapshot instead of clearing the whole log.
        self._raft_log.trim_head_to(prev_entry)
        return last_entry, prev_entry, {TCPNode(address) for address in members}

    def _SyncObj__onMessageReceived(self, node, message):  # noqa: N802
        super()._SyncObj__onMessageReceived(node, message)
        if snapshot_transfer.needs_acknowledging(message):
            self._transport().send(node, {"type": snapshot_transfer.CHUNK_RECEIVED})

    def _SyncObj__onNodeDisconnected(self, node):  # noqa: N802
        SyncObj._SyncObj__onNodeDisconnected(self, node)
        snapshot_transfer.cancel_on_disconnect(self._SyncObj__serializer, node)

    # -- status, safe to call from any thread --
    def raft_status(self) -> RaftStatus:
        return RaftStatus(role=self.role(), term=self.raftCurrentTerm,
                          commit_index=self.raftCommitIndex, applied_index=self._applied_committed,
                          leader_address=self.leader_address(), has_quorum=self.has_quorum(),
                          ready=self.isReady())

    def role(self) -> str:
        return _ROLES.get(self._SyncObj__raftState, ROLE_FOLLOWER)

    def leader_address(self) -> str | None:
        leader = self._getLeader()
        return None if leader is None else leader.address

    def has_quorum(self) -> bool:
        for _ in range(3):  # the tick thread may resize the sets it iterates
            try:
                return bool(self.hasQuorum)
            except RuntimeError:
                continue
        return False


def _syncobj_init_with_journal(raft_log: DurableRaftLog) -> Callable:
    """SyncObj.__init__, run with `raft_log` as the journal it builds. The
    constructor calls its module's `createJournal(conf.journalFile)`; this
    copy of it looks that name up in a scope of its own, where it returns
    `raft_log`, and its `Serializer` checks received snapshots
    (snapshot_transfer.py). pysyncobj's module is not changed (pinned.py checks that the
    constructor still builds its journal through that name)."""
    init = SyncObj.__init__
    if "Serializer" not in init.__code__.co_names:
        raise RuntimeError("pysyncobj.SyncObj builds its serializer differently; the pinned "
                           "internals changed")
    # Its serializer checks received snapshots from the start (before the
    # tick thread, which the constructor starts, can receive one).
    scope = dict(vars(_syncobj_module), createJournal=lambda _journal_file: raft_log,
                 Serializer=snapshot_transfer.checking_serializer)
    copy = types.FunctionType(init.__code__, scope, init.__name__, init.__defaults__,
                              init.__closure__)
    copy.__kwdefaults__ = init.__kwdefaults__
    return copy


def _resolve_many(items) -> None:
    for future, outcome in items:
        if not future.done():
            future.set_result(outcome)


def _log_write_failed(error: BaseException) -> None:
    log.critical("writing the raft log failed: %r", error)
    _crash("writing the raft log failed")


def _crash(what: str) -> None:
    log.critical("%s; stopping this node so it cannot diverge", what, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_STORAGE_FAILURE)
