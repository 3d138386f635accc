"""Keyed-table sync messages and their authenticated framing.

A frame is

    KEYED_WIRE_VERSION (1 byte) | HMAC-SHA256 (32 bytes) | body

as in `wire.py`, keyed with the same cluster secret; the version byte
differs (2, where whole-table gossip is 1), so each protocol refuses the
other's frames as bad_version and a transport may tell them apart by the
first byte. The body is the canonical encoding of

    [kind, sender, recipient, stamp, table, table kind,
     level, parents, digests, nodes, hashes, entries, want]

Every frame stands alone: nothing is reassembled, and a lost frame costs
only the work it carried (the next round's exchange finds the difference
again).

This module owns the message shape and bytes <-> message. It never knows
what a node does with one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from tandemkv import limits

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.base import TableKind
from tandemkv.server.available.crdt.hlc import Hlc
from tandemkv.server.available.gossip.keyed_digest import DIGEST_BYTES
from tandemkv.server.available.gossip.wire import Rejected, open_body, seal_body

KEYED_WIRE_VERSION = 2


class KeyedMessageKind(enum.IntEnum):
    DIGESTS = 0  # digests of tree nodes at one level; the recipient descends where they differ
    KEYS = 1     # (key, entry hash) of the sender's keys below some nodes
    ENTRIES = 2  # key states to merge, and the keys the sender wants back
    DELTAS = 3   # fresh deltas of local writes (the eager push)


@dataclass(frozen=True)
class KeyedMessage:
    kind: KeyedMessageKind
    sender: str
    recipient: str
    stamp: Hlc
    table: str
    table_kind: TableKind
    # DIGESTS: the level of the digests; the parents (at level - 1) whose
    # children they are, `fanout` digests each, in order (level 0: no
    # parents, one digest: the root).
    level: int = 0
    parents: tuple[int, ...] = ()
    digests: bytes = b""
    # KEYS: nodes at `level` whose keys are all listed; (key, 8-byte entry hash).
    nodes: tuple[int, ...] = ()
    hashes: tuple[tuple[bytes, bytes], ...] = ()
    # ENTRIES, DELTAS: (key, encoded key state or delta); ENTRIES: keys the
    # sender asks the recipient's states of.
    entries: tuple[tuple[bytes, bytes], ...] = ()
    want: tuple[bytes, ...] = ()

    def key_count(self) -> int:
        return len(self.hashes) + len(self.entries) + len(self.want)


def seal(message: KeyedMessage, secret: bytes) -> bytes:
    return seal_body(KEYED_WIRE_VERSION, canonical.encode(_to_plain(message)), secret)


def open_frame(frame: bytes, secret: bytes, frame_bytes_max: int) -> KeyedMessage:
    """The message in an authenticated frame; raises Rejected with reason
    too_large, bad_version, bad_mac or malformed."""
    body = open_body(frame, KEYED_WIRE_VERSION, secret, frame_bytes_max)
    try:
        return _from_plain(canonical.decode(body))
    except (ValueError, TypeError, KeyError) as error:
        raise Rejected("malformed", str(error)) from error


def _to_plain(message: KeyedMessage) -> list:
    return [int(message.kind), message.sender, message.recipient, message.stamp.to_plain(),
            message.table, message.table_kind.value, message.level, list(message.parents),
            message.digests, list(message.nodes), [list(pair) for pair in message.hashes],
            [list(pair) for pair in message.entries], list(message.want)]


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(what)


def _naturals(value: Any, what: str) -> tuple[int, ...]:
    _require(isinstance(value, list) and all(type(n) is int and n >= 0 for n in value), what)
    return tuple(value)


def _pairs(value: Any, what: str) -> tuple[tuple[bytes, bytes], ...]:
    _require(isinstance(value, list), what)
    for pair in value:
        _require(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], bytes)
                 and isinstance(pair[1], bytes) and len(pair[0]) <= limits.KEYED_KEY_BYTES_MAX, what)
    return tuple((pair[0], pair[1]) for pair in value)


def _from_plain(value: Any) -> KeyedMessage:
    _require(isinstance(value, list) and len(value) == 13, "a keyed message has 13 fields")
    kind, sender, recipient, stamp, table, table_kind, level, parents, digests, nodes, \
        hashes, entries, want = value
    _require(isinstance(sender, str) and isinstance(recipient, str) and isinstance(table, str),
             "node ids and the table name are strings")
    _require(type(level) is int and level >= 0 and isinstance(digests, bytes)
             and len(digests) % DIGEST_BYTES == 0, "bad digests")
    _require(len(digests) // DIGEST_BYTES <= limits.KEYED_SYNC_FRAME_DIGESTS_MAX, "too many digests")
    _require(isinstance(want, list) and all(isinstance(key, bytes) and len(key) <= limits.KEYED_KEY_BYTES_MAX
                                            for key in want), "bad want")
    message = KeyedMessage(
        kind=KeyedMessageKind(kind), sender=sender, recipient=recipient, stamp=Hlc.from_plain(stamp),
        table=table, table_kind=TableKind(table_kind), level=level,
        parents=_naturals(parents, "bad parents"), digests=digests,
        nodes=_naturals(nodes, "bad nodes"), hashes=_pairs(hashes, "bad key hashes"),
        entries=_pairs(entries, "bad entries"), want=tuple(want))
    _require(message.key_count() <= limits.KEYED_SYNC_FRAME_KEYS_MAX, "too many keys")
    _require(all(len(digest) == DIGEST_BYTES for _, digest in message.hashes), "bad key hash")
    return message
