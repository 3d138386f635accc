"""How a `Node` builds its `AvailablePlane`: the gossip key from the
cluster secret, the peers (UDP, on each member's client address) from the
configured members, the catalog from the strong plane's local state, and
the CrdtType <-> TableKind names.

The gossip key (HMAC-SHA256 over every frame):
- with `cluster_secret`: SHA-256 of a fixed label and the secret, so the
  gossip key never equals the Raft password itself;
- without one (allowed only when every member is on loopback): SHA-256 of
  another label and the sorted committed member set (`name=raft_address`).
  Every member that applied the same set computes the same key (so the key
  changes with the set: frames cross a change only once both ends applied
  it, and a removed node's are refused), and frames from another cluster
  on the same host are refused, but anything that can read the
  configuration can forge frames: it is no authentication against a local
  attacker. Set a secret whenever that matters.

The peers of all three planes (CRDT gossip, the pub/sub relay, presence)
are the committed member set (`node.members()`), never the config file's
list, and follow it as it changes (server/node/loop_planes.py); learners
are members like voters. A node that is not in the set has no peers.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence

from tandemkv.errors import InvalidArgument
from tandemkv.v1 import crdt_pb2, kv_pb2

from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.runtime import AvailablePlane, CatalogTable

GOSSIP_KEY_LABEL = b"tandemkv gossip key v1\0"
GOSSIP_MEMBERS_KEY_LABEL = b"tandemkv gossip key from members v1\0"


def gossip_key(config: Any, members: Sequence[Any] | None = None) -> bytes:
    """The HMAC key of gossip frames for the node configured by `config`,
    with the committed `members` (default: the configured ones)."""
    if config.cluster_secret:
        return hashlib.sha256(GOSSIP_KEY_LABEL + config.cluster_secret.encode()).digest()
    listed = "\n".join(sorted(f"{m.name}={m.raft_address}" for m in (members or config.members)))
    return hashlib.sha256(GOSSIP_MEMBERS_KEY_LABEL + listed.encode()).digest()


def peer_addresses(node: str, members: Sequence[Any]) -> dict[str, str]:
    """The other members' client addresses by name; none at all when `node`
    is not among `members` (it was removed, or is not added yet: it dials
    nobody)."""
    names = {member.name for member in members}
    if node not in names:
        return {}
    return {member.name: member.client_address for member in members if member.name != node}


def kind_of(crdt_type: int) -> TableKind:
    """The TableKind of a `crdt_pb2.CrdtType` value."""
    if crdt_type == crdt_pb2.CRDT_TYPE_UNSPECIFIED or crdt_type not in crdt_pb2.CrdtType.values():
        raise InvalidArgument(f"unknown CRDT type {crdt_type}")
    return TableKind(crdt_pb2.CrdtType.Name(crdt_type).lower())


def type_of(kind: TableKind) -> int:
    return crdt_pb2.CrdtType.Value(kind.value.upper())


def catalog_reader(query: Callable[..., Any]) -> Callable[[], tuple[int, list[CatalogTable]]]:
    """Reads the catalog from local state (a stale read: no Raft round)."""
    def read() -> tuple[int, list[CatalogTable]]:
        response = query(crdt_pb2.ListTablesRequest(consistency=kv_pb2.STALE))
        return response.header.revision, [
            CatalogTable(table.name, kind_of(table.type), table.created_revision, table.keyed)
            for table in response.tables]
    return read


def build_plane(config: Any, query: Callable[..., Any], members: Sequence[Any] | None = None) -> AvailablePlane:
    """The plane of the node `config` describes, with the committed
    `members` (default: the configured ones). Gossip travels as UDP
    datagrams (`transport`) to and from the host and port of each member's
    client address: UDP ports are a namespace apart from the gRPC server's
    TCP port, so no third port is configured. The node's own address is
    the configured one (where it binds), whatever the set says."""
    members = members or config.members
    peers = {**peer_addresses(config.name, members), config.name: config.client_address}
    return AvailablePlane(config.name, config.data_dir, peers, gossip_key(config, members),
                          catalog_reader(query), durable=config.durability == "durable")
