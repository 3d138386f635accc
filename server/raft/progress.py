"""Replication progress: how a leader reads its followers' replies, and how
a follower keeps its log on an append. pysyncobj's replies carry no request
identity, and with several appends in flight:

- each success reply set the follower's next index back to just after its
  own entries, resending entries already on their way: a success reply may
  now only move the next index forward;
- while a leader backs up over a follower's divergent tail, replies to
  appends sent before the back-up ("my log ends at N") undid it, and the
  leader resent everything from N again, forever (seen as a cluster that
  stopped committing after a partition healed): during back-up a reset
  reply may now only lower the next index, until a success;
- a follower answering a term mismatch hints at the first index of its
  conflicting term (above its commit index), so backing up costs one round
  trip per term instead of one per entry;
- replies now carry the follower's term and process incarnation; a leader
  ignores replies of another term, and resets at or below what the
  follower already matched; a follower that restarted loses its match.

A follower's log, on an append (`trim_append`, `_SyncObj__deleteEntriesFrom`):
pysyncobj dropped every entry after the append's previous index, even
entries that match the leader's, committed and applied ones included (its
"truncating already-applied log entries" warning), so a re-sent append
could shrink a log below entries the leader had counted as stored. Raft's
rule is kept instead: entries the follower already holds are skipped, the
log is cut only where an entry conflicts, and the commit index never runs
past what the append showed to match the leader's log. A snapshot chunk
shows nothing to match, so it moves no commit index (`cap_snapshot_commit`):
pysyncobj let it commit and apply a deposed leader's own unreplicated tail.

`ReplicationProgress` is a mixin of the replica's SyncObj subclass
(member.py); it keeps its own fields, set up by `_init_progress()`.
"""

from __future__ import annotations

import os

from pysyncobj import SyncObj
from pysyncobj.config import FAIL_REASON

from tandemkv.server.storage import disk

# pysyncobj's Serializer receives a snapshot into fullDumpFile + this.
INCOMING_SNAPSHOT_SUFFIX = ".1.tmp"
INCARNATION_BYTES = 8

# Added to a follower's replies: the term it answered in (pysyncobj's own
# replies carry none, so a reply from an earlier term looked current).
REPLY_TERM_KEY = "tandemkv_term"
# ... and its process incarnation: a follower that restarted (perhaps with a
# wiped or shortened log) no longer holds what it acknowledged before.
REPLY_INCARNATION_KEY = "tandemkv_incarnation"


class ReplicationProgress:
    """Overrides of pysyncobj's message handling (see the module docstring).
    Needs `_raft_log` and `_snapshot_path` on the instance."""

    def _init_progress(self) -> None:
        self._answering: dict | None = None  # the append a follower is handling
        self._keep_log_from: int | None = None  # while handling it: keep the log from here
        self._probe_floors: dict = {}  # peer -> (term, lowest reset next index)
        self._incarnation = os.urandom(INCARNATION_BYTES).hex()
        self._peer_incarnations: dict = {}  # peer -> incarnation last heard

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
        leader_commit = message.get("commit_index") if kind == "append_entries" else None
        if kind == "append_entries" and "prevLogIdx" in message and "transmission" not in message:
            message, self._keep_log_from = trim_append(self._raft_log, message)
        elif kind == "append_entries" and "prevLogIdx" not in message:
            # A snapshot chunk, or word that the leader's snapshot is not
            # ready to send yet (`serialized` None): neither shows a log to match.
            message = cap_snapshot_commit(message, self.raftCommitIndex)
        applied_before = self.raftLastApplied
        self._answering = message if kind == "append_entries" else None
        try:
            SyncObj._SyncObj__onMessageReceived(self, node, message)
        finally:
            self._answering = None
            self._keep_log_from = None
        if leader_commit is None:
            return
        if self._SyncObj__leaderCommitIndex == message.get("commit_index") != leader_commit:
            # The cap is for this node's commit index alone: readiness waits
            # for the leader's own (pysyncobj's onReady compares with it).
            self._SyncObj__leaderCommitIndex = leader_commit
        if "prevLogIdx" not in message and self.raftLastApplied != applied_before:
            self._on_snapshot_installed()

    def _on_snapshot_installed(self) -> None:
        """Every entry the snapshot covers is committed; a command this node
        proposed at one of those indexes cannot learn whether its entry is
        the one there (the log that held it is gone): its caller is told the
        outcome is unknown now rather than at its deadline."""
        installed = self.raftLastApplied
        self._SyncObj__raftCommitIndex = installed
        self._raft_log.setRaftCommitIndex(installed)
        waiting = self._SyncObj__commandsWaitingCommit
        for index in [index for index in waiting if index <= installed]:
            for _term, callback in waiting.pop(index):
                callback(None, FAIL_REASON.UNKNOWN_OUTCOME)

    def _SyncObj__deleteEntriesFrom(self, from_index):  # noqa: N802
        if self._keep_log_from is not None and from_index >= self._keep_log_from:
            return  # nothing there conflicts with the leader's log (trim_append)
        super()._SyncObj__deleteEntriesFrom(from_index)

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


def cap_snapshot_commit(message: dict, commit_index: int) -> dict:
    """A snapshot chunk (or an append saying the leader's snapshot is not
    ready yet) as pysyncobj should see it on a follower: carrying no commit
    index above the follower's own.

    pysyncobj raised a follower's commit index to the leader's (capped at
    the follower's log end) on every append, a snapshot chunk too, though
    a chunk shows nothing of the follower's log to match the leader's. A
    deposed leader being sent a snapshot thus committed its own unreplicated
    tail at the first chunk and applied it: its clients were told "done"
    for writes the snapshot then erased (seen as a member whose addition
    was acknowledged to it and is in no other member's set). Until the
    snapshot is installed the follower's commit index stays where it was;
    installed, it is the snapshot's last index."""
    if "commit_index" not in message or message["commit_index"] <= commit_index:
        return message
    return dict(message, commit_index=commit_index)


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
