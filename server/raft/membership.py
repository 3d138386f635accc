"""Runtime membership changes on pysyncobj's dynamic membership, with what
it leaves out. Private to this package: `RaftMember` mixes it in and the
façade (replica.py) exposes it.

A change is one pysyncobj MEMBERSHIP entry that adds or removes one Raft
address (single-server changes: the new configuration takes effect on each
node when the entry reaches its log, as the Raft paper has it), and it
carries the whole new member set (names, client addresses) as opaque bytes
for the host: when the entry commits, `host.apply_members(index, set)` runs
in the same apply batch as the entries around it, so the set is strong
state, in snapshots, and the same on every node.

What this adds to pysyncobj, and why:
- One change at a time, enforced on the leader's tick thread
  (`_SyncObj__changeCluster`): pysyncobj has the check but never sets the
  index it compares (`__changeClusterIDx` stays None), so two quick
  changes could both be in flight and two majorities could disagree. A
  change is refused (REQUEST_DENIED) while an earlier change of this
  leader's term is not committed; `change_in_progress()` names it.
  pysyncobj itself refuses a change until the leader has committed an
  entry of its own term, which covers a change left by an earlier leader.
- A removed node learns it was removed. pysyncobj's leader drops the node's
  connection the moment it appends the removal, so the node would never
  see the entry commit, and would go on believing it is a member. Here the
  leader moves it from the voters to the read-only followers instead: it
  no longer counts for the quorum, but keeps receiving entries and the
  commit index until it holds its own removal and the removal is committed
  (or MEMBER_RETIRE_WAIT_MS passed, or this node stopped leading); then its
  connection is dropped (`_drop_retired`, every tick).
- A leader cannot remove itself in pysyncobj (it refuses): it hands over
  leadership first (`transfer_leadership`), and the new leader removes it.
- Learners (members that replicate without voting, promoted later):
  learners.py, mixed in beside this.
- pysyncobj runs a change again when its entry is applied, for entries it
  did not see appended since the process started; here only those are run
  again (an addition applied after a later removal of the same node had
  been appended brought the node back).
"""

from __future__ import annotations

import collections
import concurrent.futures
import pickle
import time

from pysyncobj import SyncObj
from pysyncobj.config import FAIL_REASON
from pysyncobj.node import TCPNode
from pysyncobj.syncobj import _COMMAND_TYPE

from tandemkv import limits
from tandemkv.server.raft.learners import ADD_LEARNER, LEARNER_KINDS

ADD = "add"
REMOVE = "rem"  # pysyncobj's words for the two changes
KINDS = (ADD, REMOVE, *LEARNER_KINDS)
MEMBERSHIP_TYPE = _COMMAND_TYPE.MEMBERSHIP
# Append periods a removed node is still sent entries after it holds its
# committed removal: the commit index reaches it with the next append.
RETIRE_LINGER_APPENDS = 5


def change_payload(entry_command: bytes) -> tuple[str, str, bytes] | None:
    """(kind, raft address, encoded member set) of a membership log entry,
    None for any other entry."""
    if not entry_command or entry_command[0] != MEMBERSHIP_TYPE:
        return None
    request = pickle.loads(entry_command[1:])
    member_set = request[3] if len(request) > 3 else b""
    return request[0], request[1], member_set


