"""The steps of the keyed anti-entropy exchange: what `KeyedSync` answers
to each frame it takes in, and how it builds the frames it sends.

A node that receives digests compares them with its own; where they
differ it answers with its digests one level down (the children of at most
KEYED_SYNC_FRAME_DIGESTS_MAX / fanout differing nodes, chosen at random
when there are more), and the two descend in turn. A differing bucket, or
a differing node with few keys below it here (LIST_KEYS_BELOW_MAX), is
listed instead: KEYS, the (key, entry hash) of every key below it. The
other side answers ENTRIES: its states of the keys that differ or that
only it holds, and `want`, the keys whose states it lacks or holds
differently; the lister merges them and answers ENTRIES with the wanted
keys' states (skipping those the other already sent as they are). DELTAS,
the eager pushes, are merged and answered with nothing.

Each step sends at most KEYED_SYNC_STEP_KEYS_MAX keys, in frames of at
most KEYED_SYNC_FRAME_KEYS_MAX keys and frame_bytes_max bytes; what a step
leaves out still differs next round. The choices of what differs, what to
list and how items group into frames are keyed_exchange.py's pure
functions; this file feeds them a table and turns their answer into frames.

`KeyedSteps` is a mixin of `KeyedSync`; the fields it names below are
KeyedSync's.
"""

from __future__ import annotations

import collections
import random
from typing import Any, Iterable

from tandemkv.server.available.crdt.hlc import ClockDriftExceeded, Hlc, HybridClock
from tandemkv.server.available.gossip.keyed_digest import DIGEST_BYTES, pack_digests, unpack_digests
from tandemkv.server.available.gossip.keyed_exchange import answer_keys, check_entries, descend, groups, key_items
from tandemkv.server.available.gossip.keyed_records import FRAME_FIXED_BYTES_MAX, KeyedReplica, KeyedSyncConfig, Outgoing
from tandemkv.server.available.gossip.keyed_wire import KeyedMessage, KeyedMessageKind as Kind, seal
from tandemkv.server.available.gossip.wire import Rejected


