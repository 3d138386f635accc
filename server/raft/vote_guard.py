"""A member whose disk is empty does not vote for a candidate with a
history until it has caught up with a leader (a mixin of RaftMember).

Why: Raft's safety rests on each member remembering its current term and
the vote it cast in it, on disk. A member whose data dir was wiped and
that starts again under its old name (static peers, or `--join` finding
its name in the set) has forgotten both: it could grant a vote for a term
it already voted in, or for a candidate whose log lacks an entry it had
helped commit, and two terms' worth of "committed" entries could then
disagree (docs/membership.md, "A wiped disk under the old name").

The rule, for a member that starts with an empty log (only pysyncobj's
initial entry, term 0):
- while it has received nothing from a leader, it votes only for a
  candidate with an empty log too: a cluster being founded, where every
  member starts empty, elects its first leader as before; a candidate with
  a history gets no vote from it;
- once a leader's entries reach it, it has learnt the current term T, and
  it votes in no term up to T (it may have voted in T before it was
  wiped); from term T + 1 on it votes as any member does.

The cost: a member added to a cluster with history does not vote until a
leader has sent it the log, as a learner would not; if the leader fails
in that window, the other members elect one without it (or, when they are
not a quorum of the new set without it, once it comes back). The remedy
for a wiped member stays the documented one: remove it and add it again.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# pysyncobj's log of a member that never received an entry: its initial
# no-op at index 1, term 0.
_EMPTY_LOG_INDEX = 1


class VoteGuard:
    """Needs SyncObj's log index and term, and its message handler."""

    # Until `_init_vote_guard`: a member that votes as any does.
    _empty_disk = False
    _votes_barred_through_term = -1

    def _init_vote_guard(self, empty_disk: bool) -> None:
        """Before SyncObj's constructor: whether this member starts with
        neither a log nor a snapshot on its disk."""
        self._empty_disk = empty_disk
        self._votes_barred_through_term = -1

    def _SyncObj__onMessageReceived(self, node, message):  # noqa: N802
        if self._empty_disk:
            self._note_caught_up()
        if message.get("type") == "request_vote" and self._refuses_vote(message):
            return
        super()._SyncObj__onMessageReceived(node, message)

    def _note_caught_up(self) -> None:
        if self._SyncObj__getCurrentLogIndex() > _EMPTY_LOG_INDEX:
            # A leader's entries (or snapshot) arrived, and with them its
            # term: one this member may have voted in before its disk was
            # emptied.
            self._empty_disk = False
            self._votes_barred_through_term = self._SyncObj__raftCurrentTerm
            log.info("a leader reached this member, which started on an empty disk: it votes again "
                     "from term %d", self._votes_barred_through_term + 1)

    def _refuses_vote(self, message) -> bool:
        if self._empty_disk:
            has_history = message["last_log_index"] > _EMPTY_LOG_INDEX or message["last_log_term"] > 0
            if has_history:
                log.info("no vote for a candidate with a history in term %d: this member started on an "
                         "empty disk and has not heard from a leader yet", message["term"])
            return has_history
        return message["term"] <= self._votes_barred_through_term
