"""The member set as strong-plane state: who the members are (name, Raft
address, client address, and role: a voter, or a learner that replicates
the log without voting), kept in the store so that every node, a restarted
node and a node bootstrapped from a snapshot agree on it.

A membership change is one Raft entry (server/raft/membership.py) carrying
the whole new set, encoded here (`encode_set`); `apply_member_set` stores it
when the entry commits, stamped with the entry's index (`config_index`).
The functions that build a new set (`with_member`, `without_member`,
`with_promoted`) check
the change against the current set and raise `InvalidArgument` or
`FailedPrecondition` on the proposing node; apply itself never raises for
bad input (an undecodable set is kept out of the store and answered as an
empty result). Pure: no clock, no I/O.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.strong.view import StoreView
from tandemkv.v1 import cluster_pb2

# The meta key the committed member set is stored under.
MEMBERS_KEY = b"cluster_members"


def stored_set(view: StoreView) -> cluster_pb2.MemberSet | None:
    """The committed member set, or None while the cluster never changed
    (its members are then the nodes' configured peers)."""
    raw = view.meta_get(MEMBERS_KEY)
    return None if raw is None else cluster_pb2.MemberSet.FromString(raw)


def apply_member_set(view: StoreView, index: int, encoded_set: bytes) -> bytes | None:
    """Stores the member set a committed membership entry at `index`
    carries; returns it encoded (with its config_index), b"" for an entry
    that carried none or an undecodable one, None if it was applied before."""
    if index <= view.last_applied():
        return None
    view.set_last_applied(index)
    try:
        member_set = cluster_pb2.MemberSet.FromString(encoded_set)
    except DecodeError:
        return b""
    if not member_set.members:
        return b""
    member_set.config_index = index
    encoded = member_set.SerializeToString()
    view.meta_put(MEMBERS_KEY, encoded)
    return encoded


def initial_set(members) -> cluster_pb2.MemberSet:
    """The set of a cluster that never changed, from `members` (objects
    with name, raft_address and client_address): every one a voter."""
    return _sorted_set([cluster_pb2.Member(name=m.name, raft_address=m.raft_address,
                                           client_address=m.client_address, voter=True)
                        for m in members], config_index=0)


def check_address(address: str, flag: str) -> None:
    """Refuses what cannot be a member's 'host:port' (a node would dial it)."""
    host, _, port = address.rpartition(":")
    if (len(address.encode()) > limits.MEMBER_ADDRESS_BYTES_MAX or not host or not port.isdigit()
            or not 0 < int(port) < 65536 or any(c.isspace() for c in address) or not address.isprintable()):
        raise InvalidArgument(f"{flag} takes HOST:PORT (port 1 to 65535, at most "
                              f"{limits.MEMBER_ADDRESS_BYTES_MAX} bytes), not {address[:64]!r}",
                              limit="MEMBER_ADDRESS_BYTES_MAX")


def with_member(current: cluster_pb2.MemberSet, member: cluster_pb2.Member, *,
                learner: bool = False) -> cluster_pb2.MemberSet | None:
    """`current` with `member` added as a voter (a learner if `learner`);
    None if it is there already with the same addresses and role (adding it
    again changes nothing). Raises InvalidArgument for a member whose name
    or an address another member has, FailedPrecondition for one that is
    there in the other role."""
    if not member.name:
        raise InvalidArgument("a member needs a name (NAME)")
    if len(member.name.encode()) > limits.MEMBER_NAME_BYTES_MAX or not member.name.isprintable() \
            or any(c.isspace() for c in member.name):
        raise InvalidArgument(f"a member's name is printable, without spaces, at most "
                              f"{limits.MEMBER_NAME_BYTES_MAX} bytes, not {member.name[:64]!r}",
                              limit="MEMBER_NAME_BYTES_MAX")
    if not member.raft_address or not member.client_address:
        raise InvalidArgument(f"member {member.name}: both its Raft address (--raft HOST:PORT) and "
                              "its client address (--client HOST:PORT) are needed")
    for flag, address in (("--raft", member.raft_address), ("--client", member.client_address)):
        check_address(address, flag)
    for existing in current.members:
        if existing.name == member.name:
            if (existing.raft_address, existing.client_address) == (member.raft_address,
                                                                    member.client_address):
                if existing.voter != learner:
                    return None
                if learner:
                    raise FailedPrecondition(f"member {member.name} is a voter already; a voter "
                                             "cannot become a learner (remove it and add it again)")
                raise FailedPrecondition(f"member {member.name} is a learner; promote it "
                                         f"(`tandemkv member promote {member.name}`) to make it a voter")
            raise InvalidArgument(
                f"member {member.name} is already in the cluster with raft {existing.raft_address}, "
                f"client {existing.client_address}; remove it first to change its addresses")
        for field in ("raft_address", "client_address"):
            if getattr(existing, field) == getattr(member, field):
                raise InvalidArgument(f"{field.replace('_', ' ')} {getattr(member, field)} is member "
                                      f"{existing.name}'s; each member needs its own")
    added = cluster_pb2.Member()
    added.CopyFrom(member)
    added.voter = not learner
    return _sorted_set([*current.members, added], current.config_index)


def without_member(current: cluster_pb2.MemberSet, name: str) -> cluster_pb2.MemberSet:
    """`current` without member `name` (a voter or a learner). Raises
    FailedPrecondition if it is not a member, or is the last voter (a
    cluster without voters cannot commit anything again)."""
    gone = _known(current, name)
    if gone.voter and sum(m.voter for m in current.members) == 1:
        raise FailedPrecondition(f"{name} is the only voter; a cluster needs at least one "
                                 "(promote a learner first)" if len(current.members) > 1 else
                                 f"{name} is the only member; a cluster needs at least one")
    return _sorted_set([m for m in current.members if m.name != name], current.config_index)


def with_promoted(current: cluster_pb2.MemberSet, name: str) -> cluster_pb2.MemberSet:
    """`current` with learner `name` made a voter. Raises FailedPrecondition
    if it is not a member or is a voter already."""
    if _known(current, name).voter:
        raise FailedPrecondition(f"member {name} is a voter already; only a learner can be promoted")
    promoted = cluster_pb2.MemberSet()
    promoted.CopyFrom(current)
    for member in promoted.members:
        if member.name == name:
            member.voter = True
    return promoted


def learners(member_set: cluster_pb2.MemberSet) -> list[cluster_pb2.Member]:
    """The members of `member_set` that do not vote."""
    return [m for m in member_set.members if not m.voter]


def _known(current: cluster_pb2.MemberSet, name: str) -> cluster_pb2.Member:
    member = member_named(current, name)
    if member is None:
        names = [m.name for m in current.members]
        raise FailedPrecondition(f"{name!r} is not a member; the members are {', '.join(names)}")
    return member


def member_named(member_set: cluster_pb2.MemberSet, name: str) -> cluster_pb2.Member | None:
    return next((m for m in member_set.members if m.name == name), None)


def describe_change(before: cluster_pb2.MemberSet, after: cluster_pb2.MemberSet) -> str:
    """'add n4 (raft ..., client ...)', 'add learner n5 (...)', 'promote
    n5' or 'remove n2', for messages."""
    names_before = {m.name for m in before.members}
    names_after = {m.name for m in after.members}
    for member in after.members:
        if member.name not in names_before:
            kind = "add" if member.voter else "add learner"
            return f"{kind} {member.name} (raft {member.raft_address}, client {member.client_address})"
        previous = member_named(before, member.name)
        if member.voter and not previous.voter:
            return f"promote {member.name}"
    removed = sorted(names_before - names_after)
    return f"remove {removed[0]}" if removed else "no change"


def _sorted_set(members, config_index: int) -> cluster_pb2.MemberSet:
    return cluster_pb2.MemberSet(members=sorted(members, key=lambda m: m.name),
                                 config_index=config_index)
