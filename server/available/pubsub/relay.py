"""The node-to-node relay, without I/O: what one node queues for each peer,
how it cuts the queue into frames, and how a receiver counts what a stream
lost.

A message published on a node crosses to each other node once, whatever
the number of subscribers there: the origin puts it on one `OutboundQueue`
per peer, and the peer hands it to its own hub (Phoenix.PubSub's PG
adapter does the same: one send per remote node, then a local dispatch).
Nothing is forwarded twice: a node relays only what was published on it.

Each queue numbers what it is given (the stream sequence, from 1 for each
incarnation of the origin), keeps the order, and is bounded in messages
and bytes; past either bound the OLDEST queued message goes and is counted
(`overflowed`). A frame carries a run of consecutive messages and says how
many went since the last frame, so the receiver (`InboundStreams`) can
tell a hole in the stream apart: so many dropped by a full queue, the rest
lost in transit (frames in flight when a connection broke). Messages lost
either way also leave a jump in their publisher's numbers (gaps.py), which
is what a subscriber sees.

The running part (pubsub_relay.py) moves frames over one gRPC stream per
peer; it calls `next_frame` only when the stream can take another, so a
slow or unreachable peer fills its own queue and nothing else.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from tandemkv import limits

from tandemkv.server.available.pubsub.messages import Message


@dataclass(frozen=True, slots=True)
class RelayFrame:
    """A run of messages of one origin's stream to one peer. `first_seq`
    numbers `messages[0]`; `overflowed` of the numbers before it were
    dropped by the origin's full queue since its last frame."""

    first_seq: int
    messages: tuple[Message, ...]
    overflowed: int


class OutboundQueue:
    """What one node has for one peer and has not framed yet."""

    def __init__(self, messages_max: int = limits.PUBSUB_RELAY_QUEUE_MESSAGES_MAX,
                 bytes_max: int = limits.PUBSUB_RELAY_QUEUE_BYTES_MAX,
                 frame_bytes_max: int = limits.PUBSUB_RELAY_FRAME_BYTES_MAX):
        self._queued: collections.deque[Message] = collections.deque()
        self._bytes = 0
        # The stream number of `_queued[0]` (or of the next message put).
        self._head_seq = 1
        self._messages_max = messages_max
        self._bytes_max = bytes_max
        self._frame_bytes_max = frame_bytes_max
        self._overflowed_unreported = 0
        self.overflowed_total = 0
        self.framed_total = 0

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, message: Message) -> bool:
        """Queues `message`, dropping the oldest past a bound. True when the
        queue was empty before (the sender needs a wake-up)."""
        was_empty = not self._queued
        self._queued.append(message)
        self._bytes += message.counted_bytes
        while len(self._queued) > self._messages_max or self._bytes > self._bytes_max:
            dropped = self._queued.popleft()
            self._bytes -= dropped.counted_bytes
            self._head_seq += 1
            self._overflowed_unreported += 1
            self.overflowed_total += 1
        assert self._queued and self._queued[-1] is message
        return was_empty

    def next_frame(self) -> RelayFrame | None:
        """The oldest messages that fit one frame (at least one), taken off
        the queue; None when nothing is queued."""
        if not self._queued:
            return None
        taken: list[Message] = []
        taken_bytes = 0
        while self._queued:
            size = self._queued[0].counted_bytes
            if taken and taken_bytes + size > self._frame_bytes_max:
                break
            taken.append(self._queued.popleft())
            taken_bytes += size
        self._bytes -= taken_bytes
        frame = RelayFrame(self._head_seq, tuple(taken), self._overflowed_unreported)
        self._head_seq += len(taken)
        self._overflowed_unreported = 0
        self.framed_total += len(taken)
        return frame

    def status(self) -> dict[str, int]:
        return {"queued": len(self._queued), "queued_bytes": self._bytes, "framed": self.framed_total,
                "overflowed": self.overflowed_total}


@dataclass(slots=True)
class OriginState:
    """What a receiver knows of one origin incarnation's stream to it."""

    next_seq: int
    received: int = 0
    overflowed: int = 0
    lost_in_transit: int = 0
    stale_frames: int = 0


class InboundStreams:
    """The receiving end of every peer's stream to this node: accepts frames
    in order and counts what each stream lost. Keyed by (origin node,
    incarnation); past `origins_max` the longest-unheard goes."""

    def __init__(self, origins_max: int = limits.PUBSUB_RELAY_ORIGINS_MAX):
        self._origins: collections.OrderedDict[tuple[str, int], OriginState] = collections.OrderedDict()
        self._origins_max = origins_max

    def open(self, origin: str, incarnation: int, from_start: bool) -> OriginState:
        """A (re)connected stream. `from_start`: the origin has delivered no
        frame to this node yet, so numbers count from 1 (what its queue
        dropped before the first connection is a counted loss). Otherwise a
        receiver with no record of the origin (it restarted) starts from the
        first frame: what went before went to a process that is gone."""
        key = (origin, incarnation)
        state = self._origins.pop(key, None)
        if state is None:
            state = OriginState(next_seq=1 if from_start else 0)
        self._origins[key] = state
        while len(self._origins) > self._origins_max:
            self._origins.popitem(last=False)
        return state

    def accept(self, state: OriginState, frame: RelayFrame) -> tuple[Message, ...]:
        """The frame's messages this node has not had yet, in order, after
        counting the hole before them."""
        if state.next_seq == 0:
            state.next_seq = frame.first_seq
        end_seq = frame.first_seq + len(frame.messages)
        if end_seq <= state.next_seq:
            state.stale_frames += 1
            return ()
        fresh = frame.messages[max(0, state.next_seq - frame.first_seq):]
        hole = max(0, frame.first_seq - state.next_seq)
        overflowed = min(hole, frame.overflowed)
        state.overflowed += overflowed
        state.lost_in_transit += hole - overflowed
        state.received += len(fresh)
        state.next_seq = end_seq
        return fresh

    def keep_origins(self, nodes: set[str]) -> int:
        """Follows the committed member set: forgets the cursors of every
        origin not in `nodes` (a removed member never publishes again: it
        refuses every call, and its streams are refused from now on);
        returns how many went."""
        gone = [key for key in self._origins if key[0] not in nodes]
        for key in gone:
            del self._origins[key]
        return len(gone)

    def status(self) -> dict[str, dict[str, int]]:
        return {f"{origin}/{incarnation:016x}": {"next_seq": state.next_seq, "received": state.received,
                                                 "overflowed": state.overflowed,
                                                 "lost_in_transit": state.lost_in_transit,
                                                 "stale_frames": state.stale_frames}
                for (origin, incarnation), state in self._origins.items()}
