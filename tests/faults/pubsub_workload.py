"""Pub/sub clients that run through the SDK while the nemesis works, and
record what they did for pubsub_check.py.

- Durable publishers publish numbered messages (`<publisher>:<n>`) to a
  topic with `durable=True` through every node (the SDK finds the leader);
  an unknown outcome is retried with its request id, so it ends with an
  offset or stays unknown. Durable subscribers read one topic each, from
  offset 0, starting on their own node.
- Best-effort publishers are pinned to one node each (their messages all
  take that node's relay) and number their messages in the payload; the
  node's own stamp (publisher, seq) is recorded too. Best-effort
  subscribers start on their own node, one by prefix, the others by topic.
- Every subscriber closes its subscription after a few seconds
  (`SEGMENT_S_RANGE`) and opens the next on the next node, so subscriptions
  are broken off by faults and moved between nodes all through the run. A
  durable one resumes from the offset after the last it read, or half of
  the time from a few offsets back, to check that a replay returns the same
  messages at the same offsets; a best-effort one subscribes again (there is
  no history: what was published in between is not expected).

Every time is seconds since the run began, on the nemesis's clock.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from typing import Any, Callable

from tandemkv import errors
from tandemkv.client import AsyncClient, Client, Retry
from tandemkv.client._pubsub_core import Gap, Lagged, Message

from .pubsub_check import Event, Publish, Segment, holds, payload_of
from .tracking import TrackingClient

# One publish: attempts and the budget for all of them, in seconds.
PUBLISH_RETRY = Retry(attempts_max=4, deadline_s=3.0, attempt_timeout_s=1.0, backoff_initial_s=0.05,
                      backoff_max_s=0.5)
# Opening a subscription: a node that is down is skipped quickly.
SUBSCRIBE_RETRY = Retry(attempts_max=2, deadline_s=3.0, attempt_timeout_s=1.0)
# Times a durable publish of unknown outcome is sent again with its request id.
DURABLE_FINISH_ATTEMPTS_MAX = 5
# Pause between one publisher's publishes (each publisher sends at most
# 1 / this many a second, so the nodes are loaded but not swamped).
PUBLISH_GAP_S = 0.02
# Pause before subscribing again after a subscription broke or failed to open.
RESUBSCRIBE_PAUSE_S = 0.2
# How long a subscription lasts before its subscriber closes it and moves
# to the next node (faults break some sooner); None keeps one to the end.
SEGMENT_S_RANGE = (3.0, 8.0)
# A burst: this many best-effort messages of BURST_PADDING_BYTES more than
# their name, sent at once on one publish stream, every BURST_EVERY_S. The
# stalling subscriber stops reading for STALL_S at the first message of
# each: its node holds a window (SUBSCRIPTION_WINDOW_MESSAGES, 1,024) and a
# buffer (PUBSUB_SUBSCRIBER_BUFFER_BYTES_MAX, 4 MiB: about 1,900 such
# messages) for it and drops the oldest of the rest: a Lagged notice, once
# the burst comes faster than 370 messages/s.
BURST_MESSAGES = 5_000
BURST_PADDING_BYTES = 2_048
BURST_EVERY_S = 10.0
STALL_S = 8.0
PADDING_MARK = "|"
# Share of durable resumes that re-read from a few offsets back, and how far.
REPLAY_SHARE = 0.5
REPLAY_OFFSETS_MAX = 20


class Recorder:
    """The run's history: publishes and subscription segments; thread-safe."""

    def __init__(self, started_at: float):
        self.started_at = started_at
        self.lock = threading.Lock()
        self.durable_publishes: list[Publish] = []
        self.best_effort_publishes: list[Publish] = []
        self.segments: list[Segment] = []
        self.errors: list[str] = []

    def now(self) -> float:
        return round(time.monotonic() - self.started_at, 3)

    def publish(self, record: Publish, durable: bool) -> None:
        with self.lock:
            (self.durable_publishes if durable else self.best_effort_publishes).append(record)

    def segment(self, segment: Segment) -> None:
        with self.lock:
            self.segments.append(segment)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def home_first(endpoints: list[str], index: int) -> list[str]:
    shift = index % len(endpoints)
    return endpoints[shift:] + endpoints[:shift]


def best_effort_publisher(recorder: Recorder, publisher: str, endpoint: str, node: str, topics: list[str],
                          rng: random.Random, stop: threading.Event) -> None:
    """Publishes `<publisher>:<n>` to a random topic of `topics` through
    `endpoint` only, until `stop`; n counts the publisher's messages (so a
    topic's numbers rise, with holes where the other topics took one)."""
    with TrackingClient([endpoint], PUBLISH_RETRY) as client:
        for number in itertools.count(1):
            if stop.is_set():
                return
            topic = rng.choice(topics)
            payload = payload_of(publisher, number)
            invoked = recorder.now()
            client.begin_call()
            try:
                client.pubsub.publish(topic, payload)
                outcome = "ok"
            except errors.OutcomeUnknown:
                outcome = "unknown"
            except errors.Unavailable:
                outcome = "unknown" if client.write_maybe_sent() else "fail"
            except errors.TandemKVError as error:
                recorder.error(f"{publisher}: best-effort publish refused: {type(error).__name__}: {error}")
                outcome = "unknown"
            record = Publish(publisher, number, topic, node, invoked, recorder.now(), outcome)
            recorder.publish(record, durable=False)
            stop.wait(PUBLISH_GAP_S)


