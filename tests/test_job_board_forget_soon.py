"""A call that ends claims answers without waiting for their progress to
be removed: `NodeJobBoard.forget_soon` queues the job ids and starts one
drain on the executor at a time, which removes every id queued meanwhile
in one pass; past JOB_PROGRESS_FORGETS_QUEUED_MAX queued ids the rest are
left to the board's sweep (reads never show an ended claim's progress).

Method: the board with its removal (`forget_many`) recorded instead of
done and the executor a list of submitted drains the test runs by hand.
"""

from __future__ import annotations

from tandemkv import limits
from tandemkv.server.node.job_board import NodeJobBoard


class RecordingBoard(NodeJobBoard):
    def __init__(self) -> None:
        super().__init__(node=None)
        self.removed: list[list[int]] = []

    def forget_many(self, job_ids: list[int]) -> None:
        self.removed.append(list(job_ids))


def test_ids_queued_while_a_drain_is_pending_go_in_its_one_pass():
    board, submitted = RecordingBoard(), []
    board.forget_soon([1, 2], submitted.append)
    board.forget_soon([3], submitted.append)
    board.forget_soon([], submitted.append)
    assert len(submitted) == 1 and board.removed == []  # nothing waits on the caller's path
    submitted.pop()()
    assert board.removed == [[1, 2, 3]]
    board.forget_soon([4], submitted.append)  # the drain ended: the next ids start another
    assert len(submitted) == 1
    submitted.pop()()
    assert board.removed == [[1, 2, 3], [4]]


def test_ids_past_the_queue_limit_are_left_to_the_sweep():
    board, submitted = RecordingBoard(), []
    board.forget_soon(range(1, limits.JOB_PROGRESS_FORGETS_QUEUED_MAX + 10), submitted.append)
    board.forget_soon([0], submitted.append)
    submitted.pop()()
    (batch,) = board.removed
    assert len(batch) == limits.JOB_PROGRESS_FORGETS_QUEUED_MAX and batch[-1] == limits.JOB_PROGRESS_FORGETS_QUEUED_MAX


def test_a_failing_removal_is_logged_and_the_next_ids_still_drain(caplog):
    class FailingOnce(RecordingBoard):
        def forget_many(self, job_ids: list[int]) -> None:
            if not self.removed:
                self.removed.append([])
                raise RuntimeError("the plane stopped")
            super().forget_many(job_ids)

    board, submitted = FailingOnce(), []
    board.forget_soon([1], submitted.append)
    submitted.pop()()
    assert "removing the progress of 1 finished claims failed" in caplog.text
    board.forget_soon([2], submitted.append)
    submitted.pop()()
    assert board.removed[-1] == [2]


def test_while_the_progress_table_is_absent_ended_claims_cost_no_thread_hop(monkeypatch):
    from tandemkv.errors import NotFound
    from tandemkv.server.available import job_board as rules

    looks = []

    class NoTable:
        def is_keyed(self, table):
            looks.append(table)
            raise NotFound(f"table {table} not found")

    board, submitted = RecordingBoard(), []
    board._node = type("Node", (), {"crdt": NoTable()})()
    NodeJobBoard.forget_many(board, [1])  # finds the table absent: one catalogue look
    board.forget_soon([2, 3], submitted.append)
    assert looks == [rules.PROGRESS_TABLE] and submitted == []
    import time

    later = time.monotonic() + 1 + limits.JOB_BOARD_ABSENT_TABLE_RECHECK_MS / 1000
    monkeypatch.setattr("tandemkv.server.node.job_board.time.monotonic", lambda: later)
    board.forget_soon([4], submitted.append)  # the absence is old: the drain goes, and looks again
    assert len(submitted) == 1
    assert not board._known(rules.PROGRESS_TABLE) and len(looks) == 2  # reads always look
