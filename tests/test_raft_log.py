"""The durable Raft log: what reaches disk at flush(), and only then.

Method: drive DurableRaftLog through pysyncobj's journal calls, reopen it
from disk in a fresh object, and compare."""

from __future__ import annotations

import pytest

from tandemkv.server.storage.raft_log import DurableRaftLog


def reopen(log: DurableRaftLog, path) -> DurableRaftLog:
    log._destroy()
    return DurableRaftLog(path, durable=True)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "raft"


def fill(log, count, term=1, start=1):
    for index in range(start, start + count):
        log.add(b"cmd%d" % index, index, term)


def test_entries_and_vote_reach_disk_only_at_flush(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 3)
    log.setCurrentTerm(7, "127.0.0.1:1")
    assert log.dirty
    log._pending.clear()  # simulate a crash before the flush
    log._meta_dirty = False
    log = reopen(log, path)
    assert len(log) == 0 and log.getCurrentTerm() == 0


def test_flushed_entries_term_and_vote_survive_reopen(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 3)
    log.setCurrentTerm(7, "127.0.0.1:1")
    log.flush()
    assert not log.dirty
    log = reopen(log, path)
    assert [entry[1] for entry in log] == [1, 2, 3]
    assert log[2] == (b"cmd3", 3, 1)
    assert (log.getCurrentTerm(), log.getVotedForNodeId()) == (7, "127.0.0.1:1")


def test_truncating_a_conflicting_suffix_persists(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 5)
    log.flush()
    log.deleteEntriesFrom(2)  # positions 2.. i.e. indexes 3, 4, 5
    fill(log, 2, term=2, start=3)
    log.flush()
    log = reopen(log, path)
    assert [(entry[1], entry[2]) for entry in log] == [(1, 1), (2, 1), (3, 2), (4, 2)]


def test_compaction_and_clear_persist(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 6)
    log.deleteEntriesTo(4)  # keep indexes 5, 6
    log.flush()
    log = reopen(log, path)
    assert [entry[1] for entry in log] == [5, 6]
    log.clear()
    log.add(b"snap-prev", 9, 3)
    log.add(b"snap-last", 10, 3)
    log.flush()
    log = reopen(log, path)
    assert [entry[1] for entry in log] == [9, 10]


def test_trim_head_to_keeps_entries_after_a_snapshot_whose_compaction_was_lost(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 6)
    log.flush()
    assert log.trim_head_to((b"cmd3", 3, 1))
    assert [entry[1] for entry in log] == [3, 4, 5, 6]
    assert not log.trim_head_to((b"other", 4, 1))
    log = reopen(log, path)
    assert log.first_index() == 3 and log.last_index() == 6


def test_commit_index_rides_along_with_the_next_flush(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 2)
    log.setRaftCommitIndex(2)
    log.flush()
    log = reopen(log, path)
    assert log.getRaftCommitIndex() == 2


def test_out_of_order_index_is_a_programming_error(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 2)
    with pytest.raises(AssertionError):
        log.add(b"x", 5, 1)


def test_request_flush_hands_changes_to_the_flusher_and_reports_durability(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 2)
    first = log.request_flush()
    fill(log, 2, start=3)
    second = log.request_flush()
    assert second == first + 1 and not log.dirty
    log.wait_durable(second)
    assert log.durable_seq >= second
    assert log.request_flush() == second, "nothing new: the same sequence number"
    log = reopen(log, path)
    assert [entry[1] for entry in log] == [1, 2, 3, 4]


def test_a_failed_write_is_reported_to_the_failure_callback(path):
    log = DurableRaftLog(path, durable=True)
    failures = []
    log.set_callbacks(on_durable=lambda: None, on_failure=failures.append)
    log._write_batches = lambda batches: (_ for _ in ()).throw(OSError("disk gone"))
    fill(log, 1)
    log.request_flush()
    log._flusher.join(timeout=10)
    assert [str(f) for f in failures] == ["disk gone"]


def test_durable_through_counts_only_what_reached_disk_and_respects_truncations(path):
    log = DurableRaftLog(path, durable=True)
    fill(log, 5)
    assert log.durable_through() == 0
    log.wait_durable(log.request_flush())
    assert log.durable_through() == 5
    log.deleteEntriesFrom(2)  # indexes 3.. replaced, not yet on disk
    fill(log, 3, term=2, start=3)
    assert log.durable_through() == 2
    log.wait_durable_through(2)  # already durable: hands over, need not wait
    log.wait_durable_through(5)
    assert log.durable_through() == 5 and log[4] == (b"cmd5", 5, 2)