class MembershipChanges:
    """Mixed into RaftMember (before SyncObj): submitting changes, the one
    change at a time rule, and removed members that learn their removal."""

    def _init_membership(self) -> None:
        # Entries at and above this index had their change run as they were
        # appended in this process; below it, pysyncobj runs it when applying
        # (set on the first tick: Learners._start_learners).
        self._changes_seen_from: int | None = None
        # (index, term, encoded set) of the last change this node appended as leader.
        self._last_change: tuple[int, int, bytes] | None = None
        # Removed nodes still sent entries: node -> (removal index, give-up monotonic time).
        self._retiring: dict = {}
        # Calls to run on the tick thread (pysyncobj's state is the tick thread's).
        self._tick_calls: collections.deque = collections.deque()

    # -- any thread --
    def submit_change(self, kind: str, raft_address: str, member_set: bytes,
                      based_on_index: int, resolve) -> None:
        """Queues a change: `kind` (one of KINDS) of `raft_address`, carrying
        the new `member_set`, computed from the set the host applied at
        `based_on_index` (refused if the host's set is another by the time
        the leader appends it); `resolve(result, failure_code)` is called
        once it applied here (result: what host.apply_members returned) or
        failed."""
        assert kind in KINDS
        command = pickle.dumps([kind, raft_address, TCPNode(raft_address), member_set,
                                based_on_index])
        self._applyCommand(command, self._after_commit(resolve), MEMBERSHIP_TYPE)
        self._transport().wakeup.notify()

    def change_in_progress(self) -> bytes | None:
        """The member set of a change this leader appended and has not
        applied yet, if any."""
        last = self._last_change
        if last is None or not self._isLeader():
            return None
        index, term, member_set = last
        if term != self.raftCurrentTerm or self.raftLastApplied >= index:
            return None
        return member_set

    def transfer_leadership(self) -> concurrent.futures.Future:
        """Asks the leader to hand over to its most caught-up follower; the
        future resolves to True once the request went out (the caller waits
        for another leader), False if it was refused (not the leader, or no
        follower has every entry yet)."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def sent(_result, failure_code):
            if not future.done():
                future.set_result(failure_code == FAIL_REASON.SUCCESS)

        self._tick_calls.append(lambda: self.transferLeadership(None, sent))
        self._transport().wakeup.notify()
        return future

    def peer_addresses(self) -> list[str]:
        """The Raft addresses of the other voters as this node has them."""
        for _ in range(3):  # the tick thread may change the set while it is copied
            try:
                return sorted(node.address for node in self._SyncObj__otherNodes)
            except RuntimeError:
                continue
        return []

    # -- the tick thread --
    def _run_tick_calls(self) -> None:
        calls = self._tick_calls
        for _ in range(len(calls)):
            calls.popleft()()

    def _SyncObj__changeCluster(self, request):  # noqa: N802
        """The leader's check before it appends a change (tick thread)."""
        if self.change_in_progress() is not None:
            return False
        based_on = request[4] if len(request) > 4 else None
        if based_on is not None and based_on != self._host.members_config_index():
            return False  # computed from a set that changed since
        index = self._SyncObj__getCurrentLogIndex() + 1
        accepted = SyncObj._SyncObj__changeCluster(self, request)
        if accepted:
            member_set = request[3] if len(request) > 3 else b""
            self._last_change = (index, self.raftCurrentTerm, member_set)
        return accepted

    def _SyncObj__doChangeCluster(self, request, reverse=False):  # noqa: N802
        node = request[2] if len(request) >= 3 else TCPNode(request[1])
        kind = request[0]
        if kind in (ADD, ADD_LEARNER) and not reverse and self._retiring.pop(node, None) is not None:
            # Added back before its retirement ended: a member again, so its
            # replication state stays (the add below sets it up afresh).
            self._SyncObj__readonlyNodes.discard(node)
        if node == self._SyncObj__selfNode:
            self._change_own_role(kind, reverse)
        if kind in LEARNER_KINDS:
            return self._change_learners(kind, node, reverse)
        voters = self._SyncObj__otherNodes
        if request[0] == REMOVE and not reverse and self._isLeader() and node in voters:
            voters.discard(node)
            self._SyncObj__readonlyNodes.add(node)
            self._retire(node)
            return True
        return SyncObj._SyncObj__doChangeCluster(self, request, reverse)

    def _retire(self, node) -> None:
        """On the leader: `node`, removed by the entry about to be
        appended, is sent entries until it holds its removal (a read-only
        follower meanwhile; `_drop_retired`)."""
        removal_index = self._SyncObj__getCurrentLogIndex() + 1
        give_up_at = time.monotonic() + limits.MEMBER_RETIRE_WAIT_MS / 1000
        self._retiring[node] = (removal_index, give_up_at, None)

    def _SyncObj__doApplyCommand(self, command):  # noqa: N802
        index = self.raftLastApplied + 1
        change = change_payload(command)
        if change is not None and self._changes_seen_from is not None and index >= self._changes_seen_from:
            # Run as it was appended; running it again could undo a later change.
            return self._apply_members(index, change[2])
        result = SyncObj._SyncObj__doApplyCommand(self, command)
        if change is None:
            return result
        return self._apply_members(index, change[2])

    def _SyncObj__deleteEntriesFrom(self, from_index):  # noqa: N802
        # Entries appended again from here have their changes run as they arrive.
        super()._SyncObj__deleteEntriesFrom(from_index)
        seen_from = getattr(self, "_changes_seen_from", None)  # None before the first tick
        if seen_from is not None:
            self._changes_seen_from = min(seen_from, from_index)

    def _drop_retired(self) -> None:
        """Drops the connection of each removed node once it holds its
        removal and the removal is committed, or after it waited too long,
        or when this node no longer leads (tick thread)."""
        if not self._retiring:
            return
        leading = self._isLeader()
        now = time.monotonic()
        commit = self.raftCommitIndex
        matched = self._SyncObj__raftMatchIndex
        for node, (removal_index, give_up_at, settled_at) in list(self._retiring.items()):
            if leading and now < give_up_at:
                if settled_at is None:
                    if commit >= removal_index and matched.get(node, 0) >= removal_index:
                        self._retiring[node] = (removal_index, give_up_at, now)
                    continue
                # Every append carries the commit index; a few periods after
                # both held, the node has been told its removal committed.
                if now - settled_at < RETIRE_LINGER_APPENDS * self._append_period_s:
                    continue
            del self._retiring[node]
            if node in self._SyncObj__otherNodes or node in self._learners:
                continue  # a member again: it keeps its replication state
            self._SyncObj__readonlyNodes.discard(node)
            self._SyncObj__raftNextIndex.pop(node, None)
            self._SyncObj__raftMatchIndex.pop(node, None)
            self._SyncObj__connectedNodes.discard(node)
            self._transport().dropNode(node)
