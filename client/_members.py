"""Cluster membership in the SDK: `client.members.list()`, `.add(...)`
(a voter, or a learner with `learner=True`), `.promote(...)`,
`.remove(...)` (and the same awaited on `AsyncClient`).

Each is one `Operation` of the Cluster service run by the client's retry
core: changes go to the leader (a follower answers UNAVAILABLE naming it;
a leader asked to remove itself hands over first and answers the same),
and one change at a time: a change while another is in progress raises
`FailedPrecondition` naming it.

    with Client() as client:
        client.members.add("n4", raft="10.0.0.4:7500", client="10.0.0.4:7400")
        [m.name for m in client.members.list().members]   # ['n1', 'n2', 'n3', 'n4']
        client.members.add("n5", raft="10.0.0.5:7500", client="10.0.0.5:7400", learner=True)
        client.members.promote("n5")   # once it caught up; FailedPrecondition while behind
        client.members.remove("n1")
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tandemkv.client import _operations as ops
from tandemkv.v1 import cluster_pb2


@dataclasses.dataclass(frozen=True)
class MemberInfo:
    """One member; `voter` is False for a learner (replicates the log,
    serves stale reads, neither votes nor counts for the quorum)."""

    name: str
    raft_address: str
    client_address: str
    voter: bool

    @property
    def role(self) -> str:
        return "voter" if self.voter else "learner"


@dataclasses.dataclass(frozen=True)
class MemberList:
    """The committed member set as the answering node applied it, sorted by
    name. `config_index` is the Raft index of the change that made it (0:
    the configured set, never changed); `leader` the leader's name as that
    node knows it ("" for none, and after a change); `change_in_progress`
    a change the leader proposed and has not applied yet ("add n4 (raft
    ..., client ...)"; "" if none, or the node is not the leader)."""

    members: tuple[MemberInfo, ...]
    config_index: int
    leader: str = ""
    change_in_progress: str = ""

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]


def decode_member_list(response: Any) -> MemberList:
    members = tuple(MemberInfo(m.name, m.raft_address, m.client_address, m.voter)
                    for m in response.members)
    return MemberList(members, response.config_index, response.leader, response.change_in_progress)


def member_list() -> ops.Operation:
    return ops.Operation("Cluster", "MemberList", cluster_pb2.MemberListRequest(),
                         decode_member_list, write=False)


def member_add(name: str, raft: str, client: str, learner: bool = False) -> ops.Operation:
    member = cluster_pb2.Member(name=name, raft_address=raft, client_address=client, voter=not learner)
    request = cluster_pb2.MemberAddRequest(member=member, learner=learner)
    # Adding a member that is there with the same addresses succeeds: safe to retry.
    return ops.Operation("Cluster", "MemberAdd", request, decode_member_list, write=True)


def member_promote(name: str) -> ops.Operation:
    # A retry after an unknown outcome would find it a voter: not retried.
    return ops.Operation("Cluster", "MemberPromote", cluster_pb2.MemberPromoteRequest(name=name),
                         decode_member_list, write=True, idempotent=False)


def member_remove(name: str) -> ops.Operation:
    # A retry after an unknown outcome would find it gone: not retried.
    return ops.Operation("Cluster", "MemberRemove", cluster_pb2.MemberRemoveRequest(name=name),
                         decode_member_list, write=True, idempotent=False)


class Members:
    """`client.members`: list, add and remove members (blocking)."""

    def __init__(self, client):
        self._client = client

    def list(self) -> MemberList:
        """The committed member set, as a node (the leader when known) has it."""
        return self._client.run(member_list())

    def add(self, name: str, *, raft: str, client: str, learner: bool = False) -> MemberList:
        """Adds voter `name` (a learner if `learner`) with its Raft and
        client addresses ('host:port'); returns the new set. Then start the
        node with `tandemkv serve --join ADDRESS` (any member's client
        address)."""
        return self._client.run(member_add(name, raft, client, learner))

    def promote(self, name: str) -> MemberList:
        """Makes learner `name` a voter; returns the new set. Raises
        FailedPrecondition while it is behind the leader (saying how far),
        or if it is a voter or not a member."""
        return self._client.run(member_promote(name))

    def remove(self, name: str) -> MemberList:
        """Removes member `name`; returns the new set. The removed node
        refuses every call from then on."""
        return self._client.run(member_remove(name))


class AsyncMembers:
    """`AsyncClient.members`: as `Members`, awaited."""

    def __init__(self, client):
        self._client = client

    async def list(self) -> MemberList:
        return await self._client.run(member_list())

    async def add(self, name: str, *, raft: str, client: str, learner: bool = False) -> MemberList:
        return await self._client.run(member_add(name, raft, client, learner))

    async def promote(self, name: str) -> MemberList:
        return await self._client.run(member_promote(name))

    async def remove(self, name: str) -> MemberList:
        return await self._client.run(member_remove(name))
