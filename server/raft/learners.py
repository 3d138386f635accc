"""Learners: members that replicate the log but neither vote nor count
for the quorum, promoted to voters later. Private to this package:
`RaftMember` mixes `Learners` in (after MembershipChanges, which routes
the learner change kinds here), and the façade (replica.py) exposes it.

pysyncobj's own read-only nodes connect without an address and get a
counter id, so the leader could not tell which learner is which (nor
promote one). Here a learner is an ordinary addressed peer of the
transport that sits in SyncObj's read-only set instead of its voters
(`__otherNodes`): the leader sends it entries and tracks its match index,
commits and steps down counting voters only. Three change kinds of our own
(ADD_LEARNER, PROMOTE, REMOVE_LEARNER; pysyncobj ignores kinds it does not
know) move addresses between the two sets on every node as the entry
reaches its log, and back if the entry is cut. A learner never starts an
election (its election deadline is pushed on every tick); it may still
answer a vote request, which only a candidate that already counts it as a
voter sends. A node that joined and has not yet seen its own role in the
log or a snapshot does not start elections either. The host's member set
is what a snapshot's learners are read from: a snapshot lists the voters
only (member.py writes it so).

Each node knows its own role: `self_voter` from the host at start (None
while unknown), then from each change that names it and from an installed
snapshot's member set.
"""

from __future__ import annotations

import time

from pysyncobj import SyncObj
from pysyncobj.node import TCPNode

ADD_LEARNER = "add_learner"
PROMOTE = "promote"
REMOVE_LEARNER = "rem_learner"  # ours: pysyncobj's __doChangeCluster ignores them
LEARNER_KINDS = (ADD_LEARNER, PROMOTE, REMOVE_LEARNER)
_ADD = "add"  # pysyncobj's word (membership.ADD)


