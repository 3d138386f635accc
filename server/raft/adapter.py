"""The Raft adapter: the only module that imports pysyncobj (pinned 0.3.17),
and the only one that reaches into its internals.

What it changes in pysyncobj, and why:
- The journal is `DurableRaftLog` (fsynced, group-committed), handed in
  through `conf.journalFile`; pysyncobj's own never fsyncs.
- `_FlushingTransport.send` holds back every message but a leader's
  append-entries until the log changes made before it are durable (the
  log's flusher thread fsyncs them while the tick thread goes on): an entry
  is on disk before a follower acknowledges it, and a term or vote before it
  is asked for or granted. Messages to one peer keep their order. A leader
  sends new entries at once and fsyncs while followers do the same; nothing
  of an entry becomes visible (applied, acknowledged to a client, or sent as
  committed) before the wait for durability that opens every apply.
- `_SyncObj__applyLogEntries` is wrapped: the log is flushed first (a
  single-node cluster commits without sending anything), every entry of the
  tick is applied in one LMDB write transaction, and the results are handed
  to callers only after that transaction committed, so an acknowledged
  write is durable and visible to the reads that follow it. A leader sends
  the new commit index at once instead of waiting a heartbeat period.
- `_checkCommandsToApply` first turns the writes queued since the last
  tick into log entries (`group_entries`, which packs runs of KV and
  counter writes into one entry each), then sends new entries at once; a
  pipe wakes the tick thread when a command is queued: adaptive batching,
  i.e. low latency when idle and large batches when busy.
- `_SyncObj__onMessageReceived`, replication progress. pysyncobj's replies
  carry no request identity, and with several appends in flight:
  - each success reply set the follower's next index back to just after
    its own entries, resending entries already on their way: a success
    reply may now only move the next index forward;
  - while a leader backs up over a follower's divergent tail, replies to
    appends sent before the back-up ("my log ends at N") undid it, and the
    leader resent everything from N again, forever (seen as a cluster that
    stopped committing after a partition healed): during back-up a reset
    reply may now only lower the next index, until a success.
  - a follower answering a term mismatch hints at the first index of its
    conflicting term (above its commit index), so backing up costs one
    round trip per term instead of one per entry;
  - replies now carry the follower's term; a leader ignores replies of
    another term, and resets at or below what the follower already matched.
- A follower's log, on an append (`trim_append`, `_SyncObj__deleteEntriesFrom`):
  pysyncobj dropped every entry after the append's previous index, even
  entries that match the leader's, committed and applied ones included (its
  "truncating already-applied log entries" warning), so a re-sent append
  could shrink a log below entries the leader had counted as stored. Raft's
  rule is kept instead: entries the follower already holds are skipped, the
  log is cut only where an entry conflicts, and the commit index never runs
  past what the append showed to match the leader's log.
- The Raft port reads a frame only while its declared length is within
  limits.RAFT_FRAME_BYTES_MAX, and reads no further once a frame is whole
  (raft_port_guard.py): a hostile length header is dropped unread instead
  of growing the node by the length it declares.
`check_pinned_internals()` fails loudly if any of this no longer matches.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import threading
from typing import Callable

import pysyncobj
import pysyncobj.syncobj as _syncobj_module
import pysyncobj.tcp_connection
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.config import FAIL_REASON
from pysyncobj.node import TCPNode
from pysyncobj.pipe_notifier import PipeNotifier
from pysyncobj.serializer import Serializer
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from tandemkv import limits
from tandemkv.server.node.config import RaftTimings
from tandemkv.server.storage import disk
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.server.raft import port_guard as raft_port_guard

log = logging.getLogger(__name__)

PINNED_PYSYNCOBJ_VERSION = "0.3.17"
# Exit status when applying an entry fails (storage: map full, I/O; or an
# entry written by a newer version): skipping the entry would diverge this
# node, so it stops instead.
EXIT_STORAGE_FAILURE = 70
# pysyncobj's append-entries batch; far above the largest command, which
# avoids its chunking bug for commands near a multiple of this size.
APPEND_ENTRIES_BATCH_BYTES = limits.RAFT_APPEND_BATCH_BYTES
# The bytes of a snapshot file one append-entries message carries to a
# follower that installs it (pysyncobj's default, stated so its frames are
# known to fit in limits.RAFT_FRAME_BYTES_MAX).
SNAPSHOT_CHUNK_BYTES = 1 << 16
SOCKET_BUFFER_BYTES = 1 << 20
# pysyncobj's Serializer receives a snapshot into fullDumpFile + this.
INCOMING_SNAPSHOT_SUFFIX = ".1.tmp"
INCARNATION_BYTES = 8

# A leader's own copy of an entry needs to be on disk only before the entry
# is applied (see the module docstring), not before it is replicated.
LEADER_MESSAGES_WITHOUT_FLUSH = frozenset({"append_entries"})

# Added to a follower's replies: the term it answered in (pysyncobj's own
# replies carry none, so a reply from an earlier term looked current).
REPLY_TERM_KEY = "tandemkv_term"
# ... and its process incarnation: a follower that restarted (perhaps with a
# wiped or shortened log) no longer holds what it acknowledged before.
REPLY_INCARNATION_KEY = "tandemkv_incarnation"

# pysyncobj failure codes, by what they mean for the caller.
NOT_APPLIED = frozenset(
    {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
     FAIL_REASON.NOT_LEADER, FAIL_REASON.REQUEST_DENIED}
)
SUCCESS = FAIL_REASON.SUCCESS
ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}

_REQUIRED_INTERNALS = (
    "_SyncObj__applyLogEntries",
    "_SyncObj__deleteEntriesFrom",
    "_SyncObj__sendAppendEntries",
    "_SyncObj__raftState",
    "_SyncObj__raftNextIndex",
    "_SyncObj__raftMatchIndex",
    "_SyncObj__onMessageReceived",
    "_checkCommandsToApply",
    "raftLastApplied",
    "raftCommitIndex",
    "raftCurrentTerm",
)


def check_pinned_internals() -> None:
    """Raises if pysyncobj is not the version this adapter was written for."""
    if PYSYNCOBJ_VERSION != PINNED_PYSYNCOBJ_VERSION:
        raise RuntimeError(
            f"pysyncobj {PYSYNCOBJ_VERSION} is installed; TandemKV reaches into the "
            f"internals of {PINNED_PYSYNCOBJ_VERSION} only: install pysyncobj=="
            f"{PINNED_PYSYNCOBJ_VERSION}"
        )
    instance_attributes = {"_SyncObj__raftState", "_SyncObj__raftNextIndex",
                           "_SyncObj__raftMatchIndex"}
    for name in _REQUIRED_INTERNALS:
        if name not in instance_attributes and not hasattr(SyncObj, name):
            raise RuntimeError(f"pysyncobj.SyncObj has no {name}; the pinned internals changed")
    if not callable(getattr(_syncobj_module, "createJournal", None)):
        raise RuntimeError("pysyncobj.syncobj.createJournal is gone; the pinned internals changed")
    _check_frame_reading()
    if INCOMING_SNAPSHOT_SUFFIX not in Serializer.setTransmissionData.__code__.co_consts:
        raise RuntimeError("pysyncobj receives snapshots under another name; the pinned internals changed")


def _check_frame_reading() -> None:
    """raft_port_guard replaces TcpConnection's read loop: the loop must be
    what processConnection calls, and the frame header 'i'."""
    guard = raft_port_guard
    for name in (guard.READ_LOOP, guard.READ_ONE, "_TcpConnection__processParseMessage",
                 "_TcpConnection__processConnection", "disconnect"):
        if not callable(getattr(TcpConnection, name, None)):
            raise RuntimeError(f"pysyncobj's TcpConnection has no {name}; the pinned internals changed")
    calls = TcpConnection._TcpConnection__processConnection.__code__.co_names
    parse = TcpConnection._TcpConnection__processParseMessage.__code__
    sends = TcpConnection.send.__code__.co_consts
    fields = TcpConnection.__init__.__code__.co_names
    if (guard.READ_LOOP not in calls or guard.FRAME_HEADER.format not in parse.co_consts
            or guard.FRAME_HEADER.format not in sends
            or not {guard.READ_BUFFER, guard.LAST_READ_TIME, guard.SOCKET} <= set(fields)
            or not callable(getattr(pysyncobj.tcp_connection, "monotonicTime", None))):
        raise RuntimeError("pysyncobj's TcpConnection frames or reads differently; the pinned "
                           "internals changed")


_original_create_journal = _syncobj_module.createJournal


def _create_journal(journal_file=None):
    """pysyncobj builds its journal from conf.journalFile; ours arrives there."""
    if isinstance(journal_file, DurableRaftLog):
        return journal_file
    return _original_create_journal(journal_file)


check_pinned_internals()
_syncobj_module.createJournal = _create_journal
raft_port_guard.bound_frame_reads(TcpConnection, limits.RAFT_FRAME_BYTES_MAX,
                                  clock=pysyncobj.tcp_connection.monotonicTime)


class _FlushingTransport(TCPTransport):
    """pysyncobj's TCP transport; a message that promises durability waits
    (in order, per peer) until the log is durable up to where it was sent.
    A pipe wakes the tick thread (new commands, finished fsyncs)."""

    def __init__(self, syncObj, selfNode, otherNodes):  # noqa: N803 (pysyncobj's names)
        super().__init__(syncObj, selfNode, otherNodes)
        self.wakeup = PipeNotifier(syncObj._poller)
        self._held: dict = {}  # peer -> [(durable seq needed, message)]

    def send(self, node, message):
        if message.get("type") == "next_node_idx":
            message = self._syncObj._stamped_reply(message)
        raft_log = self._syncObj._raft_log
        needed = 0
        if message.get("type") not in LEADER_MESSAGES_WITHOUT_FLUSH:
            needed = raft_log.request_flush()
        if self._held.get(node) or needed > raft_log.durable_seq:
            self._held.setdefault(node, []).append((needed, message))
            return True
        return super().send(node, message)

    def release_held(self) -> None:
        """Sends held messages whose log changes are now durable (tick thread)."""
        durable = self._syncObj._raft_log.durable_seq
        for node, held in list(self._held.items()):
            while held and held[0][0] <= durable:
                super().send(node, held.pop(0)[1])
            if not held:
                del self._held[node]


ApplyFunction = Callable[[int, bytes], "bytes | None"]
Callback = Callable[[object, int], None]
# (encoded command, callback, batchable) -> [(log entry, callback)], in order
GroupEntries = Callable[[list[tuple[bytes, Callback, bool]]], list[tuple[bytes, Callback]]]


class RaftReplica(SyncObj):
    """One Raft member. Create it in the main thread and keep a reference;
    its tick thread applies committed commands through `apply_entry(index,
    command)` between `begin_batch()` and `commit_batch()`."""

    def __init__(
        self,
        self_address: str,
        peer_addresses: list[str],
        raft_log: DurableRaftLog,
        apply_entry: ApplyFunction,
        begin_batch: Callable[[], None],
        commit_batch: Callable[[], None],
        snapshot_path: str,
        write_snapshot: Callable[[str, tuple, tuple, list[str]], None],
        read_snapshot: Callable[[str], tuple],
        timings: RaftTimings,
        secret: str | None,
        group_entries: GroupEntries,
    ):
        # Attributes set before SyncObj.__init__ are not replicated state.
        self._raft_log = raft_log
        self._group_entries = group_entries
        # Commands queued by callers for the tick thread (deque: thread-safe).
        self._pending: collections.deque = collections.deque()
        self._apply_entry = apply_entry
        self._begin_batch = begin_batch
        self._commit_batch = commit_batch
        self._batch_thread_id: int | None = None
        self._deferred: list[tuple[Callback, object, int]] = []
        self._deferred_async: dict[asyncio.AbstractEventLoop, list] = {}
        self._wakeup_pending = False
        self._answering: dict | None = None  # the append a follower is handling
        self._keep_log_from: int | None = None  # while handling it: keep the log from here
        self._probe_floors: dict = {}  # peer -> (term, lowest reset next index)
        self._incarnation = os.urandom(INCARNATION_BYTES).hex()
        self._peer_incarnations: dict = {}  # peer -> incarnation last heard
        self._write_snapshot = write_snapshot
        self._snapshot_path = snapshot_path
        self._read_snapshot = read_snapshot
        conf = SyncObjConf(
            bindAddress=self_address,
            password=secret,
            journalFile=raft_log,
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
            dynamicMembershipChange=False,
            maxBindRetries=20,
        )
        raft_log.set_callbacks(on_durable=self._wake, on_failure=_log_write_failed)
        super().__init__(self_address, peer_addresses, conf, transportClass=_FlushingTransport)
        self.addOnTickCallback(self._release_held)

    def _wake(self) -> None:
        transport = getattr(self, "_SyncObj__transport", None)
        if transport is not None:
            transport.wakeup.notify()

    def _release_held(self) -> None:
        self._transport().release_held()

    # -- the one replicated method --
    @replicated
    def apply(self, command: bytes):
        try:
            return self._apply_entry(self.raftLastApplied + 1, command)
        except Exception:
            _crash("applying a committed entry failed in storage")

    # -- submitting --
    def submit(self, command: bytes, batchable: bool = False) -> concurrent.futures.Future:
        """Queues `command`; the future resolves to (result, fail_reason)
        once this node applied it (or pysyncobj gave up on it). Callers
        must wait with a timeout: pysyncobj may never call back. A
        `batchable` command may share a log entry with others."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def resolve(result, fail_reason):
            try:
                future.set_result((result, fail_reason))
            except concurrent.futures.InvalidStateError:
                pass  # the waiter gave up (timeout); the outcome is dropped

        self._queue(command, self._after_commit(resolve), batchable)
        return future

    def submit_async(self, command: bytes, loop: asyncio.AbstractEventLoop,
                     batchable: bool = False) -> asyncio.Future:
        """As `submit`, for a caller on `loop`; the results of one apply
        batch reach each loop in a single thread hop."""
        future = loop.create_future()

        def resolve(result, fail_reason):
            if self._batch_thread_id == threading.get_ident():
                self._deferred_async.setdefault(loop, []).append((future, (result, fail_reason)))
            else:
                loop.call_soon_threadsafe(_resolve_many, [(future, (result, fail_reason))])

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
            for entry, callback in self._group_entries(taken):
                self.apply(entry, callback=callback)

    def _after_commit(self, callback: Callback) -> Callback:
        def deferred(result, fail_reason):
            if self._batch_thread_id == threading.get_ident():
                self._deferred.append((callback, result, fail_reason))
            else:
                callback(result, fail_reason)
        return deferred

    def _release_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for callback, result, fail_reason in deferred:
            callback(result, fail_reason)
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
        self._begin_batch()
        self._batch_thread_id = threading.get_ident()
        try:
            need_send = SyncObj._SyncObj__applyLogEntries(self)
            self._commit_batch()
        except Exception:
            _crash("committing an apply batch failed")
        finally:
            self._batch_thread_id = None
        self._release_deferred()
        return need_send or self._isLeader()

    def _checkCommandsToApply(self):  # noqa: N802
        self._wakeup_pending = False
        self._propose_pending()
        last_before = self._raft_log.last_index()
        super()._checkCommandsToApply()
        if self._raft_log.last_index() > last_before and self._isLeader():
            self._SyncObj__sendAppendEntries()

    def _SyncObj__onMessageReceived(self, node, message):  # noqa: N802
        kind = message.get("type")
        if kind == "next_node_idx" and self._isLeader():
            self._on_progress_reply(node, message)
            return
        serialized = message.get("serialized") if kind == "append_entries" else None
        if serialized and serialized[1]:  # the first chunk of a snapshot to install
            # pysyncobj writes it to this name with open('wb'), which keeps
            # the mode of a file that exists: private from the first byte.
            os.close(disk.open_private(self._snapshot_path + INCOMING_SNAPSHOT_SUFFIX))
        if kind == "append_entries" and "prevLogIdx" in message and "transmission" not in message:
            message, self._keep_log_from = trim_append(self._raft_log, message)
        self._answering = message if kind == "append_entries" else None
        try:
            SyncObj._SyncObj__onMessageReceived(self, node, message)
        finally:
            self._answering = None
            self._keep_log_from = None

    def _SyncObj__deleteEntriesFrom(self, from_index):  # noqa: N802
        if self._keep_log_from is not None and from_index >= self._keep_log_from:
            return  # nothing there conflicts with the leader's log (trim_append)
        SyncObj._SyncObj__deleteEntriesFrom(self, from_index)

    def _on_progress_reply(self, node, message) -> None:
        """A follower's reply to an append, on the leader (module docstring)."""
        term = self.raftCurrentTerm
        floor = self._probe_floors.get(node)
        if floor is not None and floor[0] != term:
            del self._probe_floors[node]
            floor = None
        if message.get(REPLY_TERM_KEY, term) != term:
            return  # answers an append of another term
        self._note_incarnation(node, message.get(REPLY_INCARNATION_KEY))
        failed = message.get("reset") and not message.get("success")
        if failed and message["next_node_idx"] <= self._SyncObj__raftMatchIndex.get(node, 0):
            return  # the follower already acknowledged past this: stale
        if failed and floor is not None and message["next_node_idx"] > floor[1]:
            return  # answers an append sent before the leader backed up
        next_index = self._SyncObj__raftNextIndex
        before = next_index.get(node)
        SyncObj._SyncObj__onMessageReceived(self, node, message)
        if failed:
            self._probe_floors[node] = (term, message["next_node_idx"])
        elif message.get("success"):
            self._probe_floors.pop(node, None)
            if before is not None and not message.get("reset") and next_index.get(node, before) < before:
                next_index[node] = before

    def _note_incarnation(self, node, incarnation: str | None) -> None:
        """A follower that restarted may hold less than it acknowledged:
        forget its match (lowering it only delays commits, never hastens)."""
        if incarnation is None or self._peer_incarnations.get(node) == incarnation:
            return
        if node in self._peer_incarnations:
            self._SyncObj__raftMatchIndex[node] = 0
            self._probe_floors.pop(node, None)
        self._peer_incarnations[node] = incarnation

    def _stamped_reply(self, reply: dict) -> dict:
        """On a follower: the reply carries its term, and a term-mismatch
        reply names the first index of the conflicting term instead of the
        one index below."""
        reply = dict(reply, **{REPLY_TERM_KEY: self.raftCurrentTerm,
                               REPLY_INCARNATION_KEY: self._incarnation})
        asked = self._answering
        if not reply.get("reset") or asked is None or asked.get("prevLogIdx") != reply["next_node_idx"]:
            return reply
        reply["next_node_idx"] = backtrack_hint(self._raft_log, reply["next_node_idx"],
                                                self.raftCommitIndex)
        return reply

    def _transport(self) -> _FlushingTransport:
        return self._SyncObj__transport

    # -- snapshots (pysyncobj's serializer hooks, tick thread) --
    def _serialize(self, path: str, data) -> None:
        last_entry, prev_entry, cluster = data
        self._write_snapshot(path, last_entry, prev_entry, sorted(n.address for n in cluster))

    def _deserialize(self, path: str):
        last_entry, prev_entry, members = self._read_snapshot(path)
        # A crash between publishing a snapshot and compacting the log leaves
        # older entries at the log's head; drop them so pysyncobj keeps the
        # entries after the snapshot instead of clearing the whole log.
        self._raft_log.trim_head_to(prev_entry)
        return last_entry, prev_entry, {TCPNode(address) for address in members}

    # -- status, safe to call from any thread --
    def role(self) -> str:
        return ROLE_NAMES.get(self._SyncObj__raftState, "follower")

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


