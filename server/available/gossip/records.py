"""What `GossipNode` is built with and what it hands back: its
configuration and the defaults of it, the frames it asks its owner to send
(`Outgoing`), and its status. Plain values; no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from tandemkv import limits
from tandemkv.server.available.crdt.hlc import Hlc
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.liveness import PeerLiveness

# Milliseconds between two gossip rounds of one node.
GOSSIP_ROUND_INTERVAL_MS = 1_000
# Live peers one round pushes to (one dead peer is probed besides).
GOSSIP_FANOUT = 2
# Rounds without a rising heartbeat before a peer is suspect, and dead.
GOSSIP_SUSPECT_AFTER_ROUNDS = 3
GOSSIP_DEAD_AFTER_ROUNDS = 10


@dataclass(frozen=True)
class GossipConfig:
    round_interval_ms: int = GOSSIP_ROUND_INTERVAL_MS
    fanout: int = GOSSIP_FANOUT
    suspect_after_rounds: int = GOSSIP_SUSPECT_AFTER_ROUNDS
    dead_after_rounds: int = GOSSIP_DEAD_AFTER_ROUNDS
    message_bytes_max: int = limits.GOSSIP_MESSAGE_BYTES_MAX
    delta_buffer_entries_max: int = limits.DELTA_BUFFER_ENTRIES_MAX
    delta_buffer_bytes_max: int = limits.DELTA_BUFFER_BYTES_MAX
    transfers_per_peer_max: int = limits.TRANSFERS_PER_PEER_MAX
    transfer_bytes_per_peer_max: int = limits.TRANSFER_BYTES_PER_PEER_MAX
    transfer_rounds_max: int = limits.TRANSFER_ROUNDS_MAX

    def __post_init__(self) -> None:
        assert self.round_interval_ms >= 1 and self.fanout >= 1
        assert self.message_bytes_max >= limits.GOSSIP_MESSAGE_BYTES_MIN


class Outgoing(NamedTuple):
    peer: str
    frame: bytes


@dataclass(frozen=True)
class TableStatus:
    kind: TableKind
    digest: str
    seq: int
    buffered_deltas: int
    buffered_bytes: int


@dataclass(frozen=True)
class GossipStatus:
    node_id: str
    round: int
    incarnation: Hlc
    peers: dict[str, PeerLiveness]
    tables: dict[str, TableStatus]
    rejected: dict[str, int]
    ignored: dict[str, int]
    counters: dict[str, int]
