"""`BucketDigests`: the digest tree anti-entropy compares for one keyed table.

Every key falls in one of `leaf_count` buckets by a hash of the key alone,
so a key's bucket is the same on every replica. Buckets are the leaves of
a tree of fanout `KEYED_DIGEST_FANOUT` and depth `KEYED_DIGEST_DEPTH`
(16 and 4: 65,536 buckets, about 15 keys each at a million keys). A node's
digest is the XOR of the 64-bit hashes of every (key, encoded state) below
it, so a change to one key updates its leaf and the leaf's ancestors in
O(depth), and a million keys never have to be hashed again to compare.
Equal tables have equal roots; a digest of 0 is an empty subtree (or a
2**-64 accident, which only delays repair to the key's next change).

It also keeps which keys each bucket holds, and how many keys lie below
each node, so an exchange can list the keys of a sparse subtree instead of
descending it (`LIST_KEYS_BELOW_MAX`).

Pure: hashlib only; no I/O, no threads.
"""

from __future__ import annotations

import hashlib

# Children of each digest node, and levels below the root; both replicas of
# an exchange must use the same (they are part of the protocol).
KEYED_DIGEST_FANOUT = 16
KEYED_DIGEST_DEPTH = 4
# Bytes of one digest on the wire.
DIGEST_BYTES = 8
# A differing node with at most this many keys below it (on the side that
# found the difference) has its keys listed rather than its children's
# digests sent: a listed key costs about 25 bytes, a node's children
# 16 x 8 bytes and one more step each way.
LIST_KEYS_BELOW_MAX = 8


def key_hash(key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def entry_hash(key: bytes, encoded: bytes) -> int:
    """The 64-bit hash of one key with its encoded state."""
    prefix = len(key).to_bytes(2, "big")
    return int.from_bytes(hashlib.blake2b(prefix + key + encoded, digest_size=8).digest(), "big")


class BucketDigests:
    __slots__ = ("fanout", "depth", "leaf_count", "_leaf_shift", "_levels", "_counts", "_bucket_keys")

    def __init__(self, fanout: int = KEYED_DIGEST_FANOUT, depth: int = KEYED_DIGEST_DEPTH) -> None:
        assert fanout >= 2 and fanout & (fanout - 1) == 0, "the fanout is a power of two"
        assert 1 <= depth and fanout ** depth <= 2 ** 32
        self.fanout = fanout
        self.depth = depth
        self.leaf_count = fanout ** depth
        self._leaf_shift = 64 - (self.leaf_count.bit_length() - 1)
        # Level 0 is the root, level `depth` the buckets; absent nodes are 0.
        self._levels: list[dict[int, int]] = [{} for _ in range(depth + 1)]
        self._counts: list[dict[int, int]] = [{} for _ in range(depth + 1)]
        self._bucket_keys: dict[int, list[bytes]] = {}

    def bucket_of(self, key: bytes) -> int:
        return key_hash(key) >> self._leaf_shift

    def change(self, key: bytes, before: bytes | None, after: bytes) -> None:
        """Takes one key's state change (a ChangeListener of KeyedTable)."""
        bucket = self.bucket_of(key)
        flip = entry_hash(key, after)
        if before is None:
            self._bucket_keys.setdefault(bucket, []).append(key)
        else:
            flip ^= entry_hash(key, before)
        index = bucket
        for level in range(self.depth, -1, -1):
            if before is None:
                self._counts[level][index] = self._counts[level].get(index, 0) + 1
            nodes = self._levels[level]
            digest = nodes.get(index, 0) ^ flip
            if digest:
                nodes[index] = digest
            else:
                nodes.pop(index, None)
            index //= self.fanout

    def root(self) -> int:
        return self._levels[0].get(0, 0)

    def digest(self, level: int, index: int) -> int:
        return self._levels[level].get(index, 0)

    def children(self, level: int, parent: int) -> list[int]:
        """The digests of the `fanout` children (at `level` + 1) of node
        `parent` at `level`, in order."""
        nodes = self._levels[level + 1]
        first = parent * self.fanout
        return [nodes.get(first + offset, 0) for offset in range(self.fanout)]

    def count(self, level: int, index: int) -> int:
        """Keys held below node `index` at `level` (removed ones too)."""
        return self._counts[level].get(index, 0)

    def width(self, level: int) -> int:
        """Nodes at `level`."""
        return self.fanout ** level

    def keys_under(self, level: int, index: int) -> list[bytes]:
        """Every key held below node `index` at `level`."""
        span = self.fanout ** (self.depth - level)
        first = index * span
        if span <= len(self._bucket_keys):
            return [key for bucket in range(first, first + span) for key in self._bucket_keys.get(bucket, ())]
        return [key for bucket, keys in self._bucket_keys.items() if first <= bucket < first + span
                for key in keys]


def pack_digests(digests: list[int]) -> bytes:
    return b"".join(digest.to_bytes(DIGEST_BYTES, "big") for digest in digests)


def unpack_digests(data: bytes) -> list[int]:
    if len(data) % DIGEST_BYTES:
        raise ValueError("digests are 8 bytes each")
    return [int.from_bytes(data[at:at + DIGEST_BYTES], "big") for at in range(0, len(data), DIGEST_BYTES)]
