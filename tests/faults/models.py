"""Sequential specifications the linearizability checker tests against.

This module owns the small, pure models of one key: a register, a counter
and a grow-only set. A model says what state a key starts in and whether an
operation, applied to a state, could have produced the output the client
saw. Model states are hashable so the search can memoise them. Models know
nothing about time, concurrency or how operations were recorded.

Unknown outcomes: an operation whose outcome is unknown has no observed
output, so `step` accepts any output for it and returns the state it would
leave behind had it taken effect.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence

from .history import OUTCOME_OK, OUTCOME_UNKNOWN, Operation


class _NoState:
    def __repr__(self) -> str:
        return "<no state>"


# What `required_state` returns for an operation legal in more than one state.
NO_STATE = _NoState()


class Model:
    """The interface every model implements."""

    name = "model"
    kinds: frozenset[str] = frozenset()
    # Kinds that never change the state (an unknown one constrains nothing).
    read_only_kinds: frozenset[str] = frozenset()

    def initial(self) -> Hashable:
        raise NotImplementedError

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]:
        """Whether `operation` is legal from `state`, and the state after it."""
        raise NotImplementedError

    def never_changes_state(self, operation: Operation) -> bool:
        """Whether the operation leaves every state as it found it (the
        search may place such operations greedily)."""
        return operation.kind in self.read_only_kinds

    def required_state(self, operation: Operation) -> Hashable:
        """The one state the operation is legal in (a completed read proves
        the value it returned), or NO_STATE."""
        return NO_STATE

    def may_revisit(self, operations: Sequence[Operation]) -> Callable[[Hashable], bool]:
        """A predicate: could a key running these operations return to a
        state after leaving it? Where it cannot, the search refuses to
        leave a state while operations that require it are unplaced."""
        return lambda state: True

    def validate(self, operation: Operation) -> None:
        """Raise ValueError if the operation is not one this model knows."""
        if operation.kind not in self.kinds:
            raise ValueError(f"{self.name} model has no {operation.kind!r} operation: {operation.describe()}")


class RegisterModel(Model):
    """A register holding one value, None at first.

    - read: output is the value held.
    - write: input is the new value (None deletes).
    - cas: input is (expected, new); output is True if the value held was
      `expected` and is now `new`, False if nothing changed.
    """

    name = "register"
    kinds = frozenset({"read", "write", "cas"})
    read_only_kinds = frozenset({"read"})

    def initial(self) -> Hashable:
        return None

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]:
        kind = operation.kind
        if kind == "read":
            return operation.outcome == OUTCOME_UNKNOWN or operation.output == state, state
        if kind == "write":
            return True, operation.input
        expected, new = operation.input
        if operation.outcome == OUTCOME_UNKNOWN:
            # Linearizing a swap that failed is the same as not applying it,
            # so only the successful case needs exploring.
            return state == expected, new
        if operation.output:
            return state == expected, new
        return state != expected, state

    def required_state(self, operation: Operation) -> Hashable:
        if operation.outcome != OUTCOME_OK:
            return NO_STATE
        if operation.kind == "read":
            return operation.output
        if operation.kind == "cas" and operation.output:
            return operation.input[0]
        return NO_STATE

    def may_revisit(self, operations: Sequence[Operation]) -> Callable[[Hashable], bool]:
        writes: dict[Hashable, int] = {None: 1}
        for operation in operations:
            if operation.kind != "read":
                value = operation.input if operation.kind == "write" else operation.input[1]
                writes[value] = writes.get(value, 0) + 1
        return lambda state: writes.get(state, 0) > 1

    def never_changes_state(self, operation: Operation) -> bool:
        failed_swap = operation.kind == "cas" and operation.outcome != OUTCOME_UNKNOWN and not operation.output
        return failed_swap or super().never_changes_state(operation)

    def validate(self, operation: Operation) -> None:
        super().validate(operation)
        if operation.kind == "cas" and not (isinstance(operation.input, tuple) and len(operation.input) == 2):
            raise ValueError(f"cas input must be (expected, new): {operation.describe()}")


class CounterModel(Model):
    """An integer counter starting at 0.

    - incr: input is the delta; output, if not None, is the value after it.
    - read: output is the current value.
    """

    name = "counter"
    kinds = frozenset({"incr", "read"})
    read_only_kinds = frozenset({"read"})

    def initial(self) -> Hashable:
        return 0

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]:
        assert isinstance(state, int)
        if operation.kind == "read":
            return operation.outcome == OUTCOME_UNKNOWN or operation.output == state, state
        after = state + operation.input
        if operation.outcome == OUTCOME_UNKNOWN or operation.output is None:
            return True, after
        return operation.output == after, after

    def required_state(self, operation: Operation) -> Hashable:
        if operation.outcome != OUTCOME_OK:
            return NO_STATE
        if operation.kind == "read":
            return operation.output
        return NO_STATE if operation.output is None else operation.output - operation.input

    def may_revisit(self, operations: Sequence[Operation]) -> Callable[[Hashable], bool]:
        decreases = any(operation.kind == "incr" and operation.input < 0 for operation in operations)
        return lambda state: decreases

    def validate(self, operation: Operation) -> None:
        super().validate(operation)
        if operation.kind == "incr" and not isinstance(operation.input, int):
            raise ValueError(f"incr input must be an integer delta: {operation.describe()}")


class GrowOnlySetModel(Model):
    """A set that only grows, empty at first.

    - add: input is the element.
    - read: output is every element (any collection; compared as a set).
    """

    name = "grow-only set"
    kinds = frozenset({"add", "read"})
    read_only_kinds = frozenset({"read"})

    def initial(self) -> Hashable:
        return frozenset()

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]:
        assert isinstance(state, frozenset)
        if operation.kind == "add":
            return True, state | {operation.input}
        if operation.outcome == OUTCOME_UNKNOWN:
            return True, state
        return _as_frozenset(operation.output) == state, state

    def required_state(self, operation: Operation) -> Hashable:
        if operation.kind == "read" and operation.outcome == OUTCOME_OK:
            return _as_frozenset(operation.output)
        return NO_STATE

    def may_revisit(self, operations: Sequence[Operation]) -> Callable[[Hashable], bool]:
        return lambda state: False


def _as_frozenset(value: Any) -> frozenset[Any]:
    return value if isinstance(value, frozenset) else frozenset(value or ())


REGISTER = RegisterModel()
COUNTER = CounterModel()
GROW_ONLY_SET = GrowOnlySetModel()


# What a claim answers when the name is held by someone else.
CLAIM_GRANTED = "granted"
CLAIM_TAKEN = "taken"


class ClaimModel(Model):
    """A name held by at most one owner at a time: a registry name or a
    lock, claimed under a lease (the lease never expires during a run).
    The state is None (free) or (owner, lease); an owner is the registered
    value (registry, unique per attempt) or the lease id itself (lock).

    - claim: input (owner, lease); output (CLAIM_GRANTED, token) or
      (CLAIM_TAKEN, holder owner, holder token). Free: granted, the name
      becomes (owner, lease). Held under the same lease: granted, nothing
      changes (the server hands the lease its claim back). Held under
      another lease: taken, and the holder must be the one answered.
    - release: input (owner, lease, token), the claim the client holds;
      output whether it was released. True exactly when (owner, lease)
      holds the name; then it is free.
    - read: output None or (owner, lease, token) of the holder.

    Tokens are not part of the state (an unknown claim's token is never
    seen); `tokens.check_claim_tokens` checks them. The model assumes a
    client releases only the claim its lease holds now, which the
    workloads guarantee by taking a new lease after any unknown outcome.
    """

    name = "claim"
    kinds = frozenset({"claim", "release", "read"})
    read_only_kinds = frozenset({"read"})

    def initial(self) -> Hashable:
        return None

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]:
        kind, unknown = operation.kind, operation.outcome == OUTCOME_UNKNOWN
        if kind == "read":
            return unknown or _holder(operation.output) == state, state
        if kind == "claim":
            return self._claim(state, operation, unknown)
        owner, lease, _ = operation.input
        holds = state == (owner, lease)
        if unknown:
            # A release that did nothing is the same as not applying it.
            return holds, None
        return holds == bool(operation.output), None if holds else state

    @staticmethod
    def _claim(state: Hashable, operation: Operation, unknown: bool) -> tuple[bool, Hashable]:
        owner, lease = operation.input
        if state is None:
            return unknown or operation.output[0] == CLAIM_GRANTED, (owner, lease)
        if state[1] == lease:
            return unknown or operation.output[0] == CLAIM_GRANTED, state
        if unknown:
            # Refused: the same as not applying it.
            return True, state
        return operation.output[0] == CLAIM_TAKEN and operation.output[1] == state[0], state

    def never_changes_state(self, operation: Operation) -> bool:
        refused = operation.kind == "claim" and operation.outcome == OUTCOME_OK \
            and operation.output[0] == CLAIM_TAKEN
        unreleased = operation.kind == "release" and operation.outcome == OUTCOME_OK and not operation.output
        return refused or unreleased or super().never_changes_state(operation)

    def required_state(self, operation: Operation) -> Hashable:
        if operation.outcome != OUTCOME_OK:
            return NO_STATE
        if operation.kind == "read":
            return _holder(operation.output)
        if operation.kind == "release" and operation.output:
            return tuple(operation.input[:2])
        return NO_STATE

    def may_revisit(self, operations: Sequence[Operation]) -> Callable[[Hashable], bool]:
        claims: dict[Hashable, int] = {None: 2}
        for operation in operations:
            if operation.kind == "claim":
                holder = tuple(operation.input)
                claims[holder] = claims.get(holder, 0) + 1
        return lambda state: claims.get(state, 0) > 1

    def validate(self, operation: Operation) -> None:
        super().validate(operation)
        sizes = {"claim": 2, "release": 3}
        size = sizes.get(operation.kind)
        if size is not None and not (isinstance(operation.input, tuple) and len(operation.input) == size):
            raise ValueError(f"{operation.kind} input must be a {size}-tuple: {operation.describe()}")
        if operation.kind == "claim" and operation.outcome == OUTCOME_OK:
            if not (isinstance(operation.output, tuple) and operation.output[0] in (CLAIM_GRANTED, CLAIM_TAKEN)):
                raise ValueError(f"claim output must be (granted, token) or (taken, owner, token): "
                                 f"{operation.describe()}")


def _holder(output: Any) -> Hashable:
    """The (owner, lease) a read answered, or None (free)."""
    return None if output is None else (output[0], output[1])


CLAIM = ClaimModel()
