"""Checks on the fencing tokens of registry names and locks.

This module owns two checks the claim model leaves out (its state holds
no tokens, since an unknown claim's token is never seen):
- order: a granted claim's token is greater than the token of every
  granted claim of the same name that returned before it was invoked
  (tokens are the Raft index of the grant, so they strictly increase in
  the order grants linearize). A lease granted its own claim back may
  answer the same token again.
- identity: the answers that name a holder (a granted claim, a refusal
  naming the holder, a read) give one token one owner and, where each
  owner makes one claim only (registry values are unique per attempt; a
  lock's owner is its lease, which may claim again), one owner one token.
It is pure: operations in, violations (strings) out.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Iterable

from .history import OUTCOME_OK, Operation
from .models import CLAIM_GRANTED, CLAIM_TAKEN


def check_claim_tokens(operations: Iterable[Operation], *, one_claim_per_owner: bool) -> list[str]:
    """Violations of the order and identity of fencing tokens, per name."""
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for operation in operations:
        if operation.outcome == OUTCOME_OK:
            by_key[operation.key].append(operation)
    violations: list[str] = []
    for key in sorted(by_key):
        violations += _token_order(by_key[key]) + _token_identity(by_key[key], one_claim_per_owner)
    return violations


def _grants(operations: list[Operation]) -> list[Operation]:
    return [op for op in operations if op.kind == "claim" and op.output[0] == CLAIM_GRANTED]


def _token_order(operations: list[Operation]) -> list[str]:
    """Each grant against the grants that returned before its invoke: the
    largest earlier token must be below its own (or equal under one lease)."""
    grants = sorted(_grants(operations), key=lambda op: op.return_ns)
    returns = [op.return_ns for op in grants]
    # best[i]: the grant with the largest token among grants[:i + 1].
    best: list[Operation] = []
    for op in grants:
        best.append(op if not best or op.output[1] > best[-1].output[1] else best[-1])
    violations = []
    for op in grants:
        earlier = bisect.bisect_left(returns, op.invoke_ns)
        if earlier == 0:
            continue
        top = best[earlier - 1]
        same_claim = top.output[1] == op.output[1] and top.input[1] == op.input[1]
        if top.output[1] >= op.output[1] and not same_claim:
            violations.append(f"{op.key}: token {op.output[1]} granted after token {top.output[1]} "
                              f"had been: {top.describe()} then {op.describe()}")
    return violations


def _token_identity(operations: list[Operation], one_claim_per_owner: bool) -> list[str]:
    """One token, one owner; and one owner, one token if owners claim once."""
    token_of: dict[object, tuple[int, Operation]] = {}
    owner_of: dict[int, tuple[object, Operation]] = {}
    violations = []
    for op in operations:
        for owner, token in _named_holders(op):
            seen = token_of.setdefault(owner, (token, op))
            if one_claim_per_owner and seen[0] != token:
                violations.append(f"{op.key}: owner {owner!r} has tokens {seen[0]} and {token}: "
                                  f"{seen[1].describe()} and {op.describe()}")
            named = owner_of.setdefault(token, (owner, op))
            if named[0] != owner:
                violations.append(f"{op.key}: token {token} belongs to {named[0]!r} and {owner!r}: "
                                  f"{named[1].describe()} and {op.describe()}")
    return violations


def _named_holders(op: Operation) -> list[tuple[object, int]]:
    """(owner, token) pairs an ok operation's answer proves."""
    if op.kind == "read" and op.output is not None:
        return [(op.output[0], op.output[2])]
    if op.kind == "claim" and op.output[0] == CLAIM_TAKEN:
        return [(op.output[1], op.output[2])]
    if op.kind == "claim":
        return [(op.input[0], op.output[1])]
    return []
