"""Pub/sub publishers that run through the SDK while the nemesis works, and
the `Recorder` of the run's history (pubsub_history.py) for pubsub_check.py;
the subscribers are in pubsub_subscriber.py.

- Durable publishers publish numbered messages (`<publisher>:<n>`) to a
  topic with `durable=True` through every node (the SDK finds the leader);
  an unknown outcome is retried with its request id, so it ends with an
  offset or stays unknown.
- Best-effort publishers are pinned to one node each (their messages all
  take that node's relay) and number their messages in the payload.
- The burst publisher sends BURST_MESSAGES at once on a publish stream
  every BURST_EVERY_S, for the subscriber that stalls.

Every time is seconds since the run began, on the nemesis's clock.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time

from tandemkv import errors
from tandemkv.client import AsyncClient, Retry

from .pubsub_history import Publish, Segment, payload_of
from .tracking import TrackingClient

# One publish: attempts and the budget for all of them, in seconds.
PUBLISH_RETRY = Retry(attempts_max=4, deadline_s=3.0, attempt_timeout_s=1.0, backoff_initial_s=0.05,
                      backoff_max_s=0.5)
# Times a durable publish of unknown outcome is sent again with its request id.
DURABLE_FINISH_ATTEMPTS_MAX = 5
# Pause between one publisher's publishes (each publisher sends at most
# 1 / this many a second, so the nodes are loaded but not swamped).
PUBLISH_GAP_S = 0.02
# A burst: this many best-effort messages of BURST_PADDING_BYTES more than
# their name (after PADDING_MARK), sent at once on one publish stream,
# every BURST_EVERY_S, for the stalling subscriber (pubsub_subscriber.py).
BURST_MESSAGES = 5_000
BURST_PADDING_BYTES = 2_048
BURST_EVERY_S = 10.0
PADDING_MARK = "|"


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
