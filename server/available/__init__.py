"""The available (AP) plane: CRDT tables that accept writes through
partitions and converge by gossip. Never waits on Raft.

Exported here: the pure parts, the CRDT value types and the hybrid
logical clock (`crdt/`) and the sans-I/O gossip protocol (`gossip/`). The
running plane is in `runtime` (`AvailablePlane`: the gossip thread),
`storage` (LMDB: tables, the clock's high-water mark) and `transport`
(UDP datagrams), imported from there so the pure core needs neither LMDB
nor sockets. See docs/available-plane.md.
"""

from tandemkv.server.available.crdt.hlc import ClockDriftExceeded, HighWaterMark, Hlc, HybridClock, MemoryHighWaterMark
from tandemkv.server.available.crdt.kinds import (AWLWWMap, Crdt, GCounter, LWWRegister, MVRegister, ORSet, Origin,
                                                  PNCounter, TableKind, decode_crdt, encode_crdt, state_digest)
from tandemkv.server.available.gossip.liveness import PeerLiveness, PeerState
from tandemkv.server.available.gossip.protocol import GossipConfig, GossipNode, GossipStatus, Outgoing, TableStatus

__all__ = [
    "AWLWWMap", "ClockDriftExceeded", "Crdt", "GCounter", "GossipConfig", "GossipNode",
    "GossipStatus", "HighWaterMark", "Hlc", "HybridClock", "LWWRegister", "MVRegister",
    "MemoryHighWaterMark", "ORSet", "Origin", "Outgoing", "PNCounter", "PeerLiveness",
    "PeerState", "TableKind", "TableStatus", "decode_crdt", "encode_crdt", "state_digest",
]
