"""Checks on a key's final state that need no search.

This module owns two cheap end-of-run checks, run after the cluster has
healed and a final read has been taken:
- a counter's final value must equal its initial value plus every
  acknowledged increment plus some subset of the unknown increments;
- a grow-only set's final read must contain every acknowledged add and
  nothing that was never attempted;
- a CRDT set read on every node after the faults healed: every node must
  hold the same members, and those members pass the grow-only set check.
It knows nothing about time order; the linearizability checker covers that.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Hashable, Iterable

from .history import OUTCOME_FAIL, OUTCOME_OK, OUTCOME_UNKNOWN, Operation

# Width, in distinct sums, of the subset-sum table over unknown deltas
# (the sum of their absolute values). Wider tables give a VERDICT_UNKNOWN.
SUBSET_SUM_SPAN_MAX = 10_000_000

VERDICT_OK = "ok"
VERDICT_VIOLATION = "violation"
VERDICT_UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class CounterVerdict:
    """Whether a counter's final value is explained by its increments.
    `lowest` and `highest` bound the values the increments allow."""

    verdict: str
    final_value: int
    acknowledged_total: int
    unknown_deltas: tuple[int, ...]
    lowest: int
    highest: int
    reason: str

    @property
    def ok(self) -> bool:
        return self.verdict == VERDICT_OK


@dataclasses.dataclass(frozen=True)
class SetVerdict:
    """Whether a grow-only set's final read is explained by its adds."""

    final_elements: frozenset[Hashable]
    missing: frozenset[Hashable]
    unexpected: frozenset[Hashable]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected

    def describe(self) -> str:
        if self.ok:
            return f"ok: {len(self.final_elements)} elements"
        return f"violation: lost acknowledged adds {sorted(self.missing, key=repr)!r}, " \
               f"never-added elements {sorted(self.unexpected, key=repr)!r}"


def check_counter_final(
    operations: Iterable[Operation],
    final_value: int,
    *,
    initial_value: int = 0,
    span_max: int = SUBSET_SUM_SPAN_MAX,
) -> CounterVerdict:
    """Check the final value of one counter against its "incr" operations
    (other kinds are ignored; failed increments must not count)."""
    increments = [op for op in operations if op.kind == "incr"]
    acknowledged = initial_value + sum(op.input for op in increments if op.outcome == OUTCOME_OK)
    unknown = tuple(op.input for op in increments if op.outcome == OUTCOME_UNKNOWN)
    verdict, reason = _subset_sum_verdict(final_value - acknowledged, unknown, span_max)
    return CounterVerdict(
        verdict=verdict,
        final_value=final_value,
        acknowledged_total=acknowledged,
        unknown_deltas=unknown,
        lowest=acknowledged + sum(delta for delta in unknown if delta < 0),
        highest=acknowledged + sum(delta for delta in unknown if delta > 0),
        reason=reason,
    )


def _subset_sum_verdict(target: int, deltas: tuple[int, ...], span_max: int) -> tuple[str, str]:
    lowest = sum(delta for delta in deltas if delta < 0)
    highest = sum(delta for delta in deltas if delta > 0)
    if not lowest <= target <= highest:
        return VERDICT_VIOLATION, f"needs {target:+} from unknown increments, which allow [{lowest}, {highest}]"
    nonzero = [delta for delta in deltas if delta != 0]
    if len(set(nonzero)) <= 1:
        # Every delta alike: any multiple of it within the range is reachable.
        step = nonzero[0] if nonzero else 1
        if target % step == 0:
            return VERDICT_OK, f"{target // step} of {len(nonzero)} unknown increments of {step} took effect"
        return VERDICT_VIOLATION, f"{target:+} is not a multiple of the unknown delta {step}"
    if highest - lowest > span_max:
        return VERDICT_UNKNOWN, f"subset-sum span {highest - lowest} exceeds {span_max}"
    if subset_sum_reachable(target, nonzero):
        return VERDICT_OK, f"some subset of the unknown increments sums to {target:+}"
    return VERDICT_VIOLATION, f"no subset of the unknown increments sums to {target:+}"


def subset_sum_reachable(target: int, deltas: Iterable[int]) -> bool:
    """Whether some subset of `deltas` sums to `target`, with an integer
    used as a bitset of reachable sums (bit i is sum i + offset)."""
    deltas = list(deltas)
    offset = -sum(delta for delta in deltas if delta < 0)
    reachable = 1 << offset
    for delta in deltas:
        reachable |= (reachable << delta) if delta > 0 else (reachable >> -delta)
    position = target + offset
    return position >= 0 and bool((reachable >> position) & 1)


def check_set_final(operations: Iterable[Operation], final_elements: Iterable[Any]) -> SetVerdict:
    """Check a grow-only set's final read against its "add" operations:
    every acknowledged add must be present, and every element present must
    have been attempted by an add that did not definitely fail."""
    final = frozenset(final_elements)
    adds = [op for op in operations if op.kind == "add"]
    acknowledged = {op.input for op in adds if op.outcome == OUTCOME_OK}
    attempted = {op.input for op in adds if op.outcome != OUTCOME_FAIL}
    return SetVerdict(
        final_elements=final,
        missing=frozenset(acknowledged - final),
        unexpected=frozenset(final - attempted),
    )


@dataclasses.dataclass(frozen=True)
class ConvergenceVerdict:
    """Whether every node's replica of a CRDT set ended alike, and its
    members are explained by the adds. `per_node` is each node's verdict."""

    converged: bool
    per_node: dict[str, SetVerdict]

    @property
    def ok(self) -> bool:
        return self.converged and all(verdict.ok for verdict in self.per_node.values())

    def describe(self) -> str:
        sizes = {node: len(verdict.final_elements) for node, verdict in sorted(self.per_node.items())}
        head = f"converged on {sizes}" if self.converged else f"NOT converged: members per node {sizes}"
        problems = [f"{node}: {verdict.describe()}" for node, verdict in sorted(self.per_node.items())
                    if not verdict.ok]
        if not self.converged:
            union = frozenset().union(*(v.final_elements for v in self.per_node.values()))
            problems += [f"{node} lacks {sorted(union - v.final_elements, key=repr)[:10]!r}"
                         for node, v in sorted(self.per_node.items()) if union - v.final_elements]
        return "; ".join([head] + problems)


def check_crdt_converged(operations: Iterable[Operation], per_node: Iterable[tuple[str, Iterable[Any]]]
                         ) -> ConvergenceVerdict:
    """Check each node's final read of one CRDT set (pairs of node name and
    members): all alike, each holding every acknowledged add and nothing
    never attempted."""
    adds = [op for op in operations if op.kind == "add"]
    verdicts = {node: check_set_final(adds, members) for node, members in per_node}
    finals = {verdict.final_elements for verdict in verdicts.values()}
    return ConvergenceVerdict(converged=len(finals) <= 1 and bool(verdicts), per_node=verdicts)
