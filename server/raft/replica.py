"""`Replica`: the one door to the Raft layer. The node holds a Replica, gives
it a `ReplicaHost` (contract.py) to apply committed entries to, submits
commands and reads `status()`; nothing outside server/raft/ sees pysyncobj,
its method names or its failure codes (a test scans for them).

The path of a write:
1. a caller's thread: `submit(command, batchable)` queues the command
   (`RaftMember._queue`: a deque, and one pipe write to wake the tick
   thread if it is not already due to look) and returns a future;
2. the tick thread: `_checkCommandsToApply` packs the queued commands into
   log entries (`group_entries`), appends them to the durable log and sends
   them to the followers at once (transport.py holds back what must wait for
   the disk);
3. the tick thread, once a majority holds an entry: `_SyncObj__applyLogEntries`
   waits for the local log to be durable through the commit index, then
   calls `host.begin()`, `host.apply(index, command)` for each committed
   entry, and `host.commit()`, one transaction for the whole tick;
4. only then are the futures resolved, to (result, Outcome): in one go for
   the blocking callers, and in one thread hop per asyncio loop.
The host is the node's state (server/node/host.py), not the node itself: a
write visits the node once, on the caller's side, to build its command.

Threads: build a Replica in the main thread (pysyncobj's tick thread stops
when the thread that created it exits) and keep a reference; every method
is safe from any thread. Callers must wait with a timeout: a command may
never be answered (a leader that loses its place may drop it silently).
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from tandemkv.server.raft.contract import (NOT_APPLIED, ROLE_CANDIDATE, ROLE_FOLLOWER, ROLE_LEADER,
                                           Outcome, RaftStatus, ReplicaHost, Timings)
from tandemkv.server.raft.member import _OUTCOMES, EXIT_STORAGE_FAILURE, GroupEntries, RaftMember
from tandemkv.server.raft.learners import ADD_LEARNER, PROMOTE, REMOVE_LEARNER
from tandemkv.server.raft.membership import ADD, REMOVE
from tandemkv.server.storage.raft_log import DurableRaftLog

__all__ = ["EXIT_STORAGE_FAILURE", "NOT_APPLIED", "ROLE_CANDIDATE", "ROLE_FOLLOWER", "ROLE_LEADER",
           "Outcome", "RaftStatus", "Replica", "ReplicaHost", "Timings"]


class Replica:
    """One member of the Raft group, applying committed commands to `host`."""

    def __init__(self, *, self_address: str, peer_addresses: list[str], raft_log: DurableRaftLog,
                 host: ReplicaHost, snapshot_path: str, timings: Timings, secret: str | None,
                 group_entries: GroupEntries):
        """Starts the member (its tick thread and its port binding; see
        `wait_bound`). `raft_log` is its journal; `snapshot_path` the file
        its snapshots are written to and installed from; `group_entries`
        packs queued commands into log entries."""
        self._member = RaftMember(self_address, peer_addresses, raft_log, host, snapshot_path,
                                  timings, secret, group_entries)

    def submit(self, command: bytes, batchable: bool = False) -> concurrent.futures.Future:
        """Queues `command`; the future resolves to (result, Outcome) once
        this node applied it, or the Raft layer gave up on it (result None).
        A `batchable` command may share a log entry with others."""
        return self._member.submit(command, batchable)

    def submit_async(self, command: bytes, loop: asyncio.AbstractEventLoop,
                     batchable: bool = False) -> asyncio.Future:
        """As `submit`, for a caller on `loop`; the results of one apply
        batch reach each loop in a single thread hop."""
        return self._member.submit_async(command, loop, batchable)

    def change_members(self, adding: bool, raft_address: str, member_set: bytes,
                       based_on_index: int, *, learner: bool = False) -> concurrent.futures.Future:
        """Proposes adding (or removing) the voter (`learner`: the learner)
        at `raft_address`; the
        entry carries the encoded new `member_set` for the host, computed
        from the host's set of `based_on_index`. The future resolves to
        (result, Outcome) as `submit`'s does; REQUEST_DENIED means another
        change is not applied yet (`change_in_progress`), the host's set is
        no longer the one of `based_on_index`, or this leader has not
        committed an entry of its term yet. Only the
        leader accepts changes: a follower forwards it to the leader."""
        if learner:
            kind = ADD_LEARNER if adding else REMOVE_LEARNER
        else:
            kind = ADD if adding else REMOVE
        return self._change(kind, raft_address, member_set, based_on_index)

    def promote_learner(self, raft_address: str, member_set: bytes,
                        based_on_index: int) -> concurrent.futures.Future:
        """Proposes making the learner at `raft_address` a voter; as
        `change_members` otherwise. The caller checks it is caught up
        (`learner_progress`) first."""
        return self._change(PROMOTE, raft_address, member_set, based_on_index)

    def _change(self, kind: str, raft_address: str, member_set: bytes,
                based_on_index: int) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def resolve(result, failure_code):
            if not future.done():
                future.set_result((result, _OUTCOMES.get(failure_code, Outcome.UNKNOWN_OUTCOME)))

        self._member.submit_change(kind, raft_address, member_set, based_on_index, resolve)
        return future

    def learner_progress(self, raft_address: str) -> tuple[int, bool]:
        """On the leader: (the index through which the learner at
        `raft_address` holds the log, whether it is connected now)."""
        return self._member.learner_progress(raft_address)

    def learner_addresses(self) -> list[str]:
        """The learners' Raft addresses in this member's configuration."""
        return self._member.learner_addresses()

    def is_learner(self) -> bool:
        """Whether this member does not vote (a learner, or a node that
        joined and has not seen its role yet): it never starts an election."""
        return self._member.is_learner()

    def change_in_progress(self) -> bytes | None:
        """The member set of a change this leader has not committed yet."""
        return self._member.change_in_progress()

    def transfer_leadership(self) -> concurrent.futures.Future:
        """Asks this leader to hand over to its most caught-up follower:
        resolves to True once asked (watch `status()` for the new leader),
        False if refused (not the leader, or no follower has every entry)."""
        return self._member.transfer_leadership()

    def peer_addresses(self) -> list[str]:
        """The other voters' Raft addresses as this member has them now."""
        return self._member.peer_addresses()

    def status(self) -> RaftStatus:
        return self._member.raft_status()

    def observe(self, on_proposed, on_flushed) -> None:
        """Hooks for the node's metrics: `on_proposed(commands, entries)` on
        the tick thread after each round of proposals, `on_flushed(seconds)`
        on the log's flusher after each durable write. Keep them short."""
        self._member.on_proposed = on_proposed
        self._member._raft_log.on_flushed = on_flushed

    def wait_bound(self) -> None:
        """Returns once the Raft port is bound; raises if it cannot be."""
        self._member.waitBinded()

    def compact_log(self) -> None:
        """Asks for a snapshot and log compaction on the next tick."""
        self._member.forceLogCompaction()

    def stop(self) -> None:
        """Stops the member and waits until its tick thread is gone."""
        self._member.destroy_synchronous()
