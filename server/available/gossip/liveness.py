"""Peer liveness from gossiped heartbeats.

Every round a node stamps a new heartbeat (a hybrid timestamp, so it keeps
rising across restarts), and every message carries the largest heartbeat the
sender knows of each member. A peer whose heartbeat has not risen for
`suspect_after_rounds` of this node's rounds is suspect; after
`dead_after_rounds` it is dead. Heartbeats travel through third nodes, so a
peer that this node cannot reach directly but others can is still alive.

This module never knows about tables, messages or time beyond round numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tandemkv.server.available.crdt.hlc import Hlc


class PeerState(str, enum.Enum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


@dataclass(frozen=True)
class PeerLiveness:
    state: PeerState
    rounds_silent: int       # this node's rounds since the heartbeat last rose
    heartbeat: Hlc | None    # the largest heartbeat known


@dataclass
class _Record:
    heartbeat: Hlc | None
    risen_round: int


class Liveness:
    def __init__(self, suspect_after_rounds: int, dead_after_rounds: int) -> None:
        assert 1 <= suspect_after_rounds < dead_after_rounds
        self._suspect_after_rounds = suspect_after_rounds
        self._dead_after_rounds = dead_after_rounds
        self._records: dict[str, _Record] = {}

    def set_peers(self, peers: set[str], round_number: int) -> None:
        """Follows the membership: new peers start their count now, removed
        peers are forgotten."""
        for peer in set(self._records) - peers:
            del self._records[peer]
        for peer in peers - set(self._records):
            self._records[peer] = _Record(None, round_number)

    def heard(self, peer: str, heartbeat: Hlc, round_number: int) -> None:
        record = self._records.get(peer)
        if record is not None and (record.heartbeat is None or heartbeat > record.heartbeat):
            record.heartbeat = heartbeat
            record.risen_round = round_number

    def heartbeats(self) -> dict[str, Hlc]:
        return {peer: record.heartbeat for peer, record in self._records.items()
                if record.heartbeat is not None}

    def state(self, peer: str, round_number: int) -> PeerState:
        return self.status(peer, round_number).state

    def status(self, peer: str, round_number: int) -> PeerLiveness:
        record = self._records[peer]
        silent = round_number - record.risen_round
        if silent >= self._dead_after_rounds:
            state = PeerState.DEAD
        elif silent >= self._suspect_after_rounds:
            state = PeerState.SUSPECT
        else:
            state = PeerState.ALIVE
        return PeerLiveness(state, silent, record.heartbeat)
