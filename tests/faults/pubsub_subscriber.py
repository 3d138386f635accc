"""The pub/sub fault run's subscribers: `SubscriberLoop` subscribes through
the SDK, records every event of each subscription as a `Segment`
(pubsub_history.py), and subscribes again when a fault breaks the stream
or when it moves on by itself after a few seconds (`SEGMENT_S_RANGE`), to
the next node in its list. A durable one resumes from the offset after the
last it read, or (`REPLAY_SHARE` of the time) from up to
`REPLAY_OFFSETS_MAX` offsets back, so that the checks see replays; a
best-effort one subscribes again (no history: what was published in
between is not expected of it). One stalls on purpose: it stops reading for
`STALL_S` at the first message of each burst, so its node drops the oldest
and it gets `Lagged` notices.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from tandemkv import errors
from tandemkv.client import Client, Retry
from tandemkv.client._pubsub_core import Gap, Lagged, Message

from .pubsub_history import Event, Segment
from .pubsub_workload import BURST_EVERY_S, PADDING_MARK, Recorder

# Opening a subscription: a node that is down is skipped quickly.
SUBSCRIBE_RETRY = Retry(attempts_max=2, deadline_s=3.0, attempt_timeout_s=1.0)
# Pause before subscribing again after a subscription broke or failed to open.
RESUBSCRIBE_PAUSE_S = 0.2
# How long a subscription lasts before its subscriber closes it and moves
# to the next node (faults break some sooner).
SEGMENT_S_RANGE = (3.0, 8.0)
# Share of durable resumes that re-read from a few offsets back, and how far.
REPLAY_SHARE = 0.5
REPLAY_OFFSETS_MAX = 20
# How long the stalling subscriber stops reading. Its node holds a window
# (SUBSCRIPTION_WINDOW_MESSAGES, 1,024) and a buffer
# (PUBSUB_SUBSCRIBER_BUFFER_BYTES_MAX, 4 MiB: about 1,900 burst messages)
# for it and drops the oldest of the rest: a Lagged notice, once a burst
# comes faster than about 370 messages/s.
STALL_S = 8.0


class SubscriberLoop:
    """One subscriber: subscribes, records every event, subscribes again
    when the stream breaks, until `stop()`. Durable: one topic, resumed from
    `next_offset` (or a little before it, to replay)."""

    def __init__(self, recorder: Recorder, name: str, endpoints: list[str], topics: tuple = (),
                 prefixes: tuple = (), *, durable: bool = False, rng: random.Random | None = None,
                 replays: bool = True, moves: bool = True, stalls: bool = False, from_offset: int = 0):
        assert not durable or (len(topics) == 1 and not prefixes)
        self.recorder, self.name, self.endpoints = recorder, name, endpoints
        self.topics, self.prefixes, self.durable = tuple(topics), tuple(prefixes), durable
        self.rng = rng or random.Random(name)
        self.replays = replays
        self.moves = moves
        self.stalls = stalls
        self._stalled_at = 0.0
        self._calm = threading.Event()
        self.segments_opened = 0
        self.next_offset = from_offset  # durable: 0 is the first retained message
        self.first_read: int | None = None
        self.current: Segment | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._subscription: Any = None
        self.thread = threading.Thread(target=self._run, name=f"subscriber {name}", daemon=True)

    def start(self) -> SubscriberLoop:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ends the loop; the segment open now is marked drained (it was
        open through the end of the run)."""
        self._stopping.set()
        self._calm.set()
        segment = self.open_segment()
        if segment is not None:
            segment.drained = True
        with self._lock:
            if self._subscription is not None:
                self._subscription.close()

    def reached(self) -> int:
        """Durable: the highest offset read (or passed in a gap), -1 before any."""
        return self.next_offset - 1

    def open_segment(self) -> Segment | None:
        """The segment open now, if any."""
        current = self.current
        return current if current is not None and not current.end else None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._one_segment()
            except errors.InvalidArgument as error:  # the harness asked wrong: no fault explains it
                self.recorder.error(f"{self.name}: subscribe refused: {error}")
                return
            except errors.TandemKVError:  # no node took it (down, paused, cut off): try again
                pass
            self._stopping.wait(RESUBSCRIBE_PAUSE_S)

    def _from_offset(self) -> int | None:
        if not self.durable:
            return None
        if self.replays and self.first_read is not None and self.rng.random() < REPLAY_SHARE:
            return max(self.first_read, self.next_offset - self.rng.randint(1, REPLAY_OFFSETS_MAX))
        return self.next_offset

    def _one_segment(self) -> None:
        from_offset = self._from_offset()
        shift = self.segments_opened % len(self.endpoints)
        self.segments_opened += 1
        with Client(self.endpoints[shift:] + self.endpoints[:shift], retry=SUBSCRIBE_RETRY) as client:
            subscription = client.pubsub.subscribe(self.topics, prefixes=self.prefixes, durable=self.durable,
                                                   from_offset=from_offset)
            with self._lock:
                self._subscription = subscription
                if self._stopping.is_set():
                    subscription.close()
            segment = Segment(self.name, subscription.node, self.topics, self.prefixes, self.durable,
                              from_offset, open_s=self.recorder.now(), slow=self.stalls)
            self.current = segment
            self.recorder.segment(segment)
            mover = threading.Timer(self.rng.uniform(*SEGMENT_S_RANGE), subscription.close)
            mover.daemon = True
            if self.moves:
                mover.start()
            try:
                for event in subscription:
                    segment.events.append(self._record(event))
                    self._maybe_stall()
                segment.end = "closed"
            except errors.TandemKVError as error:
                segment.end = f"broken: {type(error).__name__}: {error}"
            finally:
                mover.cancel()
                segment.end_s = self.recorder.now()
                subscription.close()
                with self._lock:
                    self._subscription = None

    def _maybe_stall(self) -> None:
        """A slow reader: stops reading for STALL_S, then reads on at full
        speed for BURST_EVERY_S / 2 (so it stalls at a burst's first message)."""
        if self.stalls and not self._calm.is_set() and time.monotonic() - self._stalled_at >= BURST_EVERY_S / 2:
            self._calm.wait(STALL_S)
            self._stalled_at = time.monotonic()

    def stop_stalling(self) -> None:
        """Reads at full speed from now on (the drain at the end of a run)."""
        self._calm.set()

    def _record(self, event: Any) -> Event:
        at = self.recorder.now()
        if isinstance(event, Lagged):
            return Event(at, "lagged", missed=event.missed)
        if isinstance(event, Gap):
            self.next_offset = max(self.next_offset, event.first_offset)
            return Event(at, "gap", offset=event.from_offset, first_offset=event.first_offset)
        assert isinstance(event, Message)
        topic, payload = event.topic.decode(), event.payload.decode().split(PADDING_MARK, 1)[0]
        if event.publisher is None:
            if self.first_read is None:
                self.first_read = event.offset
            self.next_offset = max(self.next_offset, event.offset + 1)
            return Event(at, "message", topic, payload, offset=event.offset)
        publisher = event.publisher
        return Event(at, "message", topic, payload,
                     stamp=(publisher.node, publisher.incarnation, publisher.session, event.seq))
