"""`SortedKeys`: the keys of a keyed table in byte order, for prefix scans.

A list of sorted blocks (each at most `BLOCK_KEYS_MAX` keys) plus the
largest key of each block: adding a key is a bisect over the block maxima
and an insort into one short block, so a million keys cost about a
microsecond each to add and a scan starts anywhere in two bisects. One flat
sorted list would move half of a million pointers per insert.

Keys are only ever added: a keyed table keeps a removed key (its state
remembers what the removal saw) until it is collected, and collection
rebuilds the index.

Pure: no I/O, no threads.
"""

from __future__ import annotations

import bisect
from typing import Iterator

# A block splits in two halves past this many keys.
BLOCK_KEYS_MAX = 1_024


class SortedKeys:
    __slots__ = ("_blocks", "_maxima", "_count")

    def __init__(self) -> None:
        self._blocks: list[list[bytes]] = []
        self._maxima: list[bytes] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, key: bytes) -> None:
        """Adds `key`, which must not be present (the table checks)."""
        if not self._blocks:
            self._blocks.append([key])
            self._maxima.append(key)
            self._count = 1
            return
        at = bisect.bisect_left(self._maxima, key)
        if at == len(self._blocks):
            at -= 1
        block = self._blocks[at]
        spot = bisect.bisect_left(block, key)
        assert spot == len(block) or block[spot] != key, "a key is added once"
        block.insert(spot, key)
        self._maxima[at] = block[-1]
        self._count += 1
        if len(block) > BLOCK_KEYS_MAX:
            half = len(block) // 2
            self._blocks[at:at + 1] = [block[:half], block[half:]]
            self._maxima[at:at + 1] = [block[half - 1], block[-1]]

    def from_key(self, start: bytes) -> Iterator[bytes]:
        """Every key >= `start`, in order. The index must not change while
        the iterator is in use."""
        at = bisect.bisect_left(self._maxima, start)
        if at == len(self._blocks):
            return
        block = self._blocks[at]
        yield from block[bisect.bisect_left(block, start):]
        for block in self._blocks[at + 1:]:
            yield from block