def trim_append(raft_log, message: dict) -> tuple[dict, int | None]:
    """An append as pysyncobj should see it on a follower, and the index from
    which the follower's log must be kept (None: no tail to protect).

    Entries the follower already holds (same index and term; by Raft's log
    matching, everything before them matches too) are skipped, so pysyncobj
    cuts the log only at the first conflicting entry. If the append holds
    nothing new and the log goes on past it, nothing conflicts and the tail
    stays. The commit index it carries is capped at the end of what the
    append showed to match, since a kept tail is not yet known to match."""
    entries = message.get("entries") or []
    prev_index, prev_term = message["prevLogIdx"], message["prevLogTerm"]
    matched_through = prev_index + len(entries)
    first, last = raft_log.first_index(), raft_log.last_index()
    held = 0
    for _, index, term in entries:
        if not first <= index <= last or raft_log[index - first][2] != term:
            break
        held += 1
    if held:
        _, prev_index, prev_term = entries[held - 1]
        entries = entries[held:]
    keep_from = prev_index + 1 if not entries and last > prev_index else None
    trimmed = dict(message, prevLogIdx=prev_index, prevLogTerm=prev_term, entries=entries,
                   commit_index=min(message["commit_index"], matched_through))
    return trimmed, keep_from


def backtrack_hint(raft_log, mismatch_index: int, commit_index: int) -> int:
    """The first index of the term held at `mismatch_index`, but never at or
    below the commit index (committed entries match every leader's)."""
    first = raft_log.first_index()
    position = mismatch_index - first
    if not 0 <= position < len(raft_log):
        return mismatch_index
    term = raft_log[position][2]
    while position > 0 and raft_log[position - 1][2] == term:
        position -= 1
    return min(mismatch_index, max(first + position, commit_index + 1))


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
