"""What `KeyedSync` is built with, holds and hands back: its configuration
and the defaults of it, one keyed table here with its digests and outbox
(`KeyedReplica`), the frames it asks its owner to send (`Outgoing`), and
its status."""

from __future__ import annotations

from dataclasses import dataclass

from tandemkv import limits

from tandemkv.server.available.crdt.keyed import KeyedTable
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_digest import KEYED_DIGEST_DEPTH, KEYED_DIGEST_FANOUT, BucketDigests
from tandemkv.server.available.gossip.keyed_outbox import PushOutbox
# The same frame-to-a-peer type as the table gossip's: one transport sends both.
from tandemkv.server.available.gossip.records import Outgoing  # noqa: F401 - re-exported

# Milliseconds between two rounds, and members one round's exchange asks.
KEYED_ROUND_INTERVAL_MS = 1_000
KEYED_SYNC_FANOUT = 2
# Bytes of a frame left for its fixed fields (names, stamp, MAC); items get the rest.
FRAME_FIXED_BYTES_MAX = 1_024


@dataclass(frozen=True)
class KeyedSyncConfig:
    round_interval_ms: int = KEYED_ROUND_INTERVAL_MS
    fanout: int = KEYED_SYNC_FANOUT
    frame_bytes_max: int = limits.UDP_FRAME_BYTES_MAX
    frame_keys_max: int = limits.KEYED_SYNC_FRAME_KEYS_MAX
    frame_digests_max: int = limits.KEYED_SYNC_FRAME_DIGESTS_MAX
    step_keys_max: int = limits.KEYED_SYNC_STEP_KEYS_MAX
    push_keys_max: int = limits.KEYED_PUSH_KEYS_MAX
    push_bytes_max: int = limits.KEYED_PUSH_BYTES_MAX
    digest_fanout: int = KEYED_DIGEST_FANOUT
    digest_depth: int = KEYED_DIGEST_DEPTH

    def __post_init__(self) -> None:
        assert self.round_interval_ms >= 1 and self.fanout >= 1
        assert self.frame_bytes_max >= limits.GOSSIP_MESSAGE_BYTES_MIN
        assert self.frame_digests_max >= self.digest_fanout and self.step_keys_max >= 1


@dataclass(frozen=True)
class KeyedTableStatus:
    kind: TableKind
    keys: int          # held, removed ones included
    root: str          # the digest tree's root, hex: equal tables, equal roots
    outbox_keys: int
    outbox_bytes: int
    pushes_dropped: int


@dataclass(frozen=True)
class KeyedSyncStatus:
    node_id: str
    round: int
    tables: dict[str, KeyedTableStatus]
    rejected: dict[str, int]
    ignored: dict[str, int]
    counters: dict[str, int]


class KeyedReplica:
    """One keyed table here: its state, its digests, its outbox."""

    def __init__(self, name: str, kind: TableKind, digests: BucketDigests, outbox: PushOutbox,
                 changed: set[tuple[str, bytes]]) -> None:
        def on_change(key: bytes, before: bytes | None, after: bytes) -> None:
            digests.change(key, before, after)
            changed.add((name, key))
        self.table = KeyedTable(kind, on_change)
        self.digests = digests
        self.outbox = outbox
