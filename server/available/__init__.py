"""The available (AP) plane: CRDT tables that accept writes through
partitions and converge by gossip. Never waits on Raft.

Exported here: the pure parts, the CRDT value types (`crdt`), the hybrid
logical clock (`hlc`) and the sans-I/O gossip protocol (`gossip`). The
running plane is in `runtime` (`AvailablePlane`: the gossip thread),
`storage` (LMDB: tables, the clock's high-water mark) and `transport`
(gRPC `Gossip.Deliver`), imported from there so the pure core needs
neither LMDB nor gRPC. See docs/available-plane.md.
"""

from .crdt import (AWLWWMap, Crdt, GCounter, LWWRegister, MVRegister, ORSet, Origin, PNCounter,
                   TableKind, decode_crdt, encode_crdt, state_digest)
from .gossip import GossipConfig, GossipNode, GossipStatus, Outgoing, TableStatus
from .gossip_liveness import PeerLiveness, PeerState
from .hlc import ClockDriftExceeded, HighWaterMark, Hlc, HybridClock, MemoryHighWaterMark

__all__ = [
    "AWLWWMap", "ClockDriftExceeded", "Crdt", "GCounter", "GossipConfig", "GossipNode",
    "GossipStatus", "HighWaterMark", "Hlc", "HybridClock", "LWWRegister", "MVRegister",
    "MemoryHighWaterMark", "ORSet", "Origin", "Outgoing", "PNCounter", "PeerLiveness",
    "PeerState", "TableKind", "TableStatus", "decode_crdt", "encode_crdt", "state_digest",
]
