"""What presence holds and shows: owners, entries, the metas `list` gives,
the diffs a watcher gets, and the checks a request passes first.

An entry is tracked THROUGH a node, its owner: the node's name and the
incarnation it runs as (a number that rises at every start). The owner is
the only one that ever changes or removes the entry; every other node holds
a copy. Within its owner an entry is named by (topic, key, session): one
tracking session tracks a (topic, key) at most once, as a Phoenix process
does, so `list(topic)` gives each key one meta per tracking session.

A meta's `ref` names the write that made it (owner, session, the owner's
version at the write): an update is a new ref, and shows as the old meta
leaving and the new one joining, as in Phoenix (phx_ref).

This module knows no I/O, no clock and no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tandemkv import limits
from tandemkv.errors import InvalidArgument

# Bytes an entry is counted at beyond its topic, key and metadata: the ids,
# the version and its places in the indexes. Many empty entries still fill
# PRESENCE_NODE_STATE_BYTES_MAX.
ENTRY_OVERHEAD_BYTES = 128
# Session ids and incarnations are below this, so they fit the canonical
# encoding's signed 64-bit integers.
ID_LIMIT = 1 << 63


@dataclass(frozen=True, slots=True, order=True)
class OwnerId:
    """A node incarnation. Incarnations of one node name compare: a higher
    one is a later start, and every entry of a lower one is gone."""

    node: str
    incarnation: int


@dataclass(frozen=True, slots=True, order=True)
class EntryId:
    """One entry, within its owner."""

    topic: bytes
    key: bytes
    session: int


@dataclass(frozen=True, slots=True, order=True)
class Ref:
    """Names one write of one entry, cluster-wide."""

    node: str
    incarnation: int
    session: int
    version: int

    def __str__(self) -> str:
        return f"{self.node}.{self.incarnation:x}.{self.session:x}.{self.version:x}"


@dataclass(frozen=True, slots=True, order=True)
class Meta:
    """What `list` gives for one tracking of a key: the caller's metadata
    and the ref of the write."""

    ref: Ref
    meta: bytes


def meta_of(owner: OwnerId, entry: EntryId, meta: bytes, version: int) -> Meta:
    return Meta(Ref(owner.node, owner.incarnation, entry.session, version), meta)


@dataclass(slots=True)
class Diff:
    """What changed in one topic, Phoenix's shape: key -> the metas that
    joined, key -> the metas that left. An update is a leave and a join."""

    topic: bytes
    joins: dict[bytes, list[Meta]] = field(default_factory=dict)
    leaves: dict[bytes, list[Meta]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not self.joins and not self.leaves


Listing = dict[bytes, list[Meta]]


def apply_diff(listing: Listing, diff: Diff) -> Listing:
    """`listing` after `diff` (leaves first, then joins), as a client that
    got the initial state and then the diffs keeps it (Phoenix's syncDiff).
    Metas of a key are kept in ref order."""
    result = {key: list(metas) for key, metas in listing.items()}
    for key, metas in diff.leaves.items():
        gone = set(metas)
        kept = [meta for meta in result.get(key, []) if meta not in gone]
        if kept:
            result[key] = kept
        else:
            result.pop(key, None)
    for key, metas in diff.joins.items():
        result[key] = sorted(result.get(key, []) + metas)
    return result


def entry_bytes(entry: EntryId, meta: bytes) -> int:
    """What an entry counts for against PRESENCE_NODE_STATE_BYTES_MAX."""
    return len(entry.topic) + len(entry.key) + len(meta) + ENTRY_OVERHEAD_BYTES


def _check_bytes(value: object, what: str, bytes_max: int, limit: str, empty_ok: bool) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidArgument(f"a presence {what} is bytes, not {type(value).__name__}: encode text as UTF-8")
    if len(value) > bytes_max:
        raise InvalidArgument(f"a presence {what} is at most {bytes_max} bytes, this one is {len(value)}: "
                              f"use a shorter one", limit=limit)
    if not value and not empty_ok:
        raise InvalidArgument(f"a presence {what} must not be empty")
    return value


def check_topic(topic: object) -> bytes:
    return _check_bytes(topic, "topic", limits.PRESENCE_TOPIC_BYTES_MAX, "PRESENCE_TOPIC_BYTES_MAX", False)


def check_key(key: object) -> bytes:
    return _check_bytes(key, "key", limits.PRESENCE_KEY_BYTES_MAX, "PRESENCE_KEY_BYTES_MAX", False)


def check_meta(meta: object) -> bytes:
    """Metadata may be empty; it is the caller's bytes (the SDK encodes JSON)."""
    return _check_bytes(meta, "meta", limits.PRESENCE_META_BYTES_MAX, "PRESENCE_META_BYTES_MAX", True)


def check_ttl_ms(ttl_ms: object) -> int:
    low, high = limits.PRESENCE_SESSION_TTL_MS_MIN, limits.PRESENCE_SESSION_TTL_MS_MAX
    if type(ttl_ms) is not int or not low <= ttl_ms <= high:
        raise InvalidArgument(f"a presence session's TTL is {low} to {high} ms, not {ttl_ms!r}: the SDK "
                              f"renews it every third of the TTL", limit="PRESENCE_SESSION_TTL_MS_MAX")
    return ttl_ms


def check_session(session: object) -> int:
    if type(session) is not int or not 0 < session < ID_LIMIT:
        raise InvalidArgument(f"a presence session id is a number from 1 to 2**63 - 1, not {session!r}")
    return session


def check_owner(owner: OwnerId) -> OwnerId:
    """`owner` if its name fits PUBSUB_NODE_NAME_BYTES_MAX and its
    incarnation is below 2**63; else InvalidArgument (a frame that
    carries such an owner is refused whole)."""
    if not isinstance(owner.node, str) or not 0 < len(owner.node.encode()) <= limits.PUBSUB_NODE_NAME_BYTES_MAX:
        raise InvalidArgument(f"a node name is 1 to {limits.PUBSUB_NODE_NAME_BYTES_MAX} bytes",
                              limit="PUBSUB_NODE_NAME_BYTES_MAX")
    if type(owner.incarnation) is not int or not 0 <= owner.incarnation < ID_LIMIT:
        raise InvalidArgument("a node's incarnation is a number from 0 to 2**63 - 1")
    return owner
