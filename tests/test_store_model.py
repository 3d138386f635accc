"""The state machine against a dict model, with hypothesis.

Method: generate sequences of puts, deletes (single and by prefix), counter
increments, sets and compare-and-sets, and transactions; apply each through
the real state machine over an LMDB view, apply it to a few lines of dict
code, and compare every response and the whole state after every step."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv.errors import OutOfRange
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong import commands, reads
from tandemkv.server.strong.state_machine import apply_entry
from tandemkv.v1 import counter_pb2, kv_pb2

KEYS = st.sampled_from([b"a", b"ab", b"abc", b"b", b"ba", b"c"])
NAMES = st.sampled_from([b"x", b"y"])
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SMALL = st.integers(min_value=-5, max_value=5)

put = st.builds(lambda k, v: kv_pb2.PutRequest(key=k, value=v), KEYS, st.binary(max_size=4))
delete = st.builds(
    lambda k, p: kv_pb2.DeleteRequest(range=kv_pb2.KeyRange(key=k, prefix=p)), KEYS, st.booleans())
incr = st.builds(lambda n, d: counter_pb2.CounterIncrRequest(name=n, delta=d), NAMES,
                 st.one_of(SMALL, INT64))
set_ = st.builds(lambda n, v: counter_pb2.CounterSetRequest(name=n, value=v), NAMES,
                 st.one_of(SMALL, INT64))
cas = st.builds(lambda n, e, v: counter_pb2.CounterCompareAndSetRequest(
    name=n, expected=e, value=v), NAMES, SMALL, SMALL)


def _txn(compare_key, compare_value, success, failure):
    compare = kv_pb2.Compare(key=compare_key, target=kv_pb2.Compare.VALUE, value=compare_value)
    wrap = lambda request: kv_pb2.RequestOp(**{commands.WRITE_FIELDS[type(request)]: request})
    return kv_pb2.TxnRequest(compare=[compare], success=[wrap(r) for r in success],
                             failure=[wrap(r) for r in failure])


txn = st.builds(_txn, KEYS, st.binary(max_size=4),
                st.lists(st.one_of(put, incr), max_size=3), st.lists(st.one_of(put, delete), max_size=3))
operations = st.lists(st.one_of(put, delete, incr, set_, cas, txn), min_size=1, max_size=25)


class DictModel:
    def __init__(self):
        self.kv: dict[bytes, tuple[bytes, int, int, int]] = {}
        self.counters: dict[bytes, int] = {}

    def apply(self, index, request):
        """Returns a comparable summary of the response, or 'out_of_range'."""
        kind = type(request).__name__
        if kind == "TxnRequest":
            saved = (dict(self.kv), dict(self.counters))
            held = request.compare[0].key in self.kv and \
                self.kv[request.compare[0].key][0] == request.compare[0].value
            try:
                for op in request.success if held else request.failure:
                    self.apply(index, getattr(op, op.WhichOneof("request")))
            except OverflowError:
                self.kv, self.counters = saved
                return "out_of_range"
            return ("txn", held)
        if kind == "PutRequest":
            old = self.kv.get(request.key)
            created, version = (old[1], old[3] + 1) if old else (index, 1)
            self.kv[request.key] = (request.value, created, index, version)
            return ("put",)
        if kind == "DeleteRequest":
            r = request.range
            victims = [k for k in self.kv if (k.startswith(r.key) if r.prefix else k == r.key)]
            for key in victims:
                del self.kv[key]
            return ("delete", len(victims))
        if kind == "CounterIncrRequest":
            value = self.counters.get(request.name, 0) + request.delta
            if not -(2**63) <= value < 2**63:
                raise OverflowError
            self.counters[request.name] = value
            return ("incr", value)
        if kind == "CounterSetRequest":
            self.counters[request.name] = request.value
            return ("set",)
        current = self.counters.get(request.name, 0)
        if current == request.expected:
            self.counters[request.name] = current = request.value
        return ("cas", current)


def summarize(response):
    name = type(response).__name__
    return {
        "TxnResponse": lambda r: ("txn", r.succeeded),
        "PutResponse": lambda r: ("put",),
        "DeleteResponse": lambda r: ("delete", r.deleted),
        "CounterIncrResponse": lambda r: ("incr", r.value),
        "CounterSetResponse": lambda r: ("set",),
        "CounterCompareAndSetResponse": lambda r: ("cas", r.value),
    }[name](response)


def snapshot_of(view):
    all_keys = kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=b"", prefix=True))
    kvs = {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
           for kv in reads.read_range(view, all_keys, 0).kvs}
    counters = {n: view.counter_get(n) for n in (b"x", b"y") if view.counter_get(n) is not None}
    return kvs, counters


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_state_machine_over_lmdb_matches_a_dict_model(ops):
    model = DictModel()
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(Path(tmp) / "state", map_size_bytes=16 << 20)
        try:
            for index, request in enumerate(ops, start=1):
                try:
                    expected = model.apply(index, request)
                except OverflowError:
                    expected = "out_of_range"
                store.begin_batch()
                result = apply_entry(store.batch_view(), index, commands.encode_write(request, b"", 1))
                store.commit_batch()
                try:
                    actual = summarize(commands.decode_result(result))
                except OutOfRange:
                    actual = "out_of_range"
                assert actual == expected, (index, request)
                with store.read_view() as view:
                    assert snapshot_of(view) == (model.kv, model.counters)
        finally:
            store.close()
