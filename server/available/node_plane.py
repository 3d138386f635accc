"""How a `Node` builds its `AvailablePlane`: the gossip key from the
cluster secret, the peers (UDP, on each member's client address) from the
configured members, the catalog from the strong plane's local state, and
the CrdtType <-> TableKind names.

The gossip key (HMAC-SHA256 over every frame):
- with `cluster_secret`: SHA-256 of a fixed label and the secret, so the
  gossip key never equals the Raft password itself;
- without one (allowed only when every member is on loopback): SHA-256 of
  another label and the sorted member list (`name=raft_address`). Every
  member computes the same key, and frames from another cluster on the
  same host are refused, but anything that can read the configuration can
  forge frames: it is no authentication against a local attacker. Set a
  secret whenever that matters.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from tandemkv.errors import InvalidArgument
from tandemkv.v1 import crdt_pb2, kv_pb2

from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.runtime import AvailablePlane, CatalogTable

GOSSIP_KEY_LABEL = b"tandemkv gossip key v1\0"
GOSSIP_MEMBERS_KEY_LABEL = b"tandemkv gossip key from members v1\0"


def gossip_key(config: Any) -> bytes:
    """The HMAC key of gossip frames for the node configured by `config`."""
    if config.cluster_secret:
        return hashlib.sha256(GOSSIP_KEY_LABEL + config.cluster_secret.encode()).digest()
    members = "\n".join(sorted(f"{m.name}={m.raft_address}" for m in config.members))
    return hashlib.sha256(GOSSIP_MEMBERS_KEY_LABEL + members.encode()).digest()


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


def build_plane(config: Any, query: Callable[..., Any]) -> AvailablePlane:
    """The plane of the node `config` describes. Gossip travels as UDP
    datagrams (`transport`) to and from the host and port of each member's
    client address: UDP ports are a namespace apart from the gRPC server's
    TCP port, so no third port is configured."""
    peers = {member.name: member.client_address for member in config.members}
    return AvailablePlane(config.name, config.data_dir, peers, gossip_key(config),
                          catalog_reader(query), durable=config.durability == "durable")
