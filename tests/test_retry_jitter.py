"""Retry backoff has full jitter: each wait is drawn uniformly below its
exponential ceiling from the policy's injected source, so clients that
failed together (a leader change) spread their retries out instead of
retrying in step, and a seeded source replays the exact waits.

Method: `Retry.backoff_s` with seeded `random.Random` sources, and one
client against a server over a fake node that answers UNAVAILABLE, with a
fake clock recording the waits."""

from __future__ import annotations

import random

from tandemkv import errors
from tandemkv.client import Client, Retry

CEILINGS_S = [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
CLIENTS = 50


def test_each_wait_is_the_seeded_draw_times_its_ceiling():
    retry = Retry(jitter=random.Random(7).random)
    draws = random.Random(7)
    waits = [retry.backoff_s(n) for n in range(len(CEILINGS_S))]
    assert [retry.backoff_ceiling_s(n) for n in range(len(CEILINGS_S))] == CEILINGS_S
    assert waits == [ceiling * draws.random() for ceiling in CEILINGS_S]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, CEILINGS_S))


def test_clients_that_fail_together_do_not_retry_together():
    waits = [Retry(jitter=random.Random(seed).random).backoff_s(3) for seed in range(CLIENTS)]
    assert len(set(waits)) == CLIENTS, "every client waits its own time"
    assert min(waits) < 0.4 * 0.25 and max(waits) > 0.4 * 0.75, sorted(waits)
    assert Retry(jitter=lambda: 1.0).backoff_s(3) == 0.4, "jitter off: the ceiling itself"


def test_a_source_outside_zero_to_one_is_clamped_to_the_ceiling():
    assert Retry(jitter=lambda: 7.0).backoff_s(0) == 0.05
    assert Retry(jitter=lambda: -1.0).backoff_s(0) == 0.0


class _FakeTime:
    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_client_sleeps_the_seeded_jittered_waits_between_attempts(fake_server, fake_node):
    fake_node.errors.extend(errors.Unavailable("no leader") for _ in range(4))
    fake_time = _FakeTime()
    retry = Retry(sleep=fake_time.sleep, clock=lambda: fake_time.now, jitter=random.Random(11).random)
    with Client([fake_server], retry=retry) as client:
        client.put("k", "v")
    draws = random.Random(11)
    assert fake_time.sleeps == [ceiling * draws.random() for ceiling in CEILINGS_S[:4]]
    assert len(fake_node.calls) == 5
