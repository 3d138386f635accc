"""The hybrid logical clock and the canonical encoding under the CRDTs.

Method: drive the clock with chosen physical times (steps back, restarts
over the same high-water mark, remote stamps near and beyond the drift
limit) and check that timestamps only rise; round-trip arbitrary trees
through the encoding with hypothesis and feed it non-canonical bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandemkv import limits
from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.hlc import (HLC_LOGICAL_MAX, ClockDriftExceeded, Hlc, HybridClock,
                                           MemoryHighWaterMark)


def test_timestamps_rise_even_when_the_physical_clock_steps_back():
    clock = HybridClock(MemoryHighWaterMark())
    stamps = [clock.now(ms) for ms in (1_000, 1_000, 400, 1_200, 1_199)]
    assert stamps == sorted(set(stamps))
    assert stamps[2] == Hlc(1_000, 2) and stamps[3] == Hlc(1_200, 0)


def test_a_restarted_clock_never_reuses_a_timestamp_even_with_time_stepped_back():
    high_water = MemoryHighWaterMark()
    first = HybridClock(high_water)
    issued = [first.now(ms) for ms in range(5_000, 25_000, 1_000)]
    restarted = HybridClock(high_water)
    after = restarted.now(3_000)
    assert after > max(issued)
    assert high_water.saves <= 4, "the high-water mark is written once per reservation window"


def test_observing_a_remote_stamp_makes_later_local_stamps_larger():
    clock = HybridClock(MemoryHighWaterMark())
    remote = Hlc(50_000, 7)
    observed = clock.observe(10_000, remote)
    assert observed > remote and clock.now(10_001) > observed


def test_a_remote_stamp_beyond_the_drift_limit_is_refused_and_leaves_the_clock_alone():
    clock = HybridClock(MemoryHighWaterMark())
    before = clock.now(1_000)
    clock.observe(1_000, Hlc(1_000 + limits.CLOCK_DRIFT_MS_MAX, 0))
    with pytest.raises(ClockDriftExceeded):
        clock.observe(1_000, Hlc(1_001 + limits.CLOCK_DRIFT_MS_MAX, 0))
    assert clock.last() == Hlc(1_000 + limits.CLOCK_DRIFT_MS_MAX, 1) and clock.last() > before


def test_the_logical_counter_carries_into_the_next_millisecond():
    clock = HybridClock(MemoryHighWaterMark())
    clock.observe(5, Hlc(5, HLC_LOGICAL_MAX))
    assert clock.now(5) == Hlc(6, 1)


TREES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(canonical.INT64_MIN, canonical.INT64_MAX),
              st.binary(max_size=8), st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.binary(max_size=4), st.text(max_size=4),
                                  st.integers(-5, 5)), children, max_size=4)),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(TREES)
def test_every_tree_round_trips_and_its_encoding_is_the_only_one(tree):
    encoded = canonical.encode(tree)
    assert canonical.decode(encoded) == tree
    assert canonical.encode(canonical.decode(encoded)) == encoded


def test_dict_order_does_not_change_the_encoding():
    assert canonical.encode({b"b": 1, b"a": 2}) == canonical.encode({b"a": 2, b"b": 1})


@pytest.mark.parametrize("data", [
    b"\x03\x80\x00",                 # non-minimal varint
    b"\x07\x02\x04\x01b\x00\x04\x01a\x00",  # map keys out of order
    b"\x07\x02\x04\x01a\x00\x04\x01a\x00",  # repeated map key
    b"\x04\x05ab",                   # truncated bytes
    b"\x05\x02\xff\xfe",             # invalid UTF-8
    b"\x09",                         # unknown tag
    b"\x06" + b"\x01\x06" * 40 + b"\x00",  # nesting too deep
    b"\x00\x00",                     # trailing byte
])
def test_non_canonical_or_malformed_bytes_are_rejected(data):
    with pytest.raises(canonical.DecodeError):
        canonical.decode(data)
