"""The hybrid logical clock (HLC) that stamps LWW writes and gossip messages.

A timestamp is (wall_ms, logical): the largest physical time this node has
seen, plus a counter that orders events within one millisecond. Timestamps a
node issues strictly increase, and a node that observes a remote timestamp
issues larger ones afterwards, so a write that causally follows another
always wins last-writer-wins.

Time is passed in (`physical_ms`); this module reads no clock. A restart or a
physical clock stepped back never reuses a timestamp: before issuing one at or
beyond the persisted high-water mark, the clock reserves a window ahead
(`HLC_RESERVE_AHEAD_MS`) through the `HighWaterMark` it was given, and a
restarted clock starts above the last reservation. A remote timestamp more
than `limits.CLOCK_DRIFT_MS_MAX` ahead of local physical time is refused: a
merge only moves state forward, so one far-future stamp would win every
later write.

This module never knows about storage, gossip or the CRDT types.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from tandemkv import limits

# How far ahead of the issued timestamps the persisted high-water mark is
# moved, so the store is written about once per this many milliseconds.
HLC_RESERVE_AHEAD_MS = 10_000
# The logical counter wraps into the next millisecond above this.
HLC_LOGICAL_MAX = 2**16 - 1


class Hlc(NamedTuple):
    """One hybrid timestamp; tuples order them."""

    wall_ms: int
    logical: int

    def to_plain(self) -> list[int]:
        return [self.wall_ms, self.logical]

    @staticmethod
    def from_plain(value: object) -> "Hlc":
        if not (isinstance(value, list) and len(value) == 2
                and all(type(part) is int and part >= 0 for part in value)):
            raise ValueError("a timestamp is [wall_ms, logical], both non-negative")
        if value[1] > HLC_LOGICAL_MAX:
            raise ValueError("logical counter out of range")
        return Hlc(value[0], value[1])


HLC_ZERO = Hlc(0, 0)


class ClockDriftExceeded(Exception):
    """A remote timestamp is further in the future than the drift limit."""

    def __init__(self, remote: Hlc, physical_ms: int, drift_ms_max: int):
        super().__init__(
            f"remote timestamp {remote.wall_ms} ms is more than {drift_ms_max} ms "
            f"ahead of local time {physical_ms} ms")
        self.remote = remote


class HighWaterMark(Protocol):
    """Where the clock's reservation survives a restart. `save` must be
    durable when it returns (the clock issues timestamps under it at once)."""

    def load(self) -> int: ...
    def save(self, wall_ms: int) -> None: ...


class MemoryHighWaterMark:
    """A HighWaterMark in memory: for tests and simulations, where a
    'restart' is a new clock over the same object."""

    def __init__(self, wall_ms: int = 0) -> None:
        self.wall_ms = wall_ms
        self.saves = 0

    def load(self) -> int:
        return self.wall_ms

    def save(self, wall_ms: int) -> None:
        assert wall_ms >= self.wall_ms, "the high-water mark never moves back"
        self.wall_ms = wall_ms
        self.saves += 1


class HybridClock:
    """Issues and observes hybrid timestamps. Not thread-safe: one owner."""

    def __init__(self, high_water: HighWaterMark,
                 drift_ms_max: int = limits.CLOCK_DRIFT_MS_MAX) -> None:
        self._high_water = high_water
        self._reserved_ms = high_water.load()
        assert self._reserved_ms >= 0
        # Every timestamp issued before has wall_ms < the reservation.
        self._last = Hlc(self._reserved_ms, 0)
        self.drift_ms_max = drift_ms_max

    def last(self) -> Hlc:
        """The largest timestamp issued or observed so far."""
        return self._last

    def now(self, physical_ms: int) -> Hlc:
        """A new timestamp, larger than every one issued or observed."""
        wall_ms = max(self._last.wall_ms, physical_ms)
        logical = self._last.logical + 1 if wall_ms == self._last.wall_ms else 0
        return self._advance(Hlc(wall_ms, logical))

    def check(self, physical_ms: int, remote: Hlc) -> None:
        """Raises ClockDriftExceeded if `remote` is too far in the future."""
        if remote.wall_ms > physical_ms + self.drift_ms_max:
            raise ClockDriftExceeded(remote, physical_ms, self.drift_ms_max)

    def observe(self, physical_ms: int, remote: Hlc) -> Hlc:
        """Takes in a remote timestamp (after `check`); returns a new local
        one larger than both it and everything before."""
        self.check(physical_ms, remote)
        wall_ms = max(self._last.wall_ms, remote.wall_ms, physical_ms)
        logical = 0
        if wall_ms == self._last.wall_ms:
            logical = max(logical, self._last.logical + 1)
        if wall_ms == remote.wall_ms:
            logical = max(logical, remote.logical + 1)
        return self._advance(Hlc(wall_ms, logical))

    def _advance(self, stamp: Hlc) -> Hlc:
        if stamp.logical > HLC_LOGICAL_MAX:
            stamp = Hlc(stamp.wall_ms + 1, 0)
        if stamp.wall_ms >= self._reserved_ms:
            self._reserved_ms = stamp.wall_ms + HLC_RESERVE_AHEAD_MS
            self._high_water.save(self._reserved_ms)
        assert stamp > self._last, "hybrid timestamps strictly increase"
        self._last = stamp
        return stamp
