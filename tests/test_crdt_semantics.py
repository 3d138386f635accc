"""What each CRDT type means to a reader, checked against models.

Method: table-style cases for the rules a user relies on (add wins over a
concurrent remove, LWW order and ties, concurrent MV values, counters), a
sequential model check with hypothesis (one replica against a plain Python
int/set/dict), and a concurrent model check: replicas add, remove, put and
merge at random, while the test tracks, independently of the CRDT code,
which add events each replica has observed; an element must be present at
the end exactly when some add of it was observed by no later remove or add
of it (no acknowledged add lost, nothing removed returns unless re-added)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv.errors import InvalidArgument, OutOfRange
from tandemkv.server.available.crdt.kinds import (AWLWWMap, GCounter, LWWRegister, MVRegister, ORSet,
                                            Origin, PNCounter, decode_crdt, encode_crdt)
from tandemkv.server.available.crdt.canonical import DecodeError
from tandemkv.server.available.crdt.hlc import Hlc

MODEL_SETTINGS = settings(max_examples=80, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


def at(replica: str, wall_ms: int, logical: int = 0) -> Origin:
    return Origin(replica, Hlc(wall_ms, logical))


def mutated(state, operation: str, origin: Origin, *args):
    state.merge(getattr(state, operation)(origin, *args))
    return state


def test_an_add_concurrent_with_a_remove_wins():
    base = mutated(ORSet(), "add", at("a", 1), b"x")
    remover, adder = base.copy(), base.copy()
    mutated(remover, "remove", at("a", 2), b"x")
    mutated(adder, "add", at("b", 2), b"x")
    assert b"x" in remover.join(adder) and b"x" in adder.join(remover)


def test_a_removed_element_stays_removed_when_old_states_arrive():
    old = mutated(ORSet(), "add", at("a", 1), b"x")
    removed = mutated(old.copy(), "remove", at("b", 2), b"x")
    assert removed.join(old).value() == [] and old.join(removed).value() == []


def test_removes_leave_no_tombstones_once_the_version_vector_covers_them():
    state = ORSet()
    for round_number in range(50):
        mutated(state, "add", at("a", round_number), b"e%d" % round_number)
        mutated(state, "remove", at("a", round_number), b"e%d" % round_number)
    assert state.value() == []
    assert state.to_plain() == [{}, [{"a": 50}, []]]
    table = AWLWWMap()
    for round_number in range(50):
        mutated(table, "put", at("a", round_number), b"k", b"v%d" % round_number)
    assert table.to_plain()[0] == {b"k": [[["a", 50], [49, 0], b"v49"]]}


def test_a_map_put_concurrent_with_a_remove_wins_and_concurrent_puts_resolve_by_timestamp():
    base = mutated(AWLWWMap(), "put", at("a", 1), b"k", b"v1")
    left, right = base.copy(), base.copy()
    mutated(left, "remove", at("a", 5), b"k")
    mutated(right, "put", at("b", 3), b"k", b"v2")
    assert left.join(right).get(b"k") == b"v2"
    later = mutated(base.copy(), "put", at("c", 9), b"k", b"v3")
    assert right.join(later).get(b"k") == b"v3" == later.join(right).get(b"k")


def test_lww_orders_by_timestamp_then_replica_and_a_none_clears():
    first = LWWRegister().assign(at("a", 5), b"old")
    second = LWWRegister().assign(at("b", 6), b"new")
    assert first.join(second).value() == b"new" == second.join(first).value()
    tie_low = LWWRegister().assign(at("a", 7), b"from-a")
    tie_high = LWWRegister().assign(at("b", 7), b"from-b")
    assert tie_low.join(tie_high).value() == b"from-b"
    cleared = second.join(LWWRegister().assign(at("a", 8), None))
    assert cleared.value() is None and cleared.max_timestamp() == Hlc(8, 0)


def test_mv_register_keeps_concurrent_values_until_a_write_sees_them():
    left = mutated(MVRegister(), "assign", at("a", 1), b"x")
    right = mutated(MVRegister(), "assign", at("b", 1), b"y")
    both = left.join(right)
    assert both.value() == [b"x", b"y"]
    assert mutated(both.copy(), "assign", at("a", 2), b"z").value() == [b"z"]
    assert mutated(both.copy(), "clear", at("b", 2)).value() == []


def test_counters_sum_per_replica_entries_and_reject_bad_increments():
    counter = GCounter()
    mutated(counter, "increment", at("a", 0), 3)
    assert counter.join(GCounter().increment(at("b", 0), 4)).value() == 7
    with pytest.raises(InvalidArgument):
        counter.increment(at("a", 0), -1)
    assert counter.increment(at("a", 0), 0).is_empty()
    pn = mutated(PNCounter(), "increment", at("a", 0), 10)
    mutated(pn, "decrement", at("b", 0), 4)
    assert pn.value() == 6
    with pytest.raises(OutOfRange):
        pn.increment(at("a", 0), 2**63 - 5)


def test_oversized_values_are_rejected_with_the_limit_name():
    with pytest.raises(InvalidArgument) as raised:
        ORSet().add(at("a", 0), b"x" * (32 * 1024 + 1))
    assert raised.value.limit == "CRDT_VALUE_BYTES_MAX"


@pytest.mark.parametrize("data", [
    b"",
    b"\x06\x03\x03\x02\x05\x06or_set\x06\x00",  # wrong state shape
    b"\x06\x03\x03\x04\x05\x06or_set\x06\x02\x07\x00\x06\x02\x07\x00\x06\x00",  # version 2
    encode_crdt(GCounter({"a": 1})) + b"\x00",  # trailing byte
])
def test_decoding_rejects_malformed_and_unknown_encodings(data):
    with pytest.raises(DecodeError):
        decode_crdt(data)


def test_decoding_rejects_a_state_of_another_kind_and_a_non_compact_context():
    with pytest.raises(DecodeError):
        decode_crdt(encode_crdt(GCounter({"a": 1})), ORSet.kind)
    from tandemkv.server.available.crdt import canonical

    loose = canonical.encode([1, "or_set", [{}, [{}, [["a", 1]]]]])
    with pytest.raises(DecodeError):
        decode_crdt(loose)


ELEMENTS = st.sampled_from([b"a", b"b", b"c", b"d"])
SET_OPS = st.lists(st.tuples(st.sampled_from(["add", "remove", "clear"]), ELEMENTS), max_size=30)
MAP_OPS = st.lists(st.tuples(st.sampled_from(["put", "remove", "clear"]), ELEMENTS, ELEMENTS),
                   max_size=30)


@MODEL_SETTINGS
@given(SET_OPS)
def test_one_replica_of_an_or_set_behaves_like_a_python_set(operations):
    state, model = ORSet(), set()
    for step, (name, element) in enumerate(operations):
        args = () if name == "clear" else (element,)
        mutated(state, name, at("a", step), *args)
        if name == "add":
            model.add(element)
        elif name == "remove":
            model.discard(element)
        else:
            model.clear()
        assert state.value() == sorted(model)


@MODEL_SETTINGS
@given(MAP_OPS)
def test_one_replica_of_a_map_behaves_like_a_python_dict(operations):
    state, model = AWLWWMap(), {}
    for step, (name, key, value) in enumerate(operations):
        args = {"put": (key, value), "remove": (key,), "clear": ()}[name]
        mutated(state, name, at("a", step), *args)
        if name == "put":
            model[key] = value
        elif name == "remove":
            model.pop(key, None)
        else:
            model.clear()
        assert state.value() == model


@MODEL_SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-9, 9)), max_size=30))
def test_counters_on_several_replicas_sum_every_increment(increments):
    replicas = [PNCounter() for _ in range(3)]
    for step, (index, amount) in enumerate(increments):
        mutated(replicas[index], "increment", at(f"r{index}", step), amount)
        replicas[(index + 1) % 3].merge(replicas[index])
    total = replicas[0].join(replicas[1]).join(replicas[2])
    assert total.value() == sum(amount for _, amount in increments)


class ObservedRemoveModel:
    """Add events per element and what each replica has observed, kept
    without the CRDT code: an op on an element at a replica covers every
    add event of that element the replica has observed."""

    def __init__(self, replicas: int) -> None:
        self.seen: list[set[int]] = [set() for _ in range(replicas)]
        self.adds: dict[int, tuple[bytes, tuple, bytes]] = {}  # event -> (element, order, value)
        self.covered: set[int] = set()

    def add(self, replica: int, event: int, element: bytes, order: tuple, value: bytes) -> None:
        self.remove(replica, element)
        self.adds[event] = (element, order, value)
        self.seen[replica].add(event)

    def remove(self, replica: int, element: bytes | None) -> None:
        for event in self.seen[replica]:
            if element is None or self.adds[event][0] == element:
                self.covered.add(event)

    def merge(self, target: int, source: int) -> None:
        self.seen[target] |= self.seen[source]

    def expected(self) -> dict[bytes, bytes]:
        """Element -> winning value among add events nothing covered."""
        winners: dict[bytes, tuple[tuple, bytes]] = {}
        for event, (element, order, value) in self.adds.items():
            if event not in self.covered and (element not in winners or order > winners[element][0]):
                winners[element] = (order, value)
        return {element: value for element, (_, value) in winners.items()}


CONCURRENT_STEPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 2), ELEMENTS, ELEMENTS),
    st.tuples(st.just("remove"), st.integers(0, 2), ELEMENTS, ELEMENTS),
    st.tuples(st.just("clear"), st.integers(0, 2), ELEMENTS, ELEMENTS),
    st.tuples(st.just("merge"), st.integers(0, 2), st.integers(0, 2), st.just(b""))),
    max_size=40)


def _run_concurrent(crdt_type, steps):
    """Runs steps on three replicas of an ORSet or AWLWWMap and the model;
    a covering op only covers events, so the model's `covered` is global
    (a remove is never undone) while the states travel by merges."""
    replicas = [crdt_type() for _ in range(3)]
    model = ObservedRemoveModel(3)
    for event, (name, index, first, second) in enumerate(steps):
        origin = at(f"r{index}", event)
        if name == "merge":
            replicas[index].merge(replicas[first])
            model.merge(index, first)
        elif name == "add":
            args = (first,) if crdt_type is ORSet else (first, second)
            mutated(replicas[index], "add" if crdt_type is ORSet else "put", origin, *args)
            model.add(index, event, first, (origin.stamp, origin.replica, second), second)
        elif name == "remove":
            mutated(replicas[index], "remove", origin, first)
            model.remove(index, first)
        else:
            mutated(replicas[index], "clear", origin)
            model.remove(index, None)
    return replicas[0].join(replicas[1]).join(replicas[2]), model.expected()


@MODEL_SETTINGS
@given(CONCURRENT_STEPS)
def test_or_set_keeps_every_add_no_remove_saw_and_nothing_else(steps):
    final, expected = _run_concurrent(ORSet, steps)
    assert final.value() == sorted(expected)


@MODEL_SETTINGS
@given(CONCURRENT_STEPS)
def test_map_keeps_every_put_no_remove_saw_and_reads_the_latest(steps):
    final, expected = _run_concurrent(AWLWWMap, steps)
    assert final.value() == expected
