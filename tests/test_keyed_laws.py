"""The join laws of keyed CRDT tables, with hypothesis, for every kind.

Method: as tests/test_crdt_laws.py, over keyed tables: a history on three
replicas of writes to a few keys (b"", b"a", b"ab", b"b": the empty key and
shared prefixes), key removals, whole-table merges and merges of a random
subset of one replica's keys (what anti-entropy ships, bucket by bucket);
every state and every delta it produced is collected. Checked on those:
merge is commutative, associative and idempotent; a delta carries its
whole write to any later state; `merge` reports a change exactly when the
join differs; merging any split of a state's keys, in any order, is
merging the state; the bucket digests of equal tables are equal, and
follow every change; the plain tree round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark
from tandemkv.server.available.crdt.keyed import KEY_REMOVAL, KeyedTable
from tandemkv.server.available.crdt.kinds import Origin, TableKind
from tandemkv.server.available.gossip.keyed_digest import BucketDigests

REPLICAS = ("r0", "r1", "r2")
KEYS = st.sampled_from([b"", b"a", b"ab", b"b"])
SMALL_BYTES = st.sampled_from([b"x", b"y", b"z"])

OPERATIONS: dict[TableKind, list[tuple[str, Any]]] = {
    TableKind.G_COUNTER: [("increment", st.tuples(st.integers(0, 5)))],
    TableKind.PN_COUNTER: [("increment", st.tuples(st.integers(-5, 5))),
                           ("decrement", st.tuples(st.integers(0, 5)))],
    TableKind.LWW_REGISTER: [("assign", st.tuples(st.one_of(st.none(), SMALL_BYTES)))],
    TableKind.MV_REGISTER: [("assign", st.tuples(SMALL_BYTES)), ("clear", st.just(()))],
    TableKind.OR_SET: [("add", st.tuples(SMALL_BYTES)), ("remove", st.tuples(SMALL_BYTES))],
    TableKind.AW_LWW_MAP: [("put", st.tuples(SMALL_BYTES, SMALL_BYTES)),
                           ("remove", st.tuples(SMALL_BYTES))],
}
KINDS = list(OPERATIONS)
LAW_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _step(kind: TableKind):
    write = st.tuples(st.just("write"), st.integers(0, 2), st.integers(0, 20), KEYS,
                      st.one_of(*[st.tuples(st.just(name), args) for name, args in OPERATIONS[kind]]))
    steps = [write, write, st.tuples(st.just("merge"), st.integers(0, 2), st.integers(0, 2)),
             st.tuples(st.just("partial"), st.integers(0, 2), st.integers(0, 2),
                       st.lists(KEYS, max_size=3))]
    if kind in KEY_REMOVAL:
        steps.append(st.tuples(st.just("remove"), st.integers(0, 2), st.integers(0, 20), KEYS))
    return st.one_of(*steps)


def _subset(table: KeyedTable, keys: list[bytes]) -> KeyedTable:
    part = KeyedTable(table.kind)
    for key in keys:
        data = table.encoded(key)
        if data is not None:
            part.merge_encoded(key, data)
    return part


class History:
    def __init__(self, kind: TableKind) -> None:
        self.kind = kind
        self.replicas = [KeyedTable(kind) for _ in REPLICAS]
        self.clocks = [HybridClock(MemoryHighWaterMark()) for _ in REPLICAS]
        self.states: list[KeyedTable] = [KeyedTable(kind)]
        self.writes: list[tuple[KeyedTable, KeyedTable]] = []  # (state before, delta)

    def run(self, steps: list) -> "History":
        for step in steps:
            getattr(self, step[0])(*step[1:])
            self.states.extend(replica.copy() for replica in self.replicas)
        return self

    def _origin(self, index: int, physical_ms: int) -> Origin:
        return Origin(REPLICAS[index], self.clocks[index].now(physical_ms))

    def write(self, index: int, physical_ms: int, key: bytes, operation: tuple[str, tuple]) -> None:
        before = self.replicas[index].copy()
        delta = self.replicas[index].mutate(self._origin(index, physical_ms), key, operation[0], *operation[1])
        self.writes.append((before, delta))
        self.states.append(delta)

    def remove(self, index: int, physical_ms: int, key: bytes) -> None:
        before = self.replicas[index].copy()
        delta = self.replicas[index].remove(self._origin(index, physical_ms), key)
        self.writes.append((before, delta))
        self.states.append(delta)

    def _observe(self, target: int, source: KeyedTable) -> None:
        stamps = [state.max_timestamp() for key in (b"", b"a", b"ab", b"b")
                  if (state := source.state(key)) is not None]
        stamps = [stamp for stamp in stamps if stamp is not None]
        if stamps:
            self.clocks[target].observe(0, max(stamps))

    def merge(self, target: int, source: int) -> None:
        self._observe(target, self.replicas[source])
        self.replicas[target].merge(self.replicas[source])

    def partial(self, target: int, source: int, keys: list[bytes]) -> None:
        part = _subset(self.replicas[source], keys)
        self._observe(target, part)
        self.replicas[target].merge(part)


def _histories(kind: TableKind):
    return st.lists(_step(kind), min_size=1, max_size=25).map(lambda steps: History(kind).run(steps))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
@LAW_SETTINGS
@given(data=st.data())
def test_keyed_merge_is_commutative_associative_and_idempotent(kind, data):
    history = data.draw(_histories(kind))
    a, b, c = (data.draw(st.sampled_from(history.states)) for _ in range(3))
    assert a.join(b) == b.join(a)
    assert a.join(b).join(c) == a.join(b.join(c))
    assert a.join(a) == a
    assert a.join(b).join(b) == a.join(b)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
@LAW_SETTINGS
@given(data=st.data())
def test_a_keyed_delta_carries_its_whole_write_to_any_later_state(kind, data):
    history = data.draw(_histories(kind))
    if not history.writes:
        return
    before, delta = data.draw(st.sampled_from(history.writes))
    other = data.draw(st.sampled_from(history.states))
    written = before.join(delta)
    later = before.join(other)
    assert later.join(delta) == later.join(written)
    assert delta.join(before) == written
    assert len(delta) <= 1, "a write's delta holds the one key it wrote"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
@LAW_SETTINGS
@given(data=st.data())
def test_keyed_merge_reports_a_change_exactly_when_the_state_changes(kind, data):
    history = data.draw(_histories(kind))
    a, b = (data.draw(st.sampled_from(history.states)) for _ in range(2))
    target = a.copy()
    changed = target.merge(b)
    assert changed == (target != a)
    assert target == a.join(b)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
@LAW_SETTINGS
@given(data=st.data())
def test_merging_a_state_key_by_key_in_any_split_is_merging_it_whole(kind, data):
    history = data.draw(_histories(kind))
    a, b = (data.draw(st.sampled_from(history.states)) for _ in range(2))
    keys = [key for key, _ in b.items_encoded()]
    order = data.draw(st.permutations(keys))
    cut = data.draw(st.integers(0, len(order)))
    stepwise = a.copy()
    stepwise.merge(_subset(b, order[cut:]))
    stepwise.merge(_subset(b, order[:cut]))
    assert stepwise == a.join(b)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
@LAW_SETTINGS
@given(data=st.data())
def test_bucket_digests_follow_every_change_and_equal_tables_have_equal_roots(kind, data):
    history = data.draw(_histories(kind))
    a, b = (data.draw(st.sampled_from(history.states)) for _ in range(2))
    digests_a, digests_b = BucketDigests(), BucketDigests()
    tracked_a, tracked_b = KeyedTable(kind, digests_a.change), KeyedTable(kind, digests_b.change)
    tracked_a.merge(a)
    tracked_a.merge(b)
    tracked_b.merge(b)
    tracked_b.merge(a)
    fresh = BucketDigests()
    KeyedTable(kind, fresh.change).merge(a.join(b))
    assert digests_a.root() == digests_b.root() == fresh.root()
    assert (a == b) == (_root(a) == _root(b))


def _root(table: KeyedTable) -> int:
    digests = BucketDigests()
    KeyedTable(table.kind, digests.change).merge(table)
    return digests.root()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
@LAW_SETTINGS
@given(data=st.data())
def test_the_plain_tree_round_trips(kind, data):
    history = data.draw(_histories(kind))
    a = data.draw(st.sampled_from(history.states))
    assert KeyedTable.from_plain(kind, a.to_plain()) == a
