"""Seeded generators of histories whose correct verdict is known.

This module owns the synthetic workloads the checker's own tests use: each
key is a real sequential register, every operation takes effect at one
instant inside its (randomly long) call window, and outcomes are then
blurred the way a faulty network blurs them. The result is linearizable by
construction. Everything is drawn from the caller's `random.Random`, so a
seed replays a history exactly. It knows nothing about servers.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Hashable

from .history import OUTCOME_FAIL, OUTCOME_OK, OUTCOME_UNKNOWN, Operation


@dataclasses.dataclass(frozen=True)
class RegisterWorkload:
    """The shape of a synthetic register workload. Times are nanoseconds."""

    keys: int = 30
    operations_per_key: int = 200
    processes_per_key: int = 5
    read_fraction: float = 0.5
    cas_fraction: float = 0.1
    unknown_fraction: float = 0.05
    fail_fraction: float = 0.05
    call_ns_max: int = 1_000
    think_ns_max: int = 300
    # An unknown operation that takes effect may do so this long after its
    # invoke, well past the moment its client gave up.
    unknown_delay_ns_max: int = 20_000


@dataclasses.dataclass
class _Draft:
    process: int
    kind: str
    invoke_ns: int
    return_ns: int
    effect_ns: int
    outcome: str
    applies: bool
    input: Any = None
    output: Any = None


def generate_register_history(rng: random.Random, workload: RegisterWorkload) -> list[Operation]:
    """A linearizable register history over `workload.keys` keys."""
    operations: list[Operation] = []
    values = iter(range(1, 1 << 62))
    for key_index in range(workload.keys):
        drafts = _draft_calls(rng, workload)
        _apply_in_effect_order(rng, drafts, values)
        key = f"key-{key_index}"
        for draft in sorted(drafts, key=lambda d: d.invoke_ns):
            operations.append(_finish(len(operations), key, draft))
    return operations


def _draft_calls(rng: random.Random, workload: RegisterWorkload) -> list[_Draft]:
    clocks = [rng.randrange(workload.think_ns_max + 1) for _ in range(workload.processes_per_key)]
    drafts = []
    for _ in range(workload.operations_per_key):
        process = rng.randrange(workload.processes_per_key)
        invoke_ns = clocks[process] + rng.randrange(workload.think_ns_max + 1)
        return_ns = invoke_ns + rng.randrange(workload.call_ns_max + 1)
        clocks[process] = return_ns + 1
        kind = _draw_kind(rng, workload)
        outcome, applies, effect_ns = OUTCOME_OK, True, rng.randint(invoke_ns, return_ns)
        draw = rng.random()
        if draw < workload.unknown_fraction:
            outcome, applies = OUTCOME_UNKNOWN, rng.random() < 0.5
            effect_ns = invoke_ns + rng.randrange(workload.unknown_delay_ns_max + 1)
        elif draw < workload.unknown_fraction + workload.fail_fraction and kind != "read":
            outcome, applies = OUTCOME_FAIL, False
        drafts.append(_Draft(process, kind, invoke_ns, return_ns, effect_ns, outcome, applies))
    return drafts


def _draw_kind(rng: random.Random, workload: RegisterWorkload) -> str:
    draw = rng.random()
    if draw < workload.read_fraction:
        return "read"
    return "cas" if draw < workload.read_fraction + workload.cas_fraction else "write"


def _apply_in_effect_order(rng: random.Random, drafts: list[_Draft], values: Any) -> None:
    """Run the drafts against a real register in effect-time order, filling
    in inputs and outputs. Drafts that do not apply still get inputs."""
    state: Hashable = None
    written: list[Hashable] = [None]
    for draft in sorted(drafts, key=lambda d: d.effect_ns):
        if draft.kind == "write":
            draft.input = next(values)
        elif draft.kind == "cas":
            expected = state if rng.random() < 0.6 else rng.choice(written)
            draft.input = (expected, next(values))
        if not draft.applies:
            continue
        if draft.kind == "read":
            draft.output = state
        elif draft.kind == "write":
            state = draft.input
        else:
            draft.output = state == draft.input[0]
            state = draft.input[1] if draft.output else state
        written.append(state)


def _finish(op_id: int, key: str, draft: _Draft) -> Operation:
    output = draft.output if draft.outcome == OUTCOME_OK else None
    return Operation(
        op_id=op_id,
        process=draft.process,
        key=key,
        kind=draft.kind,
        input=draft.input,
        output=output,
        invoke_ns=draft.invoke_ns,
        return_ns=draft.return_ns,
        outcome=draft.outcome,
    )
