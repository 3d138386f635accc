"""Read-barrier coalescing, with a fake submit and a fake clock: no Raft.

A barrier covers only reads that began before it was submitted, so reads
that arrive while one is in flight must wait for the next."""

from __future__ import annotations

import concurrent.futures

from tandemkv.server.raft.read_barrier import BARRIER_STALE_S, ReadBarrier

OK = ("result", 0)


class FakeRaft:
    def __init__(self):
        self.submitted: list[concurrent.futures.Future] = []

    def submit(self) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        self.submitted.append(future)
        return future


def test_reads_arriving_during_a_barrier_share_the_next_one():
    raft = FakeRaft()
    barrier = ReadBarrier(raft.submit)
    first = barrier.join()
    waiting = [barrier.join() for _ in range(50)]
    assert len(raft.submitted) == 1
    raft.submitted[0].set_result(OK)
    assert first.result(timeout=1) == OK
    assert not any(w.done() for w in waiting), "they began after the first barrier was sent"
    assert len(raft.submitted) == 2
    raft.submitted[1].set_result(OK)
    assert all(w.result(timeout=1) == OK for w in waiting)


def test_a_failed_barrier_fails_only_its_own_readers():
    raft = FakeRaft()
    barrier = ReadBarrier(raft.submit)
    first = barrier.join()
    second = barrier.join()
    raft.submitted[0].set_result((None, 2))
    assert first.result(timeout=1) == (None, 2)
    raft.submitted[1].set_result(OK)
    assert second.result(timeout=1) == OK


def test_a_barrier_that_never_resolves_is_abandoned_after_the_stale_limit():
    raft = FakeRaft()
    now = [100.0]
    barrier = ReadBarrier(raft.submit, clock=lambda: now[0])
    lost = barrier.join()
    now[0] += BARRIER_STALE_S + 0.1
    fresh = barrier.join()
    assert lost.result(timeout=1) == (None, None)
    assert len(raft.submitted) == 2
    raft.submitted[1].set_result(OK)
    assert fresh.result(timeout=1) == OK
    raft.submitted[0].set_result(OK)  # a late answer for the abandoned one is harmless


def test_a_barrier_that_fails_at_once_does_not_block_later_reads():
    """With no leader, submit() returns an already failed future; its
    callback then runs inside join(). Later reads must still be served."""
    outcomes = iter([(None, 2), (None, 2), OK])

    def submit_failing_at_once():
        future = concurrent.futures.Future()
        future.set_result(next(outcomes))
        return future

    barrier = ReadBarrier(submit_failing_at_once)
    assert barrier.join().result(timeout=1) == (None, 2)
    assert barrier.join().result(timeout=1) == (None, 2)
    assert barrier.join().result(timeout=1) == OK
