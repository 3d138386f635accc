"""The join laws of every CRDT type, with hypothesis.

Method: generate a history on three replicas (mutations at random replicas,
merges of one replica's state into another, LWW stamps from a hybrid clock
per replica fed small physical times so stamps collide across replicas),
collect every state and every delta it produced, and check on those:
merge is commutative, associative and idempotent; a delta carries its
mutation (for any state Y at or above the mutated one, Y ⊔ δ == Y ⊔ m(X));
`merge` reports a change exactly when the join differs; the encoding is
canonical and round-trips; equal states have equal digests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv.server.available.crdt.kinds import (AWLWWMap, Crdt, GCounter, LWWRegister, MVRegister,
                                            ORSet, Origin, PNCounter, decode_crdt, encode_crdt,
                                            state_digest)
from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark

REPLICAS = ("r0", "r1", "r2")
SMALL_BYTES = st.sampled_from([b"a", b"b", b"c"])

OPERATIONS: dict[type[Crdt], list[tuple[str, Any]]] = {
    GCounter: [("increment", st.tuples(st.integers(0, 5)))],
    PNCounter: [("increment", st.tuples(st.integers(-5, 5))),
                ("decrement", st.tuples(st.integers(0, 5)))],
    LWWRegister: [("assign", st.tuples(st.one_of(st.none(), SMALL_BYTES)))],
    MVRegister: [("assign", st.tuples(SMALL_BYTES)), ("clear", st.just(()))],
    ORSet: [("add", st.tuples(SMALL_BYTES)), ("remove", st.tuples(SMALL_BYTES)),
            ("clear", st.just(()))],
    AWLWWMap: [("put", st.tuples(SMALL_BYTES, SMALL_BYTES)), ("remove", st.tuples(SMALL_BYTES)),
               ("clear", st.just(()))],
}
TYPES = list(OPERATIONS)
LAW_SETTINGS = settings(max_examples=60, deadline=None,
                        suppress_health_check=[HealthCheck.too_slow])


def _step(crdt_type: type[Crdt]):
    mutation = st.tuples(st.just("mutate"), st.integers(0, 2), st.integers(0, 20),
                         st.one_of(*[st.tuples(st.just(name), args)
                                     for name, args in OPERATIONS[crdt_type]]))
    merge = st.tuples(st.just("merge"), st.integers(0, 2), st.integers(0, 2))
    return st.one_of(mutation, mutation, merge)


class History:
    """Replays steps on three replicas; keeps every state and delta."""

    def __init__(self, crdt_type: type[Crdt]) -> None:
        self.replicas = [crdt_type() for _ in REPLICAS]
        self.clocks = [HybridClock(MemoryHighWaterMark()) for _ in REPLICAS]
        self.states: list[Crdt] = [crdt_type()]
        self.mutations: list[tuple[Crdt, Crdt]] = []  # (state before, delta)

    def run(self, steps: list) -> "History":
        for step in steps:
            if step[0] == "mutate":
                self.mutate(*step[1:])
            else:
                self.merge(step[1], step[2])
            self.states.extend(replica.copy() for replica in self.replicas)
        return self

    def mutate(self, index: int, physical_ms: int, operation: tuple[str, tuple]) -> Crdt:
        name, args = operation
        before = self.replicas[index]
        origin = Origin(REPLICAS[index], self.clocks[index].now(physical_ms))
        delta = getattr(before, name)(origin, *args)
        self.mutations.append((before.copy(), delta))
        self.states.append(delta)
        before.merge(delta)
        return delta

    def merge(self, target: int, source: int) -> None:
        stamp = self.replicas[source].max_timestamp()
        if stamp is not None:
            self.clocks[target].observe(0, stamp)
        self.replicas[target].merge(self.replicas[source])


def _histories(crdt_type: type[Crdt]):
    return st.lists(_step(crdt_type), min_size=1, max_size=25).map(
        lambda steps: History(crdt_type).run(steps))


@pytest.mark.parametrize("crdt_type", TYPES, ids=lambda t: t.__name__)
@LAW_SETTINGS
@given(data=st.data())
def test_merge_is_commutative_associative_and_idempotent(crdt_type, data):
    history = data.draw(_histories(crdt_type))
    a, b, c = (data.draw(st.sampled_from(history.states)) for _ in range(3))
    assert a.join(b) == b.join(a)
    assert a.join(b).join(c) == a.join(b.join(c))
    assert a.join(a) == a
    assert a.join(b).join(b) == a.join(b)


@pytest.mark.parametrize("crdt_type", TYPES, ids=lambda t: t.__name__)
@LAW_SETTINGS
@given(data=st.data())
def test_a_delta_carries_its_whole_mutation_to_any_later_state(crdt_type, data):
    history = data.draw(_histories(crdt_type))
    if not history.mutations:
        return
    before, delta = data.draw(st.sampled_from(history.mutations))
    other = data.draw(st.sampled_from(history.states))
    mutated = before.join(delta)
    later = before.join(other)
    assert later.join(delta) == later.join(mutated)
    assert before.join(delta) == mutated
    assert delta.join(before) == mutated


@pytest.mark.parametrize("crdt_type", TYPES, ids=lambda t: t.__name__)
@LAW_SETTINGS
@given(data=st.data())
def test_merge_reports_a_change_exactly_when_the_state_changes(crdt_type, data):
    history = data.draw(_histories(crdt_type))
    a, b = (data.draw(st.sampled_from(history.states)) for _ in range(2))
    target = a.copy()
    changed = target.merge(b)
    assert changed == (target != a)
    assert target == a.join(b)


@pytest.mark.parametrize("crdt_type", TYPES, ids=lambda t: t.__name__)
@LAW_SETTINGS
@given(data=st.data())
def test_encoding_round_trips_and_equal_states_have_equal_digests(crdt_type, data):
    history = data.draw(_histories(crdt_type))
    a, b = (data.draw(st.sampled_from(history.states)) for _ in range(2))
    encoded = encode_crdt(a)
    decoded = decode_crdt(encoded, crdt_type.kind)
    assert decoded == a and encode_crdt(decoded) == encoded
    # Joins reached in different orders are equal and so encode alike.
    assert encode_crdt(a.join(b)) == encode_crdt(b.join(a))
    assert (state_digest(encode_crdt(a)) == state_digest(encode_crdt(b))) == (a == b)
