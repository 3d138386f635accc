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
