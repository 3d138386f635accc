"""What a keyed CRDT table promises a reader and a writer, one case at a time.

Method: KeyedTable values driven directly, two replicas where concurrency
matters (each writes, then they merge both ways); the scan's limits are
lowered with monkeypatch where a case needs many keys."""

from __future__ import annotations

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument
from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark
from tandemkv.server.available.crdt.keyed import KeyedTable, decode_state, encode_state
from tandemkv.server.available.crdt.kinds import AWLWWMap, ORSet, Origin, PNCounter, TableKind
from tandemkv.server.available.crdt import canonical


class Writer:
    """One replica's table and clock."""

    def __init__(self, replica: str, kind: TableKind) -> None:
        self.replica = replica
        self.table = KeyedTable(kind)
        self.clock = HybridClock(MemoryHighWaterMark())
        self.now_ms = 1_000

    def origin(self) -> Origin:
        self.now_ms += 1
        return Origin(self.replica, self.clock.now(self.now_ms))

    def mutate(self, key: bytes, operation: str, *args) -> KeyedTable:
        return self.table.mutate(self.origin(), key, operation, *args)

    def remove(self, key: bytes) -> KeyedTable:
        return self.table.remove(self.origin(), key)


def exchange(first: Writer, second: Writer) -> None:
    first_state, second_state = first.table.copy(), second.table.copy()
    first.table.merge(second_state)
    second.table.merge(first_state)


def test_each_key_holds_its_own_value_of_the_tables_kind():
    writer = Writer("r1", TableKind.AW_LWW_MAP)
    writer.mutate(b"profile:ann", "put", b"name", b"Ann")
    writer.mutate(b"profile:bob", "put", b"name", b"Bob")
    writer.mutate(b"profile:ann", "put", b"city", b"Oslo")
    assert writer.table.read(b"profile:ann") == {b"city": b"Oslo", b"name": b"Ann"}
    assert writer.table.read(b"profile:bob") == {b"name": b"Bob"}
    assert writer.table.read(b"profile:eve") is None


def test_a_write_returns_a_delta_of_just_that_key_which_brings_a_peer_up_to_date():
    source, target = Writer("r1", TableKind.OR_SET), Writer("r2", TableKind.OR_SET)
    for number in range(100):
        source.mutate(b"room:%d" % number, "add", b"ann")
    delta = source.mutate(b"room:7", "add", b"bob")
    assert [key for key, _ in delta.items_encoded()] == [b"room:7"]
    assert target.table.merge(delta)
    assert not target.table.merge(delta), "a delta merged twice changes nothing"
    assert target.table.read(b"room:7") == [b"bob"]
    assert len(target.table) == 1


def test_removing_a_key_loses_to_a_concurrent_add_and_wins_over_what_it_saw():
    first, second = Writer("r1", TableKind.OR_SET), Writer("r2", TableKind.OR_SET)
    first.mutate(b"room", "add", b"ann")
    exchange(first, second)
    first.remove(b"room")                 # saw ann
    second.mutate(b"room", "add", b"bob")  # concurrent with the removal
    exchange(first, second)
    assert first.table.read(b"room") == second.table.read(b"room") == [b"bob"]


def test_a_removed_key_reads_absent_everywhere_and_does_not_come_back_from_an_old_copy():
    first, second = Writer("r1", TableKind.AW_LWW_MAP), Writer("r2", TableKind.AW_LWW_MAP)
    first.mutate(b"user:1", "put", b"name", b"Ann")
    old_copy = first.table.copy()
    exchange(first, second)
    second.remove(b"user:1")
    exchange(first, second)
    first.table.merge(old_copy)
    assert first.table.read(b"user:1") is None and second.table.read(b"user:1") is None
    assert b"user:1" in first.table, "the removal's state stays, so an old copy cannot resurrect it"
    assert first.table.scan(b"user:").entries == []


def test_removing_an_lww_key_is_a_write_of_none_and_the_later_of_the_two_wins():
    first, second = Writer("r1", TableKind.LWW_REGISTER), Writer("r2", TableKind.LWW_REGISTER)
    first.mutate(b"k", "assign", b"old")
    exchange(first, second)
    second.remove(b"k")
    first.now_ms = second.now_ms + 100     # first's write is later than the removal
    first.mutate(b"k", "assign", b"new")
    exchange(first, second)
    assert first.table.read(b"k") == second.table.read(b"k") == b"new"
    second.now_ms = first.now_ms + 100
    second.remove(b"k")
    exchange(first, second)
    assert first.table.read(b"k") is None and second.table.read(b"k") is None