def burst_publisher(recorder: Recorder, publisher: str, endpoint: str, node: str, topic: str,
                    stop: threading.Event) -> None:
    """Every BURST_EVERY_S, BURST_MESSAGES messages `<publisher>:<n>` to
    `topic` on one publish stream through `endpoint` only, until `stop`."""
    asyncio.run(_bursts(recorder, publisher, endpoint, node, topic, stop))


async def _bursts(recorder: Recorder, publisher: str, endpoint: str, node: str, topic: str,
                  stop: threading.Event) -> None:
    numbers = itertools.count(1)
    padding = PADDING_MARK + "x" * BURST_PADDING_BYTES
    async with AsyncClient([endpoint], retry=PUBLISH_RETRY) as client:
        while not stop.is_set():
            sent: list[tuple[int, float, asyncio.Future]] = []
            answered_at: dict[int, float] = {}
            async with client.pubsub.publish_stream() as stream:
                for number in itertools.islice(numbers, BURST_MESSAGES):
                    if stop.is_set():
                        break
                    invoked = recorder.now()
                    try:
                        answer = await stream.send(topic, payload_of(publisher, number) + padding)
                    except errors.TandemKVError:
                        break
                    answer.add_done_callback(lambda _, n=number: answered_at.setdefault(n, recorder.now()))
                    sent.append((number, invoked, answer))
            for number, invoked, answer in sent:
                failure = answer.exception() if not answer.cancelled() else errors.OutcomeUnknown("cancelled")
                outcome = ("ok" if failure is None else "fail" if isinstance(failure, errors.Unavailable)
                           else "unknown")
                recorder.publish(Publish(publisher, number, topic, node, invoked, answered_at.get(number, invoked),
                                         outcome), durable=False)
            await asyncio.get_running_loop().run_in_executor(None, stop.wait, BURST_EVERY_S)


def durable_publisher(recorder: Recorder, publisher: str, endpoints: list[str], topic: str,
                      stop: threading.Event) -> None:
    """Publishes `<publisher>:<n>` durably to `topic` until `stop`; a publish
    of unknown outcome is finished with its request id where it can be."""
    with TrackingClient(endpoints, PUBLISH_RETRY) as client:
        number = 0
        while not stop.is_set():
            number += 1
            invoked = recorder.now()
            outcome, offset = _durable_publish(client, topic, payload_of(publisher, number))
            record = Publish(publisher, number, topic, "", invoked, recorder.now(), outcome, offset)
            recorder.publish(record, durable=True)
            stop.wait(PUBLISH_GAP_S)


def _durable_publish(client: TrackingClient, topic: str, payload: str) -> tuple[str, int]:
    request_id = None
    maybe_sent = False
    for _ in range(DURABLE_FINISH_ATTEMPTS_MAX):
        client.begin_call()
        try:
            return "ok", client.pubsub.publish(topic, payload, durable=True, request_id=request_id).offset
        except errors.OutcomeUnknown as error:
            request_id = error.request_id or request_id
            maybe_sent = True
            if request_id is None:
                return "unknown", 0
        except errors.Unavailable:
            maybe_sent = maybe_sent or client.write_maybe_sent()
            if not maybe_sent:
                return "fail", 0
        except errors.TandemKVError:
            return "unknown", 0
    return "unknown", 0


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


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    """Polls `condition` until it holds or `timeout_s` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def best_effort_drained(recorder: Recorder, loops: list[SubscriberLoop]) -> bool:
    """Every open best-effort segment has each publisher's last acknowledged
    message on each topic it holds, if it was open when that was sent (the
    relay keeps one publisher's order, so the rest arrived or are lost)."""
    last: dict[tuple[str, str], Publish] = {}
    with recorder.lock:
        for p in recorder.best_effort_publishes:
            if p.outcome == "ok":
                last[(p.publisher, p.topic)] = p
    for loop in loops:
        segment = loop.open_segment()
        if segment is None:
            return False
        got = {event.payload for event in list(segment.events) if event.kind == "message"}
        if any(p.invoke_s > segment.open_s and holds(segment, p.topic) and p.payload not in got
               for p in last.values()):
            return False
    return True


def durable_caught_up(recorder: Recorder, loops: list[SubscriberLoop]) -> bool:
    """Every durable subscriber has read its topic up to the last
    acknowledged offset."""
    with recorder.lock:
        last: dict[str, int] = {}
        for p in recorder.durable_publishes:
            if p.outcome == "ok":
                last[p.topic] = max(last.get(p.topic, -1), p.offset)
    return all(loop.reached() >= last.get(loop.topics[0], -1) for loop in loops)
