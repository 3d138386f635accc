"""`NodeJobBoard.forget_soon` at its edges: the progress table catalogued
by this node just after a drain found it absent, and an executor that
refuses the drain (it is shutting down).

Method: the board over a stand-in node whose catalogue and progress table
are a dict, and the executor a list of submitted drains run by hand.
"""

from __future__ import annotations

from tandemkv.errors import NotFound
from tandemkv.server.available import job_board as rules
from tandemkv.server.node.job_board import NodeJobBoard
from tests.test_job_board_forget_soon import RecordingBoard


class Crdt:
    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes]] = {}

    def is_keyed(self, table):
        if table not in self.tables:
            raise NotFound(f"table {table} not found")
        return True

    def create_table(self, table, kind, keyed, timeout_s=None):
        self.tables.setdefault(table, {})

    def read(self, table, key):
        return type("Value", (), {"value": self.tables[table].get(key)})()

    def remove_entry(self, table, key, timeout_s=None):
        self.tables[table].pop(key, None)


def test_a_table_this_node_catalogues_after_a_drain_found_it_absent_is_drained_at_once():
    crdt = Crdt()
    board, submitted = NodeJobBoard(node=type("Node", (), {"crdt": crdt})()), []
    board.forget_many([1])  # no table yet: its absence is remembered
    board._ensure(rules.PROGRESS_TABLE, None)  # a progress report through this node catalogues it
    crdt.tables[rules.PROGRESS_TABLE][rules.progress_key(2)] = b"half done"
    board.forget_soon([2], submitted.append)  # job 2's claim ended through this node
    assert len(submitted) == 1, "the table is known here: its absence no longer counts"
    submitted.pop()()
    assert crdt.tables[rules.PROGRESS_TABLE] == {}


def test_an_executor_that_refuses_the_drain_leaves_the_next_ids_a_drain_of_their_own(caplog):
    caplog.set_level("INFO", logger="tandemkv.server.node.job_board")
    board, submitted = RecordingBoard(), []

    def shut_down(drain):
        raise RuntimeError("cannot schedule new futures after shutdown")

    board.forget_soon([1], shut_down)  # the call that ended the claim still answers
    assert "not removed now" in caplog.text
    board.forget_soon([2], submitted.append)
    assert len(submitted) == 1
    submitted.pop()()
    assert board.removed == [[1, 2]]
