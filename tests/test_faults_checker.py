"""The fault harness's pure core: the history recorder, the linearizability
checker and the final-state checks.

Method: table tests on small histories whose verdict is known by hand;
hypothesis properties comparing the checker with histories produced by a
real sequential register (always linearizable), with deliberately corrupted
ones (never linearizable), and with a brute-force search over every order on
tiny random histories; and one full-size run (6,000 operations, 30 keys)
that must come back linearizable. No timing is asserted.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
from pathlib import Path
from typing import Any, Hashable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:  # `tests` is a package when the repository root is on sys.path.
    from tests.faults import (
        COUNTER, GROW_ONLY_SET, REGISTER, History, HistoryFullError, Model, Operation,
        VERDICT_LINEARIZABLE, VERDICT_UNKNOWN, VERDICT_VIOLATION, check_counter_final, check_key,
        check_linearizable, check_set_final, load_history, subset_sum_reachable,
    )
    from tests.faults.synthetic import RegisterWorkload, generate_register_history
except ImportError:
    from faults import (  # type: ignore[no-redef]
        COUNTER, GROW_ONLY_SET, REGISTER, History, HistoryFullError, Model, Operation,
        VERDICT_LINEARIZABLE, VERDICT_UNKNOWN, VERDICT_VIOLATION, check_counter_final, check_key,
        check_linearizable, check_set_final, load_history, subset_sum_reachable,
    )
    from faults.synthetic import RegisterWorkload, generate_register_history  # type: ignore[no-redef]

INF = None  # return time of an unknown operation


def op(op_id: int, kind: str, input: Any, output: Any, invoke: int, ret: int | None,
       outcome: str = "ok", key: str = "k", process: int = 0) -> Operation:
    if outcome == "unknown":
        output = None
    return Operation(op_id, process, key, kind, input, output, invoke, ret, outcome)


def verdict(operations: Sequence[Operation], model: Model = REGISTER) -> str:
    return check_linearizable(operations, model).verdict


# --- register tables -------------------------------------------------------

REGISTER_TABLE: list[tuple[str, list[Operation], str]] = [
    ("a read after an acknowledged write sees it", [
        op(1, "write", 1, None, 0, 1), op(2, "read", None, 1, 2, 3)], VERDICT_LINEARIZABLE),
    ("a read before any write sees None", [
        op(1, "read", None, None, 0, 1), op(2, "write", 1, None, 2, 3)], VERDICT_LINEARIZABLE),
    ("a stale read after an acknowledged overwrite is a violation", [
        op(1, "write", 1, None, 0, 1), op(2, "write", 2, None, 2, 3),
        op(3, "read", None, 1, 4, 5)], VERDICT_VIOLATION),
    ("a read of a value never written is a violation", [
        op(1, "write", 1, None, 0, 1), op(2, "read", None, 7, 2, 3)], VERDICT_VIOLATION),
    ("a lost acknowledged write is a violation", [
        op(1, "write", 1, None, 0, 1), op(2, "read", None, None, 2, 3)], VERDICT_VIOLATION),
    ("reads concurrent with a write may see either value", [
        op(1, "write", 1, None, 0, 10), op(2, "read", None, 1, 2, 3),
        op(3, "read", None, None, 1, 4)], VERDICT_LINEARIZABLE),
    ("once a read saw the new value a later read cannot see the old one", [
        op(1, "write", 1, None, 0, 10), op(2, "read", None, 1, 1, 2),
        op(3, "read", None, None, 3, 4)], VERDICT_VIOLATION),
    ("concurrent writes are fine in one order", [
        op(1, "write", 1, None, 0, 5), op(2, "write", 2, None, 0, 5),
        op(3, "read", None, 1, 6, 7)], VERDICT_LINEARIZABLE),
    ("concurrent writes are not fine when reads need both orders", [
        op(1, "write", 1, None, 0, 5), op(2, "write", 2, None, 0, 5),
        op(3, "read", None, 1, 6, 7), op(4, "read", None, 2, 8, 9)], VERDICT_VIOLATION),
    ("an unknown write that shows up much later is fine", [
        op(1, "write", 1, None, 0, INF, "unknown"), op(2, "read", None, None, 5, 6),
        op(3, "read", None, 1, 100, 101)], VERDICT_LINEARIZABLE),
    ("an unknown write that never shows up is fine", [
        op(1, "write", 1, None, 0, INF, "unknown"), op(2, "read", None, None, 5, 6)], VERDICT_LINEARIZABLE),
    ("an unknown write cannot show up before it was invoked", [
        op(1, "read", None, 1, 0, 1), op(2, "write", 1, None, 5, INF, "unknown")], VERDICT_VIOLATION),
    ("an unknown write cannot show up, vanish and come back", [
        op(1, "write", 1, None, 0, INF, "unknown"), op(2, "read", None, 1, 5, 6),
        op(3, "read", None, None, 7, 8), op(4, "read", None, 1, 9, 10)], VERDICT_VIOLATION),
    ("a failed write that shows up is a violation", [
        op(1, "write", 1, None, 0, 1, "fail"), op(2, "read", None, 1, 2, 3)], VERDICT_VIOLATION),
    ("a failed write that stays invisible is fine", [
        op(1, "write", 1, None, 0, 1, "fail"), op(2, "read", None, None, 2, 3)], VERDICT_LINEARIZABLE),
    ("a CAS chain is linearizable", [
        op(1, "write", 1, None, 0, 1), op(2, "cas", (1, 2), True, 2, 3),
        op(3, "cas", (2, 3), True, 4, 5), op(4, "cas", (2, 9), False, 6, 7),
        op(5, "read", None, 3, 8, 9)], VERDICT_LINEARIZABLE),
    ("a CAS that succeeds on a replaced value is a violation", [
        op(1, "write", 1, None, 0, 1), op(2, "cas", (1, 2), True, 2, 3),
        op(3, "cas", (1, 4), True, 4, 5)], VERDICT_VIOLATION),
    ("a CAS that fails while its expected value is held is a violation", [
        op(1, "write", 1, None, 0, 1), op(2, "cas", (1, 2), False, 2, 3)], VERDICT_VIOLATION),
    ("concurrent CAS on one value: only one may win", [
        op(1, "write", 1, None, 0, 1), op(2, "cas", (1, 2), True, 2, 5),
        op(3, "cas", (1, 3), True, 2, 5)], VERDICT_VIOLATION),
    ("an unknown CAS whose value is read later is fine", [
        op(1, "write", 1, None, 0, 1), op(2, "cas", (1, 2), None, 2, INF, "unknown"),
        op(3, "read", None, 1, 3, 4), op(4, "read", None, 2, 50, 51)], VERDICT_LINEARIZABLE),
    ("an unknown CAS cannot apply when its expected value is gone", [
        op(1, "write", 1, None, 0, 1), op(2, "write", 5, None, 2, 3),
        op(3, "cas", (1, 2), None, 4, INF, "unknown"), op(4, "read", None, 2, 5, 6)], VERDICT_VIOLATION),
    ("an unseen unknown write may hide a value from a failed CAS", [
        op(1, "write", 1, None, 0, 1), op(2, "write", 2, None, 2, INF, "unknown"),
        op(3, "cas", (1, 3), False, 3, 4)], VERDICT_LINEARIZABLE),
    ("a value written twice may come back", [
        op(1, "write", 1, None, 0, 1), op(2, "read", None, 1, 2, 3), op(3, "write", 2, None, 4, 5),
        op(4, "write", 1, None, 6, 7), op(5, "read", None, 1, 8, 9)], VERDICT_LINEARIZABLE),
]


@pytest.mark.parametrize("name, operations, expected", REGISTER_TABLE, ids=[row[0] for row in REGISTER_TABLE])
def test_register_histories_get_the_verdict_worked_out_by_hand(name: str, operations: list[Operation],
                                                              expected: str) -> None:
    assert verdict(operations) == expected, name


def test_a_stale_read_is_explained_by_key_culprit_and_prefix() -> None:
    operations = [op(1, "write", 1, None, 0, 1), op(2, "write", 2, None, 2, 3), op(3, "read", None, 1, 4, 5)]
    result = check_linearizable(operations)
    [violation] = result.violations()
    explanation = violation.explanation
    assert explanation is not None and explanation.key == "k"
    assert operations[2] in explanation.involved()
    assert [o.op_id for o in explanation.prefix] == [1]
    assert explanation.culprit == operations[1] and explanation.stranded == (operations[2],)
    assert "still needs 1: #3" in result.describe()


def test_keys_are_checked_independently() -> None:
    operations = [op(1, "write", 1, None, 0, 1, key="a"), op(2, "read", None, 1, 2, 3, key="a"),
                  op(3, "write", 5, None, 0, 1, key="b"), op(4, "read", None, None, 2, 3, key="b")]
    result = check_linearizable(operations)
    assert result.verdicts["a"].verdict == VERDICT_LINEARIZABLE
    assert result.verdicts["b"].verdict == VERDICT_VIOLATION
    assert not result.ok and result.verdict == VERDICT_VIOLATION


def test_a_search_over_its_state_limit_reports_unknown_not_linearizable() -> None:
    operations = generate_register_history(random.Random(7), RegisterWorkload(keys=1, processes_per_key=8))
    verdict_small = check_key("key-0", operations, REGISTER, states_max=3)
    assert verdict_small.verdict == VERDICT_UNKNOWN and not verdict_small.ok
    assert verdict_small.explanation is not None
    assert check_linearizable(operations).ok


def test_a_model_per_key_can_be_chosen_by_a_function() -> None:
    operations = [op(1, "incr", 2, 2, 0, 1, key="c"), op(2, "read", None, 2, 2, 3, key="c"),
                  op(3, "write", 1, None, 0, 1, key="r"), op(4, "read", None, 1, 2, 3, key="r")]
    result = check_linearizable(operations, lambda key: COUNTER if key == "c" else REGISTER)
    assert result.ok


def test_an_operation_the_model_does_not_know_is_rejected() -> None:
    with pytest.raises(ValueError, match="no 'add' operation"):
        check_linearizable([op(1, "add", 1, None, 0, 1)], REGISTER)


# --- counter and set models ------------------------------------------------

COUNTER_TABLE: list[tuple[str, list[Operation], str]] = [
    ("reads return the sum of increments", [
        op(1, "incr", 2, 2, 0, 1), op(2, "incr", 3, 5, 2, 3), op(3, "read", None, 5, 4, 5)], VERDICT_LINEARIZABLE),
    ("a read missing an acknowledged increment is a violation", [
        op(1, "incr", 2, None, 0, 1), op(2, "read", None, 0, 2, 3)], VERDICT_VIOLATION),
    ("an increment reporting a value it cannot have is a violation", [
        op(1, "incr", 2, 2, 0, 1), op(2, "incr", 1, 4, 2, 3)], VERDICT_VIOLATION),
    ("unknown increments may count or not", [
        op(1, "incr", 1, None, 0, INF, "unknown"), op(2, "incr", 1, None, 0, INF, "unknown"),
        op(3, "read", None, 1, 5, 6), op(4, "read", None, 2, 7, 8)], VERDICT_LINEARIZABLE),
    ("a counter cannot go back down", [
        op(1, "incr", 1, None, 0, INF, "unknown"), op(2, "read", None, 1, 5, 6),
        op(3, "read", None, 0, 7, 8)], VERDICT_VIOLATION),
]

SET_TABLE: list[tuple[str, list[Operation], str]] = [
    ("a read holds every acknowledged add", [
        op(1, "add", "x", None, 0, 1), op(2, "add", "y", None, 0, 1),
        op(3, "read", None, ("x", "y"), 2, 3)], VERDICT_LINEARIZABLE),
    ("a read missing an acknowledged add is a violation", [
        op(1, "add", "x", None, 0, 1), op(2, "read", None, (), 2, 3)], VERDICT_VIOLATION),
    ("an element that disappears is a violation", [
        op(1, "add", "x", None, 0, 10), op(2, "read", None, ("x",), 1, 2),
        op(3, "read", None, (), 3, 4)], VERDICT_VIOLATION),
    ("an unknown add may appear later", [
        op(1, "add", "x", None, 0, INF, "unknown"), op(2, "read", None, (), 1, 2),
        op(3, "read", None, ("x",), 3, 4)], VERDICT_LINEARIZABLE),
]


@pytest.mark.parametrize("name, operations, expected", COUNTER_TABLE, ids=[row[0] for row in COUNTER_TABLE])
def test_counter_histories_get_the_verdict_worked_out_by_hand(name: str, operations: list[Operation],
                                                             expected: str) -> None:
    assert verdict(operations, COUNTER) == expected, name


@pytest.mark.parametrize("name, operations, expected", SET_TABLE, ids=[row[0] for row in SET_TABLE])
def test_set_histories_get_the_verdict_worked_out_by_hand(name: str, operations: list[Operation],
                                                         expected: str) -> None:
    assert verdict(operations, GROW_ONLY_SET) == expected, name


# --- final-state checks ----------------------------------------------------

def incr(op_id: int, delta: int, outcome: str) -> Operation:
    return op(op_id, "incr", delta, None, 0, None if outcome == "unknown" else 1, outcome)


@pytest.mark.parametrize("final, expected", [(3, "ok"), (5, "ok"), (7, "ok"), (8, "violation"), (2, "violation")])
def test_counter_final_with_unit_deltas_is_a_range_check(final: int, expected: str) -> None:
    operations = [incr(1, 1, "ok"), incr(2, 1, "ok"), incr(3, 1, "ok"), incr(4, 1, "fail")] + \
                 [incr(10 + i, 1, "unknown") for i in range(4)]
    result = check_counter_final(operations, final)
    assert result.verdict == expected
    assert (result.lowest, result.highest) == (3, 7)


@pytest.mark.parametrize("final, expected", [(10, "ok"), (15, "ok"), (17, "ok"), (22, "ok"),
                                             (13, "violation"), (20, "violation")])
def test_counter_final_needs_a_subset_of_unknown_deltas(final: int, expected: str) -> None:
    operations = [incr(1, 10, "ok"), incr(2, 5, "unknown"), incr(3, 7, "unknown"), incr(4, 100, "fail")]
    assert check_counter_final(operations, final).verdict == expected


def test_counter_final_too_wide_a_subset_sum_is_reported_unknown() -> None:
    operations = [incr(1, 1_000_003, "unknown"), incr(2, 7, "unknown")]
    result = check_counter_final(operations, 500_000, span_max=1_000)
    assert result.verdict == "unknown" and not result.ok


@given(st.lists(st.integers(-20, 20), max_size=8), st.integers(-100, 100))
def test_subset_sum_agrees_with_enumerating_every_subset(deltas: list[int], target: int) -> None:
    sums = {sum(chosen) for size in range(len(deltas) + 1) for chosen in itertools.combinations(deltas, size)}
    assert subset_sum_reachable(target, deltas) == (target in sums)


def test_set_final_names_lost_adds_and_elements_never_added() -> None:
    operations = [op(1, "add", "a", None, 0, 1), op(2, "add", "b", None, 0, 1),
                  op(3, "add", "c", None, 0, None, "unknown"), op(4, "add", "d", None, 0, 1, "fail")]
    assert check_set_final(operations, {"a", "b"}).ok
    assert check_set_final(operations, {"a", "b", "c"}).ok
    result = check_set_final(operations, {"a", "c", "d", "z"})
    assert result.missing == {"b"} and result.unexpected == {"d", "z"}
    assert not result.ok and "lost acknowledged adds ['b']" in result.describe()


# --- history recorder ------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.now_ns += 10
            return self.now_ns


def test_history_records_outcomes_and_reports_pending_operations_as_unknown() -> None:
    history = History(seed=1, clock_ns=FakeClock())
    first = history.invoke(process=1, key="k", kind="write", input=[1, 2])
    second = history.invoke(process=2, key="k", kind="read")
    third = history.invoke(process=3, key="k", kind="write", input=3)
    history.ok(first)
    history.fail(third)
    operations = history.operations()
    assert [o.outcome for o in operations] == ["ok", "unknown", "fail"]
    assert operations[0].input == (1, 2) and operations[0].invoke_ns < operations[0].return_ns
    assert operations[1].op_id == second and operations[1].return_ns is None
    with pytest.raises(KeyError):
        history.ok(first)


def test_history_refuses_operations_beyond_its_limit() -> None:
    history = History(seed=1, operations_max=2)
    history.invoke(1, "k", "read")
    history.invoke(1, "k", "read")
    with pytest.raises(HistoryFullError):
        history.invoke(1, "k", "read")


def test_history_is_safe_to_record_from_many_threads() -> None:
    history = History(seed=3)
    threads_count, per_thread = 8, 250
    barrier = threading.Barrier(threads_count)

    def client(process: int) -> None:
        barrier.wait()
        for index in range(per_thread):
            handle = history.invoke(process, f"k{index % 3}", "write", (process, index))
            history.ok(handle) if index % 2 else history.unknown(handle)

    threads = [threading.Thread(target=client, args=(p,)) for p in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    operations = history.operations()
    assert len(operations) == threads_count * per_thread
    assert sorted(o.op_id for o in operations) == list(range(threads_count * per_thread))
    assert sum(o.outcome == "ok" for o in operations) == threads_count * per_thread // 2


def test_history_survives_a_save_and_load_with_its_seed(tmp_path: Path) -> None:
    history = History(seed=1234, clock_ns=FakeClock())
    values: list[Any] = [b"\x00\xff", (1, "two", None), frozenset({"x", "y"}), 3.5, True, None]
    for index, value in enumerate(values):
        handle = history.invoke(index, "k", "write", value)
        history.ok(handle, output=value)
    history.invoke(99, "k", "cas", (b"a", b"b"))
    path = tmp_path / "history.jsonl"
    history.save(path, metadata={"nemesis": "partition"})
    saved = load_history(path)
    assert saved.seed == 1234 and saved.metadata == {"nemesis": "partition"}
    assert saved.operations == history.operations()


def test_loading_a_file_of_another_format_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text('{"format": "something-else"}\n')
    with pytest.raises(ValueError, match="not a tandemkv-history"):
        load_history(path)


# --- properties ------------------------------------------------------------

workloads = st.builds(
    RegisterWorkload,
    keys=st.integers(1, 3),
    operations_per_key=st.integers(1, 60),
    processes_per_key=st.integers(1, 8),
    cas_fraction=st.sampled_from([0.0, 0.2, 0.5]),
    unknown_fraction=st.sampled_from([0.0, 0.1, 0.3]),
    fail_fraction=st.sampled_from([0.0, 0.1]),
)


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False), workloads)
def test_histories_of_a_real_register_are_always_linearizable(rng: random.Random,
                                                             workload: RegisterWorkload) -> None:
    operations = generate_register_history(rng, workload)
    result = check_linearizable(operations)
    assert result.ok, result.describe()


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False), workloads, st.data())
def test_a_read_of_a_never_written_value_is_always_caught(rng: random.Random, workload: RegisterWorkload,
                                                         data: st.DataObject) -> None:
    operations = generate_register_history(rng, workload)
    reads = [i for i, o in enumerate(operations) if o.kind == "read" and o.outcome == "ok"]
    if not reads:
        operations.append(op(len(operations), "read", None, None, 0, 1, key="key-0"))
        reads = [len(operations) - 1]
    index = data.draw(st.sampled_from(reads))
    operations[index] = dataclasses.replace(operations[index], output="never written")
    result = check_linearizable(operations)
    assert result.verdict == VERDICT_VIOLATION
    [violation] = result.violations()
    assert violation.key == operations[index].key


# Tiny random histories, checked against every order of every subset of
# their unknown operations.

def legal_in_some_order(operations: Sequence[Operation], model: Model) -> bool:
    live = [o for o in operations if o.outcome != "fail"]
    unknown = [o for o in live if o.outcome == "unknown"]
    completed = [o for o in live if o.outcome == "ok"]
    for size in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, size):
            for order in itertools.permutations(completed + list(chosen)):
                if respects_real_time(order) and legal_sequence(order, model):
                    return True
    return False


def respects_real_time(order: Sequence[Operation]) -> bool:
    return all(not (later.return_bound_ns < earlier.invoke_ns)
               for i, earlier in enumerate(order) for later in order[i + 1:])


def legal_sequence(order: Sequence[Operation], model: Model) -> bool:
    state: Hashable = model.initial()
    for operation in order:
        legal, state = model.step(state, operation)
        if not legal:
            return False
    return True


@st.composite
def tiny_histories(draw: st.DrawFn, model_name: str) -> list[Operation]:
    values = st.integers(0, 2) if model_name == "register" else st.integers(-1, 2)
    operations = []
    for op_id in range(draw(st.integers(1, 6))):
        invoke = draw(st.integers(0, 6))
        ret = invoke + draw(st.integers(0, 4))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "unknown", "fail"]))
        kind, input, output = draw(tiny_operation(model_name, values))
        operations.append(op(op_id, kind, input, output, invoke, None if outcome == "unknown" else ret, outcome))
    return operations


@st.composite
def tiny_operation(draw: st.DrawFn, model_name: str, values: st.SearchStrategy[int]) -> tuple[str, Any, Any]:
    maybe_none = st.none() | values
    if model_name == "register":
        kind = draw(st.sampled_from(["read", "write", "cas"]))
        if kind == "read":
            return kind, None, draw(maybe_none)
        if kind == "write":
            return kind, draw(values), None
        return kind, (draw(maybe_none), draw(values)), draw(st.booleans())
    if model_name == "counter":
        kind = draw(st.sampled_from(["read", "incr"]))
        return (kind, None, draw(values)) if kind == "read" else (kind, draw(values), draw(st.none() | values))
    kind = draw(st.sampled_from(["read", "add"]))
    if kind == "read":
        return kind, None, frozenset(draw(st.lists(values, max_size=3)))
    return kind, draw(values), None


MODELS = {"register": REGISTER, "counter": COUNTER, "set": GROW_ONLY_SET}


@pytest.mark.parametrize("model_name", sorted(MODELS))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_search_agrees_with_trying_every_order(model_name: str, data: st.DataObject) -> None:
    operations = data.draw(tiny_histories(model_name))
    model = MODELS[model_name]
    expected = VERDICT_LINEARIZABLE if legal_in_some_order(operations, model) else VERDICT_VIOLATION
    assert verdict(operations, model) == expected


# --- size ------------------------------------------------------------------

def test_six_thousand_operations_over_thirty_keys_check_as_linearizable() -> None:
    workload = RegisterWorkload(keys=30, operations_per_key=200, processes_per_key=10,
                                cas_fraction=0.2, unknown_fraction=0.1, fail_fraction=0.05)
    operations = generate_register_history(random.Random(2026), workload)
    result = check_linearizable(operations)
    assert len(operations) == 6_000
    assert result.ok, result.describe()
    assert len(result.verdicts) == 30
