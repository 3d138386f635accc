"""The steps of one keyed-table anti-entropy exchange, as functions of a
table, its bucket digests and what the peer sent (see `keyed_sync` for
the exchange as a whole).

- `descend`: a peer's digests at one level against ours; of the nodes where
  they differ, those whose children to send next (at most `parents_max`,
  a random choice when there are more) and those whose keys to list
  (buckets, and nodes with few keys below them here).
- `key_items`: (key, entry hash) of our keys below the listed nodes, within
  the step's key budget.
- `answer_keys`: a peer's key hashes against ours; the states to send and
  the keys to ask for, within the budget.
- `check_entries`: key states a peer sent, checked before any is merged.
- `groups`: items cut into frames' worth by key count and bytes.

Pure: no I/O, no threads; randomness comes in as `rng`, time as `now_ms`.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, NamedTuple, TypeVar

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.hlc import ClockDriftExceeded, Hlc, HybridClock
from tandemkv.server.available.crdt.keyed import KeyedTable, decode_state
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_digest import LIST_KEYS_BELOW_MAX, BucketDigests, entry_hash
from tandemkv.server.available.gossip.wire import Rejected

Item = TypeVar("Item")


class KeyItem(NamedTuple):
    node: int
    key: bytes
    hash: bytes          # the 8-byte entry hash of our state
    last_of_node: bool


class Differing(NamedTuple):
    descend: list[int]   # nodes whose children's digests go next
    listed: list[int]    # nodes whose keys go next (few keys below, or buckets)


def hash_bytes(key: bytes, encoded: bytes) -> bytes:
    return entry_hash(key, encoded).to_bytes(8, "big")


def descend(digests: BucketDigests, level: int, parents: tuple[int, ...], theirs: list[int],
            parents_max: int, rng: random.Random) -> Differing:
    """The nodes at `level` (children of `parents`, or the root at level 0)
    whose digests differ from `theirs`: buckets, and nodes with at most
    LIST_KEYS_BELOW_MAX keys below them here, to list; the rest to descend,
    at most `parents_max` of them (a random choice when there are more).
    Raises Rejected for nodes out of range."""
    fanout = digests.fanout
    if level == 0:
        nodes = [0]
    else:
        if level > digests.depth or any(parent >= digests.width(level - 1) for parent in parents):
            raise Rejected("malformed", "digest node out of range")
        nodes = [parent * fanout + child for parent in parents for child in range(fanout)]
    if len(nodes) != len(theirs):
        raise Rejected("malformed", "digest count does not match the nodes")
    differing = Differing([], [])
    for node, digest in zip(nodes, theirs):
        if digests.digest(level, node) != digest:
            sparse = level == digests.depth or digests.count(level, node) <= LIST_KEYS_BELOW_MAX
            (differing.listed if sparse else differing.descend).append(node)
    if len(differing.descend) > parents_max:
        differing.descend[:] = sorted(rng.sample(differing.descend, parents_max))
    return differing


def key_items(table: KeyedTable, digests: BucketDigests, level: int, nodes: list[int], budget: int,
              nodes_max: int, rng: random.Random) -> tuple[list[KeyItem], list[int]]:
    """Our keys below at most `nodes_max` of `nodes` at `level` (a random
    choice, visited in random order) up to `budget` keys, and the nodes
    below which we hold none."""
    order = list(nodes)
    rng.shuffle(order)
    del order[max(1, nodes_max):]
    items: list[KeyItem] = []
    empty: list[int] = []
    for node in order:
        keys = digests.keys_under(level, node)[:budget]
        if not keys:
            empty.append(node)
        for index, key in enumerate(keys):
            items.append(KeyItem(node, key, hash_bytes(key, table.encoded(key)), index == len(keys) - 1))
        budget -= len(keys)
        if budget <= 0:
            break
    return items, empty


def answer_keys(table: KeyedTable, digests: BucketDigests, level: int, hashes: tuple[tuple[bytes, bytes], ...],
                complete_nodes: tuple[int, ...], budget: int) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """(our states to send, keys to ask for): keys whose hashes differ go
    both ways; keys only the peer listed are asked for; our keys below a
    node the peer listed completely, and it lacks, are sent."""
    if level > digests.depth or any(node >= digests.width(level) for node in complete_nodes):
        raise Rejected("malformed", "node out of range")
    theirs = dict(hashes)
    send: list[tuple[bytes, bytes]] = []
    want: list[bytes] = []
    for key, digest in hashes:
        mine = table.encoded(key)
        if mine is None:
            want.append(key)
        elif hash_bytes(key, mine) != digest:
            send.append((key, mine))
            want.append(key)
    for node in complete_nodes:
        send += [(key, table.encoded(key)) for key in digests.keys_under(level, node) if key not in theirs]
    send = send[:budget]
    return send, want[:budget - len(send)]


def check_entries(kind: TableKind, entries: Iterable[tuple[bytes, bytes]], clock: HybridClock,
                  now_ms: int) -> Hlc | None:
    """The latest timestamp inside `entries`; raises Rejected (bad_payload,
    clock_drift) unless each is a canonical key state of `kind` whose
    timestamps are within the clock's drift bound."""
    latest: Hlc | None = None
    for _, data in entries:
        try:
            stamp = decode_state(kind, data).max_timestamp()
        except canonical.DecodeError as error:
            raise Rejected("bad_payload", str(error)) from error
        if stamp is None:
            continue
        try:
            clock.check(now_ms, stamp)
        except ClockDriftExceeded as error:
            raise Rejected("clock_drift", str(error)) from error
        latest = stamp if latest is None else max(latest, stamp)
    return latest


def groups(items: list[Item], size_of: Callable[[Item], int], keys_max: int, room_bytes: int,
           first_extra_bytes: int = 0) -> list[list[Item]]:
    """`items` cut into groups of at most `keys_max` items and about
    `room_bytes` (estimated by `size_of`; the first group also holds
    `first_extra_bytes`). No groups for no items, unless the first group
    must carry the extra."""
    cut: list[list[Any]] = [[]]
    used = first_extra_bytes
    for item in items:
        size = size_of(item)
        if cut[-1] and (len(cut[-1]) >= keys_max or used + size > room_bytes):
            cut.append([])
            used = 0
        cut[-1].append(item)
        used += size
    return cut if items or first_extra_bytes else []