@pytest.mark.parametrize("kind", [TableKind.G_COUNTER, TableKind.PN_COUNTER])
def test_a_counter_key_cannot_be_removed_and_the_error_says_why(kind):
    writer = Writer("r1", kind)
    writer.mutate(b"hits", "increment", 3)
    with pytest.raises(FailedPrecondition, match="counter keeps every increment"):
        writer.remove(b"hits")
    assert writer.table.read(b"hits") == 3


def test_an_operation_the_kind_lacks_is_refused_naming_what_it_takes():
    writer = Writer("r1", TableKind.G_COUNTER)
    with pytest.raises(FailedPrecondition, match="it takes increment"):
        writer.mutate(b"hits", "decrement", 1)
    assert writer.table.is_empty()


def test_keys_past_the_size_limit_and_states_past_theirs_are_refused_before_anything_changes():
    writer = Writer("r1", TableKind.OR_SET)
    with pytest.raises(InvalidArgument) as too_long:
        writer.mutate(b"k" * (limits.KEYED_KEY_BYTES_MAX + 1), "add", b"x")
    assert too_long.value.limit == "KEYED_KEY_BYTES_MAX"
    writer.mutate(b"k" * limits.KEYED_KEY_BYTES_MAX, "add", b"x")
    member = b"m" * (limits.CRDT_VALUE_BYTES_MAX // 2)
    with pytest.raises(InvalidArgument) as too_big:
        for number in range(8):
            writer.mutate(b"big", "add", member + bytes([number]))
    assert too_big.value.limit == "KEYED_KEY_STATE_BYTES_MAX"
    assert len(writer.table.encoded(b"big")) <= limits.KEYED_KEY_STATE_BYTES_MAX


def test_scan_returns_present_keys_with_the_prefix_in_order_a_page_at_a_time():
    writer = Writer("r1", TableKind.PN_COUNTER)
    for number in (5, 1, 30, 2, 10, 4, 3):
        writer.mutate(b"user:%02d" % number, "increment", number)
    writer.mutate(b"userz", "increment", 1)
    writer.mutate(b"other", "increment", 1)
    pages, after = [], None
    while True:
        page = writer.table.scan(b"user:", after, limit=3)
        pages.append(page.entries)
        if page.resume_after is None:
            break
        after = page.resume_after
    keys = [key for entries in pages for key, _ in entries]
    assert keys == [b"user:01", b"user:02", b"user:03", b"user:04", b"user:05", b"user:10", b"user:30"]
    assert all(len(entries) <= 3 for entries in pages)
    assert dict(writer.table.scan(b"user:0").entries)[b"user:05"] == 5


def test_a_scan_over_many_removed_keys_stops_early_with_a_way_to_go_on(monkeypatch):
    monkeypatch.setattr(limits, "KEYED_SCAN_KEYS_EXAMINED_MAX", 10)
    writer = Writer("r1", TableKind.OR_SET)
    for number in range(25):
        writer.mutate(b"k%02d" % number, "add", b"x")
        if number < 24:
            writer.remove(b"k%02d" % number)
    page = writer.table.scan(b"k")
    assert page.entries == [] and page.resume_after == b"k09"
    seen, after = [], None
    for _ in range(10):
        page = writer.table.scan(b"k", after)
        seen += page.entries
        if page.resume_after is None:
            break
        after = page.resume_after
    assert seen == [(b"k24", [b"x"])]


def test_a_single_value_table_is_a_keyed_table_with_the_empty_key():
    single = PNCounter()
    single.merge(single.increment(Origin("r1", HybridClock(MemoryHighWaterMark()).now(1)), 7))
    keyed = KeyedTable.from_single(single)
    assert keyed.read(b"") == 7 and keyed.single() == single
    writer = Writer("r2", TableKind.PN_COUNTER)
    writer.table.merge(keyed)
    writer.mutate(b"", "decrement", 2)
    assert writer.table.single().value() == 5
    assert KeyedTable.from_single(ORSet()).is_empty()


def test_remote_key_states_must_be_canonical_states_of_the_kind():
    good = AWLWWMap()
    good.merge(good.put(Origin("r1", HybridClock(MemoryHighWaterMark()).now(1)), b"a", b"b"))
    data = encode_state(good)
    assert decode_state(TableKind.AW_LWW_MAP, data) == good
    with pytest.raises(canonical.DecodeError):
        decode_state(TableKind.OR_SET, data)
    with pytest.raises(canonical.DecodeError):
        decode_state(TableKind.AW_LWW_MAP, data + b"\x00")
