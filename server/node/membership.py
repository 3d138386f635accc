"""The node's side of runtime membership: the committed member set it
serves (`member_set`, `members`), the changes it proposes as leader
(`add_member` of a voter or a learner, `remove_member`, `promote_member`
of a caught-up learner), whether it was removed, and the hook other
planes follow (`on_members_changed`: the set, each member's role in its
`voter` field).

The set itself is strong state (server/strong/members.py), applied by the
`MembershipHost` on the Raft tick thread, which also keeps the node's copy
current. Until a cluster's first change its set is the configured one.
A node knows it was removed when its applied set no longer names it and
is newer than the set it joined with (`member_since`, kept in the data
dir by `serve --join`): a joining node that installs a snapshot taken
before its addition is not "removed" by it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Callable

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, OutcomeUnknown, Unavailable
from tandemkv.server.node.config import Member
from tandemkv.server.node.deadlines import deadline_of
from tandemkv.server.node.host import StateHost
from tandemkv.server.raft.replica import NOT_APPLIED, ROLE_LEADER, Outcome
from tandemkv.server.strong import members
from tandemkv.v1 import cluster_pb2

log = logging.getLogger(__name__)

# The data-dir file holding the config index of the set this node joined with.
MEMBER_SINCE_FILE = "member_since"
# Times a change is computed again when the set changed under it (another
# leader's change applied between reading the set and proposing).
CHANGE_ATTEMPTS_MAX = 3
# How often a leader handing over looks for the new leader.
HANDOVER_POLL_S = 0.05

MembersCallback = Callable[[cluster_pb2.MemberSet], None]


class MembershipHost(StateHost):
    """The state host, also applying membership entries: it tells the node
    of each new committed set (tick thread)."""

    def __init__(self, state, applied: threading.Condition, on_set: MembersCallback):
        super().__init__(state, applied)
        self._on_set = on_set
        self._config_index = 0
        self._set = cluster_pb2.MemberSet()
        # Whether this node's role is known from `_set` (not so for a node
        # that joined and holds no committed set yet: the configured set
        # would call it a voter).
        self._role_known = True

    def load(self, configured, joined: bool = False) -> cluster_pb2.MemberSet:
        """The set in the store, else the configured one; remembered as
        current. A node that `joined` without a stored set does not know
        its role yet."""
        with self._state.read_view() as view:
            stored = members.stored_set(view)
        member_set = stored if stored is not None else members.initial_set(configured)
        self._role_known = stored is not None or not joined
        self._remember(member_set)
        return member_set

    def _remember(self, member_set: cluster_pb2.MemberSet) -> None:
        self._set = member_set
        self._config_index = member_set.config_index

    def apply_members(self, index: int, member_set: bytes) -> bytes | None:
        result = members.apply_member_set(self._state.batch_view(), index, member_set)
        if result:
            applied = cluster_pb2.MemberSet.FromString(result)
            self._role_known = True
            self._remember(applied)
            self._on_set(applied)
        return result

    def members_config_index(self) -> int:
        return self._config_index

    def learner_addresses(self) -> list[str]:
        return [m.raft_address for m in members.learners(self._set)]

    def self_role(self, raft_address: str) -> bool | None:
        me = next((m for m in self._set.members if m.raft_address == raft_address), None)
        return None if me is None or not self._role_known else me.voter

    def read_snapshot(self, path: str):
        installed = super().read_snapshot(path)
        with self._state.read_view() as view:
            stored = members.stored_set(view)
        if stored is not None:
            self._role_known = True
            self._remember(stored)
            self._on_set(stored)
        return installed


class NodeMembership:
    """Mixed into Node: needs `config`, `_require_replica`, `_unavailable`,
    `_stopping` and `_state` there."""

    def _init_membership(self) -> None:
        self._member_set = members.initial_set(self.config.members)
        self._member_callbacks: list[MembersCallback] = []
        self._member_since = 0
        self._removed_reason: str | None = None

    def _membership_host(self, state, applied: threading.Condition) -> MembershipHost:
        """Builds the host and loads the committed set (before the replica starts)."""
        self._member_since = _read_member_since(self.config)
        host = MembershipHost(state, applied, self._set_applied)
        self._set_applied(host.load(self.config.members, joined=self._member_since > 0))
        return host

    def _set_applied(self, member_set: cluster_pb2.MemberSet) -> None:
        self._member_set = member_set
        names = [m.name for m in member_set.members]
        if (self.config.name not in names and member_set.config_index > self._member_since
                and self._removed_reason is None):
            self._removed_reason = (
                f"node {self.config.name} was removed from the cluster (member set of entry "
                f"{member_set.config_index}: {', '.join(names)}); it serves no calls: stop it, and "
                "wipe its data dir before it is added again")
            log.warning("%s", self._removed_reason)
        for callback in list(self._member_callbacks):
            try:
                callback(member_set)
            except Exception:  # noqa: BLE001 - a follower's bug must not stop the apply
                log.exception("a members-changed callback failed")

    # -- reading --
    def member_set(self) -> cluster_pb2.MemberSet:
        """The committed member set this node has applied."""
        return self._member_set

    def members(self) -> tuple[Member, ...]:
        """The committed members, voters and learners, sorted by name."""
        return tuple(Member(m.name, m.raft_address, m.client_address) for m in self._member_set.members)

    def member_at(self, raft_address: str | None) -> Member | None:
        return next((m for m in self.members() if m.raft_address == raft_address), None)

    def change_in_progress(self) -> str:
        """On the leader, the change it proposed and has not applied yet
        ("add n4 (raft ..., client ...)"); "" if none or not the leader."""
        replica = self._replica
        pending = replica.change_in_progress() if replica is not None else None
        if pending is None:
            return ""
        return members.describe_change(self.member_set(), cluster_pb2.MemberSet.FromString(pending))

    def removed_reason(self) -> str | None:
        """Why this node serves nothing, once it was removed; else None."""
        return self._removed_reason

    def on_members_changed(self, callback: MembersCallback) -> None:
        """Calls `callback(member_set)` with each committed member set this
        node applies or installs from a snapshot, on the Raft tick thread:
        it must return at once (hand the set to its own thread or loop)."""
        self._member_callbacks.append(callback)

    # -- changing (the leader) --
    def add_member(self, member: cluster_pb2.Member, *, learner: bool = False,
                   timeout_s: float | None = None) -> cluster_pb2.MemberSet:
        """Adds `member` as a voter (a learner if `learner`: it replicates
        the log without voting until promoted); returns the committed set."""
        return self._change_members(
            lambda current: members.with_member(current, member, learner=learner),
            lambda replica, new_set, based_on: replica.change_members(
                True, member.raft_address, new_set, based_on, learner=learner), timeout_s)

    def remove_member(self, name: str, *, timeout_s: float | None = None) -> cluster_pb2.MemberSet:
        """Removes member `name` (a voter or a learner); returns the
        committed set. Removing this node while it leads hands leadership
        over first and raises Unavailable naming the new leader (retry
        there)."""
        if name == self.config.name and self._require_replica().status().role == ROLE_LEADER:
            self._hand_over(timeout_s)
        gone = members.member_named(self.member_set(), name)
        address = gone.raft_address if gone is not None else ""
        learner = gone is not None and not gone.voter
        return self._change_members(
            lambda current: members.without_member(current, name),
            lambda replica, new_set, based_on: replica.change_members(
                False, address, new_set, based_on, learner=learner), timeout_s)

    def promote_member(self, name: str, *, timeout_s: float | None = None) -> cluster_pb2.MemberSet:
        """Makes learner `name` a voter once it is caught up (the leader's
        copy of its log within LEARNER_PROMOTE_LAG_ENTRIES_MAX entries of
        the commit index, and connected); returns the committed set.
        Raises FailedPrecondition for a learner that is behind (saying how
        far), a voter, or a name that is not a member."""
        learner = cluster_pb2.Member()

        def promoted(current: cluster_pb2.MemberSet) -> cluster_pb2.MemberSet:
            changed = members.with_promoted(current, name)
            learner.CopyFrom(members.member_named(current, name))
            self._refuse_if_behind(learner)
            return changed

        return self._change_members(
            promoted, lambda replica, new_set, based_on: replica.promote_learner(
                learner.raft_address, new_set, based_on), timeout_s)

    def _refuse_if_behind(self, learner: cluster_pb2.Member) -> None:
        replica = self._require_replica()
        matched, connected = replica.learner_progress(learner.raft_address)
        commit = replica.status().commit_index
        lag_max = limits.LEARNER_PROMOTE_LAG_ENTRIES_MAX
        if not connected:
            raise FailedPrecondition(
                f"learner {learner.name} is not connected to the leader (its log holds entries through "
                f"{matched}, the commit index is {commit}); start it (`tandemkv serve ... --join`) and "
                "promote it once it caught up")
        if commit - matched > lag_max:
            raise FailedPrecondition(
                f"learner {learner.name} is {commit - matched} entries behind the leader's commit index "
                f"{commit} (its log holds entries through {matched}); a learner is promoted within "
                f"{lag_max} entries (LEARNER_PROMOTE_LAG_ENTRIES_MAX): retry once it caught up")

    def _change_members(self, change, propose, timeout_s: float | None) -> cluster_pb2.MemberSet:
        """Runs `change(current set) -> new set` (None: already so) and
        `propose(replica, encoded new set, based on index) -> future` on the
        leader, again if the set changed in between."""
        deadline = deadline_of(timeout_s)
        for _ in range(CHANGE_ATTEMPTS_MAX):
            replica = self._require_replica()
            if replica.status().role != ROLE_LEADER:
                raise self._unavailable("membership changes are made by the leader; retry there")
            self._refuse_if_in_progress()
            current = self.member_set()
            changed = change(current)
            if changed is None:
                return current  # already so
            future = propose(replica, changed.SerializeToString(), current.config_index)
            try:
                result, outcome = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                raise OutcomeUnknown(
                    f"membership change ({members.describe_change(current, changed)}) not confirmed "
                    "before the deadline; it may still apply: see `tandemkv member list`") from None
            if outcome is Outcome.SUCCESS and result:
                return cluster_pb2.MemberSet.FromString(result)
            if outcome is Outcome.REQUEST_DENIED:
                self._refuse_if_in_progress()
                if self.member_set().config_index != current.config_index:
                    continue  # the set changed under this one: compute it again
                raise self._unavailable("the leader has not committed an entry of its term yet; retry")
            if outcome in NOT_APPLIED:
                raise self._unavailable(f"membership change not applied (raft: {outcome.name}); retry")
            raise OutcomeUnknown(f"membership change outcome unknown (raft: {outcome.name}); see "
                                 "`tandemkv member list`")
        raise self._unavailable("the member set kept changing meanwhile; retry")

    def _refuse_if_in_progress(self) -> None:
        change = self.change_in_progress()
        if change:
            raise FailedPrecondition(
                f"another membership change is in progress ({change}); one change at a time: "
                "retry once it committed")

    def _hand_over(self, timeout_s: float | None) -> None:
        """Hands leadership to a caught-up follower, then raises Unavailable
        naming it, for the caller to retry the removal there."""
        replica = self._require_replica()
        deadline = min(deadline_of(timeout_s), time.monotonic() + limits.LEADER_HANDOVER_WAIT_MS / 1000)
        while time.monotonic() < deadline:
            asked = replica.transfer_leadership()
            try:
                asked.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                break
            status = replica.status()
            if status.role != ROLE_LEADER and status.leader_address:
                leader = self.member_at(status.leader_address)
                raise Unavailable(
                    f"node {self.config.name} handed leadership to "
                    f"{leader.name if leader else status.leader_address} before its removal; "
                    "retry there", leader_hint=leader.client_address if leader else None)
            self._stopping.wait(HANDOVER_POLL_S)
        raise self._unavailable(
            f"node {self.config.name} leads and could not hand leadership to a caught-up "
            f"follower within {limits.LEADER_HANDOVER_WAIT_MS} ms; retry")


def _read_member_since(config) -> int:
    path = config.data_dir / MEMBER_SINCE_FILE
    if config.member_since_index and not path.exists():
        path.write_text(f"{config.member_since_index}\n")
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0