class Learners:
    """Mixed into RaftMember: the learner set, this node's role, and the
    changes that move members between learners and voters (tick thread
    unless a method says otherwise)."""

    def _init_learners(self, learner_addresses, self_voter: bool | None) -> None:
        """Before SyncObj.__init__: `learner_addresses` are the members that
        do not vote (this node's own address among them if it is one);
        `self_voter` this node's role, None while unknown (a node that
        joined and has seen neither its addition nor a snapshot)."""
        self._learners = {TCPNode(address) for address in learner_addresses}
        self._self_voter = self_voter
        self._learners_started = False

    # -- any thread --
    def learner_progress(self, raft_address: str) -> tuple[int, bool]:
        """On the leader: (the index through which the learner at
        `raft_address` holds the log, whether it is connected now)."""
        node = TCPNode(raft_address)
        for _ in range(3):  # the tick thread may change the dicts while they are read
            try:
                return (self._SyncObj__raftMatchIndex.get(node, 0),
                        node in self._SyncObj__connectedNodes)
            except RuntimeError:
                continue
        return 0, False

    def learner_addresses(self) -> list[str]:
        """The learners' Raft addresses in this node's configuration."""
        return sorted(node.address for node in set(self._learners))

    def is_learner(self) -> bool:
        """Whether this node does not vote (a learner, or its role unknown yet)."""
        return self._self_voter is not True

    # -- the tick thread --
    def _start_learners(self) -> None:
        """The first tick: the learners become read-only peers (SyncObj was
        built with the voters only; its tick thread owns these sets)."""
        self._learners_started = True
        self._changes_seen_from = self._SyncObj__getCurrentLogIndex() + 1
        for node in self._learners - {self._SyncObj__selfNode}:
            self._add_peer(node)

    def _onTick(self, timeToWait=0.0):  # noqa: N802, N803 (pysyncobj's names)
        if not self._learners_started:
            self._start_learners()
        if self._self_voter is not True:
            # A full election timeout ahead on every tick: never reached while
            # it does not vote, and a normal timeout once it is promoted.
            self._SyncObj__raftElectionDeadline = time.monotonic() + self.conf.raftMaxTimeout
        return SyncObj._onTick(self, timeToWait)

    def _change_own_role(self, kind: str, reverse: bool) -> None:
        """A change naming this node tells it its role (it learns it from
        the log when it joined without a snapshot)."""
        if kind == _ADD and not reverse:
            self._self_voter = True
        elif kind == PROMOTE:
            self._self_voter = not reverse
        elif kind == ADD_LEARNER and not reverse:
            self._self_voter = False

    def _change_learners(self, kind: str, node, reverse: bool) -> bool:
        """Applies (or, `reverse`, undoes) a learner change to this node's
        configuration; True if it changed anything."""
        voters, learners = self._SyncObj__otherNodes, self._learners
        if kind == PROMOTE:
            if reverse:  # a voter again a learner
                if node not in voters and node != self._SyncObj__selfNode:
                    return False
                voters.discard(node)
                learners.add(node)
                if node != self._SyncObj__selfNode:
                    self._SyncObj__readonlyNodes.add(node)
                return True
            if node not in learners:
                return False
            learners.discard(node)
            if node != self._SyncObj__selfNode:
                self._SyncObj__readonlyNodes.discard(node)
                voters.add(node)
                self._SyncObj__raftNextIndex.setdefault(node, self._SyncObj__getCurrentLogIndex() + 1)
                self._SyncObj__raftMatchIndex.setdefault(node, 0)
                if self._isLeader():
                    self._SyncObj__lastResponseTime[node] = time.monotonic()
                self._add_peer(node, readonly=False)
            return True
        adding = (kind == ADD_LEARNER) != reverse
        if adding:
            if node in learners:
                return False
            voters.discard(node)  # only a node that joined from a listing held it as a voter
            learners.add(node)
            if node != self._SyncObj__selfNode:
                self._add_peer(node)
            return True
        if node not in learners:
            return False
        learners.discard(node)
        if node == self._SyncObj__selfNode:
            return True
        if self._isLeader() and not reverse:
            self._retire(node)  # as a removed voter: sent entries until it holds its removal
            return True
        self._drop_peer(node)
        return True

    def _add_peer(self, node, readonly: bool = True) -> None:
        """Makes `node` a peer of the transport (connected by address) and,
        if `readonly`, a read-only follower of SyncObj's."""
        if readonly:
            self._SyncObj__readonlyNodes.add(node)
            self._SyncObj__raftNextIndex.setdefault(node, self._SyncObj__getCurrentLogIndex() + 1)
            self._SyncObj__raftMatchIndex.setdefault(node, 0)
        self._transport().addNode(node)  # once: it ignores a node it has

    def _drop_peer(self, node) -> None:
        self._SyncObj__readonlyNodes.discard(node)
        self._SyncObj__raftNextIndex.pop(node, None)
        self._SyncObj__raftMatchIndex.pop(node, None)
        self._SyncObj__connectedNodes.discard(node)
        self._transport().dropNode(node)

    def _SyncObj__updateClusterConfiguration(self, new_nodes):  # noqa: N802
        """A snapshot was installed: its voters are `new_nodes`; the
        learners (and this node's role) are those of the member set it
        holds (tick thread)."""
        voters = {TCPNode(n) if isinstance(n, str) else n for n in new_nodes}
        learners = {TCPNode(address) for address in self._host.learner_addresses()} - voters
        self_node = self._SyncObj__selfNode
        role = self._host.self_role(self_node.address)
        if role is not None:
            self._self_voter = role
        for node in self._learners - learners - voters:
            if node != self_node:
                self._drop_peer(node)
        for node in learners & self._SyncObj__otherNodes:
            self._SyncObj__otherNodes.discard(node)
        SyncObj._SyncObj__updateClusterConfiguration(self, voters - learners)
        for node in voters:
            self._SyncObj__readonlyNodes.discard(node)
        self._learners = learners
        for node in learners - {self_node}:
            self._add_peer(node)
