"""The fault harness's pure core: the history recorder, the linearizability
checker (register, counter, set and claim models), the final-state checks
(counters, sets, CRDT convergence) and the fencing-token checks.

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

from tandemkv import errors

try:  # `tests` is a package when the repository root is on sys.path.
    from tests.faults import (
        COUNTER, GROW_ONLY_SET, REGISTER, History, HistoryFullError, Model, Operation,
        VERDICT_LINEARIZABLE, VERDICT_UNKNOWN, VERDICT_VIOLATION, check_counter_final, check_key,
        check_linearizable, check_set_final, load_history, subset_sum_reachable,
    )
    from tests.faults import workloads as workload_steps
    from tests.faults.final_state import check_crdt_converged
    from tests.faults.models import CLAIM, CLAIM_GRANTED, CLAIM_TAKEN
    from tests.faults.runner import summarize_checks
    from tests.faults.synthetic import RegisterWorkload, generate_register_history
    from tests.faults.tokens import check_claim_tokens
except ImportError:
    from faults import (  # type: ignore[no-redef]
        COUNTER, GROW_ONLY_SET, REGISTER, History, HistoryFullError, Model, Operation,
        VERDICT_LINEARIZABLE, VERDICT_UNKNOWN, VERDICT_VIOLATION, check_counter_final, check_key,
        check_linearizable, check_set_final, load_history, subset_sum_reachable,
    )
    from faults import workloads as workload_steps  # type: ignore[no-redef]
    from faults.final_state import check_crdt_converged  # type: ignore[no-redef]
    from faults.models import CLAIM, CLAIM_GRANTED, CLAIM_TAKEN  # type: ignore[no-redef]
    from faults.runner import summarize_checks  # type: ignore[no-redef]
    from faults.synthetic import RegisterWorkload, generate_register_history  # type: ignore[no-redef]
    from faults.tokens import check_claim_tokens  # type: ignore[no-redef]

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


# --- claims: registry names and locks ---------------------------------------

def granted(token: int) -> tuple:
    return (CLAIM_GRANTED, token)


def taken(owner: Any, token: int) -> tuple:
    return (CLAIM_TAKEN, owner, token)


# Owners "a", "b", "c" claim under leases 1, 2, 3 (as registry values do).
CLAIM_TABLE: list[tuple[str, list[Operation], str]] = [
    ("claim, read, release, read, claim again", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "read", None, ("a", 1, 10), 2, 3),
        op(3, "release", ("a", 1, 10), True, 4, 5), op(4, "read", None, None, 6, 7),
        op(5, "claim", ("b", 2), granted(20), 8, 9)], VERDICT_LINEARIZABLE),
    ("two owners granted one name, one after the other, is a violation", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "claim", ("b", 2), granted(20), 2, 3)],
     VERDICT_VIOLATION),
    ("two owners granted one name concurrently is a violation", [
        op(1, "claim", ("a", 1), granted(10), 0, 5), op(2, "claim", ("b", 2), granted(11), 0, 5)],
     VERDICT_VIOLATION),
    ("concurrent claims: one granted, the other told the winner", [
        op(1, "claim", ("a", 1), granted(10), 0, 5), op(2, "claim", ("b", 2), taken("a", 10), 0, 5)],
     VERDICT_LINEARIZABLE),
    ("a refusal naming an owner that never held the name is a violation", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "claim", ("b", 2), taken("c", 10), 2, 3)],
     VERDICT_VIOLATION),
    ("a refusal of a free name is a violation", [
        op(1, "claim", ("b", 2), taken("a", 10), 0, 1)], VERDICT_VIOLATION),
    ("a read of the owner after an acknowledged release is a violation", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), True, 2, 3),
        op(3, "read", None, ("a", 1, 10), 4, 5)], VERDICT_VIOLATION),
    ("a second owner granted after the first released is fine", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), True, 2, 3),
        op(3, "claim", ("b", 2), granted(20), 4, 5)], VERDICT_LINEARIZABLE),
    ("a release refused while its owner holds the name is a violation", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), False, 2, 3)],
     VERDICT_VIOLATION),
    ("a release by the holder that reports done twice is a violation", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), True, 2, 3),
        op(3, "release", ("a", 1, 10), True, 4, 5)], VERDICT_VIOLATION),
    ("an unknown claim may show up later", [
        op(1, "claim", ("a", 1), None, 0, INF, "unknown"), op(2, "read", None, None, 1, 2),
        op(3, "read", None, ("a", 1, 10), 3, 4), op(4, "claim", ("b", 2), taken("a", 10), 5, 6)],
     VERDICT_LINEARIZABLE),
    ("an unknown claim that never shows up does not block others", [
        op(1, "claim", ("a", 1), None, 0, INF, "unknown"), op(2, "claim", ("b", 2), granted(20), 5, 6)],
     VERDICT_LINEARIZABLE),
    ("an unknown release may free the name for the next owner", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), None, 2, INF, "unknown"),
        op(3, "claim", ("b", 2), granted(20), 5, 6)], VERDICT_LINEARIZABLE),
    ("a failed claim whose owner is read later is a violation", [
        op(1, "claim", ("a", 1), None, 0, 1, "fail"), op(2, "read", None, ("a", 1, 10), 2, 3)],
     VERDICT_VIOLATION),
    ("the same lease claiming what it holds is granted and changes nothing", [
        op(1, "claim", (1, 1), granted(10), 0, 1), op(2, "claim", (1, 1), granted(10), 2, 3),
        op(3, "claim", (2, 2), taken(1, 10), 4, 5)], VERDICT_LINEARIZABLE),
    ("a lock taken, released and taken again by one lease", [
        op(1, "claim", (1, 1), granted(10), 0, 1), op(2, "release", (1, 1, 10), True, 2, 3),
        op(3, "claim", (2, 2), granted(20), 4, 5), op(4, "release", (2, 2, 20), True, 6, 7),
        op(5, "claim", (1, 1), granted(30), 8, 9), op(6, "claim", (2, 2), taken(1, 30), 10, 11)],
     VERDICT_LINEARIZABLE),
    ("a lock granted to a second lease while the first holds it is a violation", [
        op(1, "claim", (1, 1), granted(10), 0, 1), op(2, "claim", (2, 2), taken(1, 10), 2, 3),
        op(3, "claim", (3, 3), granted(30), 4, 5)], VERDICT_VIOLATION),
]


@pytest.mark.parametrize("name, operations, expected", CLAIM_TABLE, ids=[row[0] for row in CLAIM_TABLE])
def test_claim_histories_get_the_verdict_worked_out_by_hand(name: str, operations: list[Operation],
                                                           expected: str) -> None:
    assert verdict(operations, CLAIM) == expected, name


def test_a_claim_model_violation_names_both_owners() -> None:
    operations = [op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "claim", ("b", 2), granted(20), 2, 3)]
    [violation] = check_linearizable(operations, CLAIM).violations()
    assert violation.explanation is not None
    assert {o.op_id for o in violation.explanation.prefix} | \
        {o.op_id for o in violation.explanation.involved()} == {1, 2}


def test_a_malformed_claim_is_rejected() -> None:
    with pytest.raises(ValueError, match="2-tuple"):
        check_linearizable([op(1, "claim", "a", granted(1), 0, 1)], CLAIM)
    with pytest.raises(ValueError, match="granted"):
        check_linearizable([op(1, "claim", ("a", 1), True, 0, 1)], CLAIM)


TOKEN_TABLE: list[tuple[str, list[Operation], bool, int]] = [
    ("tokens growing with each grant", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), True, 2, 3),
        op(3, "claim", ("b", 2), granted(20), 4, 5), op(4, "read", None, ("b", 2, 20), 6, 7)], True, 0),
    ("a later grant with a smaller token", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "release", ("a", 1, 10), True, 2, 3),
        op(3, "claim", ("b", 2), granted(7), 4, 5)], True, 1),
    ("a later grant to another lease with an equal token", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "claim", ("b", 2), granted(10), 4, 5)], False, 2),
    ("one lease granted its own claim back", [
        op(1, "claim", (1, 1), granted(10), 0, 1), op(2, "claim", (1, 1), granted(10), 4, 5)], False, 0),
    ("concurrent grants may come in either order", [
        op(1, "claim", ("a", 1), granted(20), 0, 5), op(2, "release", ("a", 1, 20), True, 0, 5),
        op(3, "claim", ("b", 2), granted(10), 1, 6)], True, 0),
    ("a read giving an owner another token than its grant", [
        op(1, "claim", ("a", 1), granted(10), 0, 1), op(2, "read", None, ("a", 1, 11), 2, 3)], True, 1),
    ("a lock's lease holding two claims in turn", [
        op(1, "claim", (1, 1), granted(10), 0, 1), op(2, "release", (1, 1, 10), True, 2, 3),
        op(3, "claim", (1, 1), granted(12), 4, 5), op(4, "claim", (2, 2), taken(1, 12), 6, 7)], False, 0),
    ("one token named for two owners", [
        op(1, "claim", (1, 1), granted(10), 0, 1), op(2, "claim", (2, 2), taken(3, 10), 2, 3)], False, 1),
]


@pytest.mark.parametrize("name, operations, unique_owners, violations", TOKEN_TABLE,
                         ids=[row[0] for row in TOKEN_TABLE])
def test_fencing_tokens_are_checked_for_order_and_identity(name: str, operations: list[Operation],
                                                           unique_owners: bool, violations: int) -> None:
    found = check_claim_tokens(operations, one_claim_per_owner=unique_owners)
    assert len(found) == violations, f"{name}: {found}"


# --- the runner's checks on whole histories ----------------------------------

def test_the_runner_reports_two_owners_of_one_registry_name() -> None:
    operations = (op(1, "claim", ("a", 1), granted(10), 0, 1, key="name/0"),
                  op(2, "claim", ("b", 2), granted(20), 2, 3, key="name/0", process=1))
    summary = summarize_checks(operations, {})
    assert summary["linearizability"] == VERDICT_VIOLATION and not summary["checks_ok"]
    assert "name/0" in summary["linearizability_violations"][0]


def test_the_runner_reports_a_lock_granted_with_a_stale_token() -> None:
    operations = (op(1, "claim", (1, 1), granted(10), 0, 1, key="lock/0"),
                  op(2, "release", (1, 1, 10), True, 2, 3, key="lock/0"),
                  op(3, "claim", (2, 2), granted(9), 4, 5, key="lock/0", process=1))
    summary = summarize_checks(operations, {})
    assert summary["linearizability"] == VERDICT_LINEARIZABLE
    assert len(summary["token_violations"]) == 1 and not summary["checks_ok"]


def test_the_runner_reports_crdt_replicas_that_never_converged() -> None:
    adds = (op(1, "add", "x", None, 0, 1, key="crdt/0"), op(2, "add", "y", None, 0, 1, key="crdt/0"))
    final = (("n1", frozenset({"x", "y"})), ("n2", frozenset({"x"})))
    summary = summarize_checks(adds, {"crdt/0": final})
    assert len(summary["crdt_violations"]) == 1 and not summary["checks_ok"]
    assert "NOT converged" in summary["crdt_violations"][0]
    converged = (("n1", frozenset({"x", "y"})), ("n2", frozenset({"x", "y"})))
    assert summarize_checks(adds, {"crdt/0": converged})["checks_ok"]


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


def crdt_add(op_id: int, member: str, outcome: str) -> Operation:
    return op(op_id, "add", member, None, 0, None if outcome == "unknown" else 1, outcome)


CRDT_ADDS = [crdt_add(1, "a", "ok"), crdt_add(2, "b", "unknown"), crdt_add(3, "c", "fail")]


@pytest.mark.parametrize("name, per_node, ok", [
    ("every node alike, with the acknowledged add", [("n1", {"a"}), ("n2", {"a"}), ("n3", {"a"})], True),
    ("an unknown add applied everywhere", [("n1", {"a", "b"}), ("n2", {"a", "b"})], True),
    ("one node behind", [("n1", {"a", "b"}), ("n2", {"a"})], False),
    ("an acknowledged add lost everywhere", [("n1", set()), ("n2", set())], False),
    ("a failed add applied everywhere", [("n1", {"a", "c"}), ("n2", {"a", "c"})], False),
    ("a member nobody added", [("n1", {"a", "z"}), ("n2", {"a", "z"})], False),
    ("no node answered", [], False),
])
def test_crdt_replicas_must_converge_on_the_adds(name: str, per_node: list, ok: bool) -> None:
    result = check_crdt_converged(CRDT_ADDS, [(node, frozenset(members)) for node, members in per_node])
    assert result.ok == ok, f"{name}: {result.describe()}"


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
    if model_name == "claim":
        return draw(tiny_claim_operation())
    kind = draw(st.sampled_from(["read", "add"]))
    if kind == "read":
        return kind, None, frozenset(draw(st.lists(values, max_size=3)))
    return kind, draw(values), None


@st.composite
def tiny_claim_operation(draw: st.DrawFn) -> tuple[str, Any, Any]:
    owners, leases, tokens = st.sampled_from("ab"), st.integers(1, 2), st.just(1)
    kind = draw(st.sampled_from(["read", "claim", "release"]))
    if kind == "read":
        return kind, None, draw(st.none() | st.tuples(owners, leases, tokens))
    if kind == "release":
        return kind, (draw(owners), draw(leases), 1), draw(st.booleans())
    answer = draw(st.sampled_from([CLAIM_GRANTED, CLAIM_TAKEN]))
    output = granted(1) if answer == CLAIM_GRANTED else taken(draw(owners), 1)
    return kind, (draw(owners), draw(leases)), output


MODELS = {"register": REGISTER, "counter": COUNTER, "set": GROW_ONLY_SET, "claim": CLAIM}


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


# --- the registry workload's outcome classification ------------------------

class FakeRegistryClient:
    """Stands in for TrackingClient in registry steps: register answers
    with `answer` (a token) or raises it (an exception)."""

    def __init__(self, answer: Any):
        self.answer = answer
        self.registry = self
        self.leases = itertools.count(100)

    def begin_call(self) -> None:
        pass

    def write_maybe_sent(self) -> bool:
        return False

    def lease(self, ttl_s: float) -> Any:
        return type("FakeLease", (), {"id": next(self.leases)})()

    def register(self, name: str, value: str, lease: int) -> int:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class ClaimingRng(random.Random):
    """Always draws a claim (not a read) on the first key."""

    def random(self) -> float:
        return 0.9

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        return 0


def registry_step_with(answer: Any) -> tuple[Operation, Any]:
    history = History()
    worker = workload_steps.Worker(history, FakeRegistryClient(answer), workload_steps.Processes(),
                                   workload_steps.Tally(), ClaimingRng())
    workload_steps.registry_step(worker, workload_steps.KeyRotation("name", 1, 10))
    [recorded] = history.operations()
    return recorded, worker


def test_a_registry_claim_refused_is_an_ok_answer_naming_the_holder() -> None:
    recorded, worker = registry_step_with(errors.AlreadyExists("taken", owner=b"p9-0", token=5))
    assert (recorded.kind, recorded.outcome, recorded.output) == ("claim", "ok", (CLAIM_TAKEN, "p9-0", 5))
    assert worker.held == {} and worker.lease == recorded.input[1]


def test_a_registry_claim_granted_is_remembered_with_its_token() -> None:
    recorded, worker = registry_step_with(9)
    assert (recorded.outcome, recorded.output) == ("ok", (CLAIM_GRANTED, 9))
    assert worker.held == {"name/0": (recorded.input[0], 9)}


def test_an_unknown_registry_claim_makes_the_worker_take_a_new_lease() -> None:
    recorded, worker = registry_step_with(errors.OutcomeUnknown("deadline"))
    assert recorded.outcome == "unknown"
    assert worker.lease is None and worker.held == {} and worker.process != recorded.process


def test_a_registry_claim_that_was_not_sent_is_a_failure() -> None:
    recorded, worker = registry_step_with(errors.Unavailable("no leader"))
    assert recorded.outcome == "fail" and worker.lease == recorded.input[1]