class KeyedSteps:
    """Takes in one frame and answers it; builds the frames of each kind."""

    node_id: str
    config: KeyedSyncConfig
    _secret: bytes
    _rng: random.Random
    _clock: HybridClock
    _peers: list[str]
    _replicas: dict[str, KeyedReplica]
    _counters: collections.Counter[str]

    # Receiving.

    def _admit(self, now_ms: int, message: KeyedMessage) -> None:
        if message.recipient != self.node_id:
            raise Rejected("wrong_recipient")
        if message.sender not in self._peers:
            raise Rejected("not_member", message.sender)
        self._check_stamp(now_ms, message.stamp)
        self._clock.observe(now_ms, message.stamp)

    def _handle(self, now_ms: int, replica: KeyedReplica, message: KeyedMessage) -> list[Outgoing]:
        if message.kind == Kind.DIGESTS:
            return self._on_digests(replica, message)
        if message.kind == Kind.KEYS:
            return self._on_keys(replica, message)
        self._merge_entries(now_ms, replica, message.entries)
        if message.kind == Kind.DELTAS or not message.want:
            return []
        sent = dict(message.entries)
        wanted = [(key, data) for key in message.want
                  if (data := replica.table.encoded(key)) is not None and data != sent.get(key)]
        return self._entry_frames(message.sender, message.table, Kind.ENTRIES, wanted, [])

    def _on_digests(self, replica: KeyedReplica, message: KeyedMessage) -> list[Outgoing]:
        digests, level = replica.digests, message.level
        # Parents whose children fit one frame, by count and by bytes
        # (8 per digest, up to 5 for the parent's number).
        parents_max = min(self.config.frame_digests_max // digests.fanout,
                          self._room_bytes() // (DIGEST_BYTES * digests.fanout + 5))
        differing = descend(digests, level, message.parents, unpack_digests(message.digests),
                            parents_max, self._rng)
        out = self._key_frames(message.sender, message.table, replica, level, differing.listed)
        if differing.descend:
            children = [digest for parent in differing.descend for digest in digests.children(level, parent)]
            out.append(self._out(message.sender, message.table, Kind.DIGESTS, level=level + 1,
                                 parents=tuple(differing.descend), digests=pack_digests(children)))
        return out

    def _on_keys(self, replica: KeyedReplica, message: KeyedMessage) -> list[Outgoing]:
        send, want = answer_keys(replica.table, replica.digests, message.level, message.hashes,
                                 message.nodes, self.config.step_keys_max)
        return self._entry_frames(message.sender, message.table, Kind.ENTRIES, send, want)

    def _merge_entries(self, now_ms: int, replica: KeyedReplica, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Checks every entry, then merges them all (or none)."""
        latest = check_entries(replica.table.kind, entries, self._clock, now_ms)
        if latest is not None:
            self._clock.observe(now_ms, latest)
        for key, data in entries:
            if replica.table.merge_encoded(key, data):
                self._counters["keys_merged"] += 1

    def _check_stamp(self, now_ms: int, stamp: Hlc) -> None:
        try:
            self._clock.check(now_ms, stamp)
        except ClockDriftExceeded as error:
            raise Rejected("clock_drift", str(error)) from error

    # Sending.

    def _key_frames(self, peer: str, name: str, replica: KeyedReplica, level: int,
                    nodes: list[int]) -> list[Outgoing]:
        """KEYS frames for the differing `nodes` at `level`; a node is listed
        as complete in the frame of its last key (the empty ones in the first)."""
        if not nodes:
            return []
        # Nodes whose numbers (up to 6 bytes each) fit in half a frame.
        items, empty = key_items(replica.table, replica.digests, level, nodes, self.config.step_keys_max,
                                 self._room_bytes() // 12, self._rng)
        frames: list[Outgoing] = []
        for group in groups(items, lambda item: len(item.key) + 24, self.config.frame_keys_max,
                            self._room_bytes(), len(empty) * 6):
            complete = [item.node for item in group if item.last_of_node] + (empty if not frames else [])
            frames.append(self._out(peer, name, Kind.KEYS, level=level, nodes=tuple(complete),
                                    hashes=tuple((item.key, item.hash) for item in group)))
        return frames

    def _entry_frames(self, peer: str, name: str, kind: Kind, entries: list[tuple[bytes, bytes]],
                      want: list[bytes]) -> list[Outgoing]:
        """ENTRIES or DELTAS frames holding `entries`, then `want`."""
        room = self._room_bytes()
        fitting = [entry for entry in entries if len(entry[0]) + len(entry[1]) + 16 <= room]
        self._counters["entries_too_large"] += len(entries) - len(fitting)
        items: list[tuple[bytes, bytes | None]] = [*fitting, *((key, None) for key in want)]
        size = lambda item: len(item[0]) + (16 if item[1] is None else len(item[1]) + 16)  # noqa: E731
        frames = []
        for group in groups(items, size, self.config.frame_keys_max, room):
            frames.append(self._out(peer, name, kind,
                                    entries=tuple((k, v) for k, v in group if v is not None),
                                    want=tuple(k for k, v in group if v is None)))
        self._counters["keys_sent"] += len(items)
        return frames

    def _room_bytes(self) -> int:
        return self.config.frame_bytes_max - FRAME_FIXED_BYTES_MAX

    def _out(self, peer: str, name: str, kind: Kind, **fields: Any) -> Outgoing:
        message = KeyedMessage(kind, self.node_id, peer, self._clock.last(), name,
                               self._replicas[name].table.kind, **fields)
        frame = seal(message, self._secret)
        assert len(frame) <= self.config.frame_bytes_max, "frames stay within the limit"
        self._counters["frames_sent"] += 1
        return Outgoing(peer, frame)
