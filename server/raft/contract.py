"""What the Raft replica promises its user and what it asks of its host,
in the project's own words: nothing here names pysyncobj, and importing it
loads nothing of it.

- `Outcome`: how a submitted command ended, from the caller's side.
- `RaftStatus`: one look at the replica (role, term, indexes, leader).
- `ReplicaHost`: the state the replica applies committed entries to; its
  methods run on the Raft tick thread.
- `Timings`: the timing knobs the replica is built with.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol


class Outcome(enum.Enum):
    """How a submitted command ended. The names are the ones operators see
    in error messages ("raft: QUEUE_FULL")."""

    SUCCESS = "success"                  # applied on this node; the result is its answer
    QUEUE_FULL = "queue_full"            # refused before it reached the log
    MISSING_LEADER = "missing_leader"    # no leader known: not proposed
    DISCARDED = "discarded"              # another entry took its place in the log
    NOT_LEADER = "not_leader"            # the leader changed before it was proposed
    LEADER_CHANGED = "leader_changed"    # the leader changed after it was proposed: unknown
    REQUEST_DENIED = "request_denied"    # refused by the leader
    UNKNOWN_OUTCOME = "unknown_outcome"  # the replica cannot tell whether it applied


# Outcomes that guarantee the command was not applied: safe to retry as new.
NOT_APPLIED = frozenset({Outcome.QUEUE_FULL, Outcome.MISSING_LEADER, Outcome.DISCARDED,
                         Outcome.NOT_LEADER, Outcome.REQUEST_DENIED})

ROLE_FOLLOWER = "follower"
ROLE_CANDIDATE = "candidate"
ROLE_LEADER = "leader"


@dataclasses.dataclass(frozen=True)
class RaftStatus:
    """One look at the replica; each field is read on its own, so two of
    them may straddle a tick (the term may be one newer than the role)."""

    role: str                   # ROLE_FOLLOWER, ROLE_CANDIDATE or ROLE_LEADER
    term: int
    commit_index: int
    applied_index: int          # every entry through it is in committed local state: reads see it
    leader_address: str | None  # the Raft address of the leader this node knows of
    has_quorum: bool
    ready: bool                 # caught up with the log since it started


class ReplicaHost(Protocol):
    """The state a replica applies committed entries to. Every method runs
    on the Raft tick thread; none may block on the replica (it would wait on
    itself), and an exception from any of them stops the process (skipping
    an entry would make this node diverge from the others)."""

    def begin(self) -> None:
        """Opens the write transaction of one apply batch."""

    def apply(self, index: int, command: bytes) -> bytes | None:
        """Applies the committed entry at `index` inside the open batch;
        returns the result handed to whoever submitted it."""

    def commit(self) -> None:
        """Commits the batch: what it applied becomes durable and visible;
        only then are the submitters' futures resolved."""

    def apply_members(self, index: int, member_set: bytes) -> bytes | None:
        """Applies the committed membership entry at `index` (it carries the
        encoded new member set) inside the open batch; returns the result
        handed to whoever submitted the change."""

    def members_config_index(self) -> int:
        """The index of the membership entry the host's member set came
        from (0: the configured set)."""

    def learner_addresses(self) -> list[str]:
        """The Raft addresses of the members of the host's set that do not
        vote (learners)."""

    def self_role(self, raft_address: str) -> bool | None:
        """Whether the member at `raft_address` (this node) votes in the
        host's set: True a voter, False a learner, None not known (a node
        that joined and holds no committed set naming it yet)."""

    def write_snapshot(self, path: str, last_entry: tuple, prev_entry: tuple,
                       members: list[str]) -> None:
        """Writes the whole applied state to `path`, with the Raft position
        it covers and the members' Raft addresses."""

    def read_snapshot(self, path: str) -> tuple[tuple, tuple, list[str]]:
        """Installs the snapshot at `path`; returns (last_entry, prev_entry,
        members) as written."""


class Timings(Protocol):
    """The timing knobs a replica is built with, in seconds (a node's
    `RaftTimings` has them); read only."""

    @property
    def election_timeout_min_s(self) -> float: ...
    @property
    def election_timeout_max_s(self) -> float: ...
    @property
    def leader_fallback_timeout_s(self) -> float: ...
    @property
    def append_entries_period_s(self) -> float: ...
    @property
    def tick_period_s(self) -> float: ...
    @property
    def connection_timeout_s(self) -> float: ...
    @property
    def connection_retry_s(self) -> float: ...
    @property
    def snapshot_entries_min(self) -> int: ...
    @property
    def snapshot_interval_s(self) -> float: ...
