"""The Raft member: pysyncobj's SyncObj with TandemKV's overrides. Private
to this package; the node holds the façade (replica.py) instead.

This file builds the member (SyncObj's configuration, its journal) and
owns how committed entries are applied; each other change to pysyncobj
lives in a mixin of its own. What changes, and why:
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
  period. A failure to apply stops the node (fatal.py).
- `_checkCommandsToApply` first proposes the writes queued since the last
  tick (submission.py: batched into log entries, a pipe waking the tick
  thread), hands them to the log's flusher and sends them at once (the
  leader's fsync overlaps the followers').
- Messages wait for durability in the transport (transport.py); replies and
  appends are read as progress.py says.
- Snapshots: written and read through the host, a received one refused
  before it is installed unless it is whole, each chunk answered, a
  transfer restarted after a lost connection (snapshot_hooks.py,
  snapshot_transfer.py).
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

import os
import threading
import types
from typing import Callable

import pysyncobj.syncobj as _syncobj_module
import pysyncobj.tcp_connection
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.tcp_connection import TcpConnection

from tandemkv import limits
from tandemkv.server.raft import port_guard as raft_port_guard
from tandemkv.server.raft import snapshot_transfer
from tandemkv.server.raft.contract import (ROLE_CANDIDATE, ROLE_FOLLOWER, ROLE_LEADER, RaftStatus, ReplicaHost,
                                           Timings)
# EXIT_STORAGE_FAILURE, _OUTCOMES and GroupEntries: replica.py imports them from here.
from tandemkv.server.raft.fatal import EXIT_STORAGE_FAILURE, crash, log_write_failed
from tandemkv.server.raft.learners import Learners
from tandemkv.server.raft.membership import MembershipChanges
from tandemkv.server.raft.pinned import check_pinned_internals
from tandemkv.server.raft.progress import ReplicationProgress
from tandemkv.server.raft.snapshot_hooks import SnapshotHooks
from tandemkv.server.raft.submission import _OUTCOMES, CommandSubmission, GroupEntries
from tandemkv.server.raft.transport import FlushingTransport
from tandemkv.server.raft.vote_guard import VoteGuard
from tandemkv.server.storage.raft_log import DurableRaftLog

__all__ = ["APPEND_ENTRIES_BATCH_BYTES", "EXIT_STORAGE_FAILURE", "SNAPSHOT_CHUNK_BYTES", "SOCKET_BUFFER_BYTES",
           "_OUTCOMES", "GroupEntries", "RaftMember"]

# pysyncobj's append-entries batch; far above the largest command, which
# avoids its chunking bug for commands near a multiple of this size.
APPEND_ENTRIES_BATCH_BYTES = limits.RAFT_APPEND_BATCH_BYTES
# pysyncobj's snapshot chunk and socket buffers, as tandemkv.limits states them.
SNAPSHOT_CHUNK_BYTES = limits.RAFT_SNAPSHOT_CHUNK_BYTES
SOCKET_BUFFER_BYTES = limits.RAFT_SOCKET_BUFFER_BYTES

_ROLES = {0: ROLE_FOLLOWER, 1: ROLE_CANDIDATE, 2: ROLE_LEADER}  # pysyncobj's _RAFT_STATE

check_pinned_internals()
raft_port_guard.bound_frame_reads(TcpConnection, limits.RAFT_FRAME_BYTES_MAX,
                                  clock=pysyncobj.tcp_connection.monotonicTime)


class RaftMember(SnapshotHooks, CommandSubmission, VoteGuard, ReplicationProgress, MembershipChanges, Learners,
                 SyncObj):
    """One Raft member. Create it in the main thread and keep a reference;
    its tick thread applies committed commands to `host`."""

    def __init__(self, self_address: str, peer_addresses: list[str], raft_log: DurableRaftLog,
                 host: ReplicaHost, snapshot_path: str, timings: Timings, secret: str | None,
                 group_entries: GroupEntries):
        # Attributes set before SyncObj.__init__ are not replicated state.
        self._raft_log = raft_log
        self._host = host
        self._init_submission(group_entries)
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
        raft_log.set_callbacks(on_durable=self._wake, on_failure=log_write_failed)
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
            crash("applying a committed entry failed in storage")

    def _apply_members(self, index: int, member_set: bytes):
        """A committed membership entry's member set, to the host (tick thread)."""
        try:
            return self._host.apply_members(index, member_set)
        except Exception:
            crash("applying a committed membership entry failed in storage")

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
            crash("committing an apply batch failed")
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
    (snapshot_transfer.py). pysyncobj's module is not changed (pinned.py
    checks that the constructor still builds its journal through that name)."""
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
