"""Large payloads in bounded messages: splitting on the way out, and
reassembly, bounded, on the way in.

A payload (an encoded state or delta) that does not fit in one message is
cut into chunks sent in separate messages; the receiver keeps the chunks of
each transfer until all have arrived and only then hands the payload on, so
a partial state is never merged. Incomplete transfers are dropped after a
number of rounds, or when a peer has too many or too large ones open; the
next round simply starts a new transfer.

This module never knows what a payload means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tandemkv.server.available.gossip.wire import Chunk


def split_payload(data: bytes, chunk_bytes: int) -> list[bytes]:
    """`data` in pieces of at most `chunk_bytes` (at least one piece)."""
    assert chunk_bytes >= 1
    return [data[at:at + chunk_bytes] for at in range(0, len(data), chunk_bytes)] or [b""]


@dataclass
class _Transfer:
    count: int
    started_round: int
    pieces: dict[int, bytes] = field(default_factory=dict)
    size_bytes: int = 0


TransferKey = tuple[str, str, int]  # (peer, table, transfer id)


class Reassembly:
    def __init__(self, transfers_per_peer_max: int, bytes_per_peer_max: int,
                 rounds_max: int) -> None:
        self._transfers_per_peer_max = transfers_per_peer_max
        self._bytes_per_peer_max = bytes_per_peer_max
        self._rounds_max = rounds_max
        self._open: dict[TransferKey, _Transfer] = {}
        self.dropped = 0

    def add(self, peer: str, table: str, chunk: Chunk, round_number: int) -> bytes | None:
        """Takes one chunk; returns the whole payload once its last chunk
        arrives, else None."""
        if chunk.count == 1:
            return chunk.data
        key = (peer, table, chunk.transfer_id)
        transfer = self._open.get(key)
        if transfer is None:
            transfer = self._open[key] = _Transfer(chunk.count, round_number)
        if transfer.count != chunk.count or chunk.index in transfer.pieces:
            return None
        transfer.pieces[chunk.index] = chunk.data
        transfer.size_bytes += len(chunk.data)
        if len(transfer.pieces) == transfer.count:
            del self._open[key]
            return b"".join(transfer.pieces[index] for index in range(transfer.count))
        self._enforce_peer_bounds(peer)
        return None

    def expire(self, round_number: int) -> None:
        """Drops transfers started more than rounds_max rounds ago."""
        for key in [key for key, transfer in self._open.items()
                    if round_number - transfer.started_round > self._rounds_max]:
            del self._open[key]
            self.dropped += 1

    def forget_peer(self, peer: str) -> None:
        for key in [key for key in self._open if key[0] == peer]:
            del self._open[key]

    def open_transfers(self) -> int:
        return len(self._open)

    def _enforce_peer_bounds(self, peer: str) -> None:
        """Drops the peer's oldest open transfers until it is within bounds."""
        while True:
            mine = sorted((transfer.started_round, key) for key, transfer in self._open.items()
                          if key[0] == peer)
            size = sum(self._open[key].size_bytes for _, key in mine)
            if len(mine) <= self._transfers_per_peer_max and size <= self._bytes_per_peer_max:
                return
            del self._open[mine[0][1]]
            self.dropped += 1
