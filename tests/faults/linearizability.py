"""A linearizability checker for recorded histories.

This module owns the search: given the operations clients performed on each
key and a sequential model of a key, decide whether some total order of the
operations (a) respects real time, an operation that returned before another
was invoked coming first, and (b) is legal for the model. It is the
Wing–Gong algorithm with Lowe's memoisation of (set of linearized
operations, model state), as in Lowe's "Testing for linearizability" and
Porcupine. Keys are independent objects, so each key is checked on its own
(P-compositionality). It knows nothing about how histories were recorded.

Outcomes: failed operations are left out; an unknown operation may take
effect at any point after its invoke, or never. The search is bounded: a key
that needs more than `states_per_key_max` states is reported as "unknown"
(too complex), never as linearizable.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Callable, Hashable, Iterable, Mapping, Sequence

from .history import OUTCOME_FAIL, OUTCOME_OK, OUTCOME_UNKNOWN, Operation
from .models import NO_STATE, REGISTER, Model, RegisterModel

# Distinct (linearized set, model state) pairs the search may visit on one
# key before giving up with a VERDICT_UNKNOWN. About 150 bytes of memory each.
SEARCH_STATES_PER_KEY_MAX = 1_000_000
# Operations an explanation lists around the point where the search stuck.
EXPLANATION_OPERATIONS_MAX = 12

VERDICT_LINEARIZABLE = "linearizable"
VERDICT_VIOLATION = "violation"
VERDICT_UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Where the search got stuck on one key.

    `prefix` is the longest linearizable prefix found, in linearization
    order, and `state_after_prefix` the model state it leaves. `culprit` is
    the earliest-returning operation that could not be placed after that
    prefix; `concurrent` are the other unplaced operations invoked before
    the culprit returned (the candidates that could have gone first), and
    `stranded` the unplaced operations that need the state after the prefix,
    which can never come back once left (a stale read, typically).
    """

    key: str
    model: str
    prefix: tuple[Operation, ...]
    state_after_prefix: Hashable
    culprit: Operation | None
    concurrent: tuple[Operation, ...]
    stranded: tuple[Operation, ...] = ()

    def involved(self) -> tuple[Operation, ...]:
        """Every operation the explanation points at, culprit first."""
        culprit = () if self.culprit is None else (self.culprit,)
        return culprit + self.concurrent + self.stranded

    def describe(self) -> str:
        shown = self.prefix[-EXPLANATION_OPERATIONS_MAX:]
        lines = [f"key {self.key!r} ({self.model}): longest linearizable prefix has {len(self.prefix)} operations"]
        if len(shown) < len(self.prefix):
            lines.append(f"  ... {len(self.prefix) - len(shown)} earlier operations")
        lines += [f"  {operation.describe()}" for operation in shown]
        lines.append(f"  state after prefix: {self.state_after_prefix!r}")
        if self.culprit is not None:
            lines.append(f"  cannot place: {self.culprit.describe()}")
        lines += [f"  concurrent: {operation.describe()}" for operation in self.concurrent]
        lines += [f"  still needs {self.state_after_prefix!r}: {operation.describe()}" for operation in self.stranded]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class KeyVerdict:
    """The verdict on one key, with an explanation unless it is linearizable."""

    key: str
    verdict: str
    operations_checked: int
    states_explored: int
    explanation: Explanation | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == VERDICT_LINEARIZABLE


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Verdicts for every key. `ok` only if every key is linearizable; a key
    the search could not decide makes `ok` false without being a violation."""

    verdicts: Mapping[str, KeyVerdict]

    @property
    def ok(self) -> bool:
        return all(verdict.ok for verdict in self.verdicts.values())

    @property
    def verdict(self) -> str:
        if self.violations():
            return VERDICT_VIOLATION
        return VERDICT_LINEARIZABLE if self.ok else VERDICT_UNKNOWN

    def violations(self) -> list[KeyVerdict]:
        return [v for v in self.verdicts.values() if v.verdict == VERDICT_VIOLATION]

    def undecided(self) -> list[KeyVerdict]:
        return [v for v in self.verdicts.values() if v.verdict == VERDICT_UNKNOWN]

    def describe(self) -> str:
        lines = [f"{self.verdict}: {len(self.verdicts)} keys, {len(self.violations())} violations, "
                 f"{len(self.undecided())} undecided"]
        for verdict in self.violations() + self.undecided():
            assert verdict.explanation is not None
            lines.append(f"[{verdict.verdict}] " + verdict.explanation.describe())
        return "\n".join(lines)


ModelChoice = Model | Callable[[str], Model]


def check_linearizable(
    operations: Iterable[Operation],
    model: ModelChoice = REGISTER,
    *,
    states_per_key_max: int = SEARCH_STATES_PER_KEY_MAX,
) -> CheckResult:
    """Check every key's operations against `model` (one model for all keys,
    or a function from key to model)."""
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for operation in operations:
        by_key[operation.key].append(operation)
    verdicts = {}
    for key in sorted(by_key):
        key_model = model if isinstance(model, Model) else model(key)
        verdicts[key] = check_key(key, by_key[key], key_model, states_max=states_per_key_max)
    return CheckResult(verdicts)


def check_key(
    key: str,
    operations: Sequence[Operation],
    model: Model,
    *,
    states_max: int = SEARCH_STATES_PER_KEY_MAX,
) -> KeyVerdict:
    """Check the operations of one key against `model`."""
    for operation in operations:
        assert operation.key == key, f"{operation.describe()} is not on key {key!r}"
        model.validate(operation)
    originals = {operation.op_id: operation for operation in operations}
    assert len(originals) == len(operations), f"operation ids on key {key!r} are not unique"
    relevant = prune(operations, model)
    search = _Search(relevant, model, states_max)
    outcome = search.run()
    if outcome == VERDICT_LINEARIZABLE:
        return KeyVerdict(key, outcome, len(relevant), search.states_explored)
    explanation = search.explain(key, originals)
    return KeyVerdict(key, outcome, len(relevant), search.states_explored, explanation)


def prune(operations: Sequence[Operation], model: Model) -> list[Operation]:
    """The operations the search must consider, without changing the verdict.

    Left out: failed operations (never applied); unknown reads (they change
    nothing and their output was never seen); unknown operations invoked
    after every completed one returned (they can always go last, or never);
    and, for a register, unknown writes settled by whether anyone observed
    their value (see `_resolve_register_unknowns`). Operations it settles
    are returned as completed copies; `op_id` still names the original.
    """
    kept = [op for op in operations if op.outcome != OUTCOME_FAIL]
    kept = [op for op in kept if not (op.outcome == OUTCOME_UNKNOWN and op.kind in model.read_only_kinds)]
    last_return_ns = max((op.return_bound_ns for op in kept if op.outcome == OUTCOME_OK), default=None)
    if last_return_ns is None:
        return []
    kept = [op for op in kept if op.outcome == OUTCOME_OK or op.invoke_ns <= last_return_ns]
    if isinstance(model, RegisterModel):
        kept = _resolve_register_unknowns(kept)
    return kept


def _resolve_register_unknowns(operations: list[Operation]) -> list[Operation]:
    """Settle unknown writes and swaps whose written value is unique on the
    key (written once, and not the initial None).

    - Observed (an ok read returned it, or an ok swap expected it and
      succeeded): the write must have taken effect before the first such
      observer returned, so it becomes a completed operation with that
      return time (a swap, a successful one).
    - Never referenced (nothing reads it or expects it): nothing can be
      linearized between it and the next change of the register except a
      swap that reported failure (which only needs the register not to
      hold its expected value). Without such swaps on the key, any order
      containing the write stays legal without it, and it is dropped. With
      them, its value is replaced by UNOBSERVED: all such writes then act
      alike, and the search treats alike unknown operations as one pool.
    """
    written_counts: dict[Hashable, int] = defaultdict(int)
    for op in operations:
        if op.kind != "read":
            written_counts[_written_value(op)] += 1
    first_observed_ns: dict[Hashable, float] = {}
    referenced: set[Hashable] = set()
    failed_swaps = False
    for op in operations:
        observed = _observed_value(op)
        if observed is not _NOTHING:
            bound = first_observed_ns.get(observed, math.inf)
            first_observed_ns[observed] = min(bound, op.return_bound_ns)
        if op.kind == "read":
            referenced.add(op.output)
        elif op.kind == "cas":
            referenced.add(op.input[0])
            failed_swaps = failed_swaps or (op.outcome == OUTCOME_OK and not op.output)
    resolved = []
    for op in operations:
        written = _written_value(op)
        if op.outcome != OUTCOME_UNKNOWN or op.kind == "read" or written is None or written_counts[written] != 1:
            resolved.append(op)
        elif written in first_observed_ns:
            bound_ns = max(op.invoke_ns, first_observed_ns[written])
            output = True if op.kind == "cas" else None
            resolved.append(dataclasses.replace(op, outcome=OUTCOME_OK, output=output, return_ns=bound_ns))
        elif written in referenced:
            resolved.append(op)
        elif failed_swaps:
            hidden = UNOBSERVED if op.kind == "write" else (op.input[0], UNOBSERVED)
            resolved.append(dataclasses.replace(op, input=hidden))
    return resolved


class _Unobserved:
    def __repr__(self) -> str:
        return "<unobserved value>"


# The value the search writes in place of values no operation references.
UNOBSERVED = _Unobserved()
_NOTHING = object()


def _written_value(op: Operation) -> Hashable:
    return op.input if op.kind == "write" else op.input[1] if op.kind == "cas" else _NOTHING


def _observed_value(op: Operation) -> Hashable:
    """The value a completed operation proves the register held."""
    if op.outcome != OUTCOME_OK:
        return _NOTHING
    if op.kind == "read":
        return op.output
    if op.kind == "cas" and op.output:
        return op.input[0]
    return _NOTHING


class _Search:
    """Depth-first search over a doubly linked list of call and return
    entries (sorted by time, calls first on ties so touching operations
    count as concurrent). Linearizing an operation lifts its entries out of
    the list; backtracking puts them back. Unknown operations have no return
    entry, so nothing ever forces them; the search succeeds when no return
    entry is left."""

    def __init__(self, operations: Sequence[Operation], model: Model, states_max: int) -> None:
        self.operations = list(operations)
        self.model = model
        self.states_max = states_max
        self.seen: set[tuple[int, Hashable]] = set()
        self.best_prefix: list[int] = []
        self.best_state: Hashable = model.initial()
        self._build_entries()
        self._build_pools()
        self._build_requirements()

    def _build_entries(self) -> None:
        events = []
        for index, op in enumerate(self.operations):
            events.append((op.invoke_ns, 0, index))
            if op.outcome == OUTCOME_OK:
                events.append((op.return_ns, 1, index))
        events.sort()
        count = len(events)
        # Entry 0 is the list head; entries 1..count follow; -1 ends the list.
        self.next = list(range(1, count + 1)) + [-1]
        self.prev = [-1] + list(range(0, count))
        self.is_call = [False] + [kind == 0 for _, kind, _ in events]
        self.op_of = [-1] + [index for _, _, index in events]
        self.return_entry = [0] * (count + 1)
        call_entry: dict[int, int] = {}
        for entry in range(1, count + 1):
            if self.is_call[entry]:
                call_entry[self.op_of[entry]] = entry
            else:
                self.return_entry[call_entry[self.op_of[entry]]] = entry

    def _build_pools(self) -> None:
        """Group unknown operations with the same kind and input: they are
        interchangeable but for their invoke times, so the search only ever
        places the earliest-invoked unplaced one of a pool (if a later one
        fits somewhere, the earlier one fits there too)."""
        pools: dict[tuple[str, Hashable], list[int]] = defaultdict(list)
        for index, op in enumerate(self.operations):
            if op.outcome == OUTCOME_UNKNOWN:
                pools[(op.kind, op.input)].append(index)
        self.pool_of = [-1] * len(self.operations)
        self.rank_in_pool = [0] * len(self.operations)
        self.placed_in_pool: list[int] = []
        for members in pools.values():
            if len(members) < 2:
                continue
            members.sort(key=lambda index: (self.operations[index].invoke_ns, index))
            for rank, index in enumerate(members):
                self.pool_of[index] = len(self.placed_in_pool)
                self.rank_in_pool[index] = rank
            self.placed_in_pool.append(0)

    def _build_requirements(self) -> None:
        """Count, per state, the unplaced operations legal only in it."""
        self.required = [self.model.required_state(op) for op in self.operations]
        self.waiting: dict[Hashable, int] = defaultdict(int)
        for required in self.required:
            if required is not NO_STATE:
                self.waiting[required] += 1
        self.may_revisit = self.model.may_revisit(self.operations)

    def _strands_waiters(self, index: int, state: Hashable, after: Hashable) -> bool:
        """Whether placing operation `index` leaves `state` for good while
        other unplaced operations still need it."""
        if after == state or self.may_revisit(state):
            return False
        waiting = self.waiting.get(state, 0)
        required = self.required[index]
        if required is not NO_STATE and required == state:
            waiting -= 1
        return waiting > 0

    def _unlink(self, entry: int) -> None:
        prev, nxt = self.prev[entry], self.next[entry]
        self.next[prev] = nxt
        if nxt != -1:
            self.prev[nxt] = prev

    def _relink(self, entry: int) -> None:
        prev, nxt = self.prev[entry], self.next[entry]
        self.next[prev] = entry
        if nxt != -1:
            self.prev[nxt] = entry

    def _lift(self, call: int) -> None:
        self._unlink(call)
        if self.return_entry[call]:
            self._unlink(self.return_entry[call])
        index = self.op_of[call]
        pool = self.pool_of[index]
        if pool >= 0:
            self.placed_in_pool[pool] += 1
        if self.required[index] is not NO_STATE:
            self.waiting[self.required[index]] -= 1

    def _unlift(self, call: int) -> None:
        if self.return_entry[call]:
            self._relink(self.return_entry[call])
        self._relink(call)
        index = self.op_of[call]
        pool = self.pool_of[index]
        if pool >= 0:
            self.placed_in_pool[pool] -= 1
        if self.required[index] is not NO_STATE:
            self.waiting[self.required[index]] += 1

    def run(self) -> str:
        """VERDICT_LINEARIZABLE, VERDICT_VIOLATION, or VERDICT_UNKNOWN when
        the state limit is reached.

        A state that can never come back is not left while operations that
        need it are unplaced. Reads are placed greedily: an operation that never changes the state
        and is legal now can be moved to the front of any valid completion
        (everything that must precede it already has), so when one is
        available the search places it without branching, and a dead end
        after it is a dead end for the configuration before it.
        """
        operations, step, is_call, op_of = self.operations, self.model.step, self.is_call, self.op_of
        greedy = [self.model.never_changes_state(op) for op in operations]
        next_entry, return_entry, lift = self.next, self.return_entry, self._lift
        pool_of, rank_in_pool, placed_in_pool = self.pool_of, self.rank_in_pool, self.placed_in_pool
        strands_waiters = self._strands_waiters
        remaining = sum(1 for op in operations if op.outcome == OUTCOME_OK)
        state: Hashable = self.model.initial()
        linearized = 0
        seen = self.seen
        stack: list[tuple[int, Hashable, int]] = []
        entry = next_entry[0]
        while remaining:
            if is_call[entry]:
                index = op_of[entry]
                pool = pool_of[index]
                if pool >= 0 and rank_in_pool[index] != placed_in_pool[pool]:
                    entry = next_entry[entry]
                    continue
                legal, after = step(state, operations[index])
                if not legal or strands_waiters(index, state, after):
                    entry = next_entry[entry]
                    continue
                candidate = (linearized | (1 << index), after)
                if candidate not in seen:
                    if len(seen) >= self.states_max:
                        return VERDICT_UNKNOWN
                    seen.add(candidate)
                    stack.append((entry, state, linearized))
                    linearized, state = candidate
                    lift(entry)
                    remaining -= return_entry[entry] != 0
                    if len(stack) > len(self.best_prefix):
                        self._remember_prefix(stack, state)
                    entry = next_entry[0]
                    continue
                if not greedy[index]:
                    entry = next_entry[entry]
                    continue
            if not stack:
                return VERDICT_VIOLATION
            entry, state, linearized, remaining = self._backtrack(stack, greedy, remaining)
            if entry == -1:
                return VERDICT_VIOLATION
        return VERDICT_LINEARIZABLE

    @property
    def states_explored(self) -> int:
        return len(self.seen)

    def _backtrack(
        self, stack: list[tuple[int, Hashable, int]], greedy: list[bool], remaining: int
    ) -> tuple[int, Hashable, int, int]:
        """Undo placements up to and including the latest branching one and
        return the entry to try next (-1 if none is left), with the state,
        linearized set and count of completed operations left to place."""
        while stack:
            entry, state, linearized = stack.pop()
            self._unlift(entry)
            remaining += self.return_entry[entry] != 0
            if not greedy[self.op_of[entry]]:
                return self.next[entry], state, linearized, remaining
        return -1, None, 0, remaining

    def _remember_prefix(self, stack: list[tuple[int, Hashable, int]], state: Hashable) -> None:
        self.best_prefix = [self.op_of[entry] for entry, _, _ in stack]
        self.best_state = state

    def explain(self, key: str, originals: Mapping[int, Operation]) -> Explanation:
        """Where the search stuck, naming the caller's original operations."""
        placed = set(self.best_prefix)
        unplaced = [op for index, op in enumerate(self.operations) if index not in placed]
        definite = [op for op in unplaced if op.outcome == OUTCOME_OK]
        culprit = min(definite, key=lambda op: op.return_bound_ns, default=None)
        concurrent: list[Operation] = []
        if culprit is not None:
            concurrent = [op for op in unplaced if op is not culprit and op.invoke_ns <= culprit.return_bound_ns]
            concurrent.sort(key=lambda op: op.invoke_ns)
        stranded: list[Operation] = []
        if not self.may_revisit(self.best_state):
            stranded = [op for op in unplaced if _requires(self.model.required_state(op), self.best_state)]
        return Explanation(
            key=key,
            model=self.model.name,
            prefix=tuple(originals[self.operations[index].op_id] for index in self.best_prefix),
            state_after_prefix=self.best_state,
            culprit=None if culprit is None else originals[culprit.op_id],
            concurrent=tuple(originals[op.op_id] for op in concurrent[:EXPLANATION_OPERATIONS_MAX]),
            stranded=tuple(originals[op.op_id] for op in stranded[:EXPLANATION_OPERATIONS_MAX]),
        )


def _requires(required: Hashable, state: Hashable) -> bool:
    return required is not NO_STATE and required == state
