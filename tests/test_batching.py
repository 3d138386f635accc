"""Coalescing queued writes into log entries (`batching.group_entries`) and
handing each write its own result back (`fan_out`). Pure; no Raft."""

from __future__ import annotations

from tandemkv import limits
from tandemkv.server.strong import batching
from tandemkv.v1 import raft_pb2

QUEUE_FULL = 2  # any failure code pysyncobj passes on


def _recorder(answers, name):
    return lambda result, fail_reason: answers.append((name, result, fail_reason))


def _batched(entry: bytes) -> list[bytes]:
    return list(raft_pb2.Command.FromString(entry).batch.commands)


def test_one_waiting_write_is_proposed_alone_unchanged():
    callback = _recorder([], "a")
    assert batching.group_entries([(b"cmd-a", callback, True)]) == [(b"cmd-a", callback)]


def test_runs_of_batchable_writes_share_an_entry_in_queue_order():
    answers = []
    pending = [(b"a", _recorder(answers, "a"), True), (b"b", _recorder(answers, "b"), True),
               (b"lease", _recorder(answers, "lease"), False),
               (b"c", _recorder(answers, "c"), True), (b"d", _recorder(answers, "d"), True)]
    entries = batching.group_entries(pending)
    assert [_batched(entries[0][0]), entries[1][0], _batched(entries[2][0])] == [
        [b"a", b"b"], b"lease", [b"c", b"d"]]


def test_entries_respect_the_command_count_and_byte_limits():
    pending = [(bytes([k]) * 100, _recorder([], k), True) for k in range(9)]
    by_count = batching.group_entries(pending, commands_max=4, bytes_max=1 << 20)
    assert [len(_batched(entry)) for entry, _ in by_count[:2]] == [4, 4]
    assert by_count[2][0] == pending[8][0], "a run of one is proposed alone"
    by_bytes = batching.group_entries(pending, commands_max=100, bytes_max=350)
    assert all(len(entry) <= 350 for entry, _ in by_bytes)
    assert [len(_batched(entry)) for entry, _ in by_bytes] == [3, 3, 3]
    assert b"".join(c for entry, _ in by_bytes for c in _batched(entry)) == b"".join(
        command for command, _, _ in pending), "nothing lost, order kept"


def test_a_command_of_the_largest_size_still_fits_its_own_entry():
    big = b"x" * limits.COMMAND_SIZE_BYTES_MAX
    pending = [(b"small", _recorder([], 1), True), (big, _recorder([], 2), True),
               (b"small", _recorder([], 3), True)]
    entries = batching.group_entries(pending)
    assert [entry for entry, _ in entries] == [b"small", big, b"small"]


def test_fan_out_answers_each_write_with_its_own_result():
    answers = []
    entries = batching.group_entries([(b"a", _recorder(answers, "a"), True),
                                      (b"b", _recorder(answers, "b"), True)])
    (entry, callback), = entries
    result = raft_pb2.CommandResult(revision=7)
    result.batch.results.extend([b"result-a", b"result-b"])
    callback(result.SerializeToString(), 0)
    assert answers == [("a", b"result-a", 0), ("b", b"result-b", 0)]


def test_fan_out_passes_a_failure_or_a_missing_result_to_every_write():
    answers = []
    callback = batching.fan_out([_recorder(answers, "a"), _recorder(answers, "b")])
    callback(None, QUEUE_FULL)
    wrong_count = raft_pb2.CommandResult(revision=1)
    wrong_count.batch.results.append(b"only one")
    callback(wrong_count.SerializeToString(), 0)
    assert answers == [("a", None, QUEUE_FULL), ("b", None, QUEUE_FULL),
                       ("a", None, 0), ("b", None, 0)]
