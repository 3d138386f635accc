"""Drives the pure state machine in tests: applies commands at increasing
indexes over a view, with the same codec the node uses."""

from __future__ import annotations

import contextlib

from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong import batching, catalog, commands, coordination, reads
from tandemkv.server.strong.state_machine import apply_entry
from tandemkv.server.strong.view import MemoryView
from tandemkv.v1 import counter_pb2, kv_pb2


@contextlib.contextmanager
def make_view(kind: str, tmp_path):
    """The in-memory view, or an LMDB view in a temporary directory."""
    if kind == "memory":
        yield MemoryView()
        return
    store = StateStore(tmp_path / "state", map_size_bytes=64 << 20)
    store.begin_batch()
    try:
        yield store.batch_view()
    finally:
        store.commit_batch()
        store.close()


class Applier:
    def __init__(self, view, space_quota_bytes: int = 0):
        self.view = view
        self.index = 0
        self.ts_ms = 1_000
        self.space_quota_bytes = space_quota_bytes

    def raw(self, command_bytes: bytes) -> bytes | None:
        self.index += 1
        return apply_entry(self.view, self.index, command_bytes)

    def write(self, request, request_id: bytes = b"", ts_ms: int | None = None):
        self.ts_ms = self.ts_ms if ts_ms is None else ts_ms
        result = self.raw(commands.encode_write(request, request_id, self.ts_ms,
                                                self.space_quota_bytes))
        return commands.decode_result(result)

    def batch(self, writes, batchable: bool = True) -> list:
        """Proposes `writes` ((request, request id) pairs) the way a busy
        node does (`batching.group_entries`), applies the entries, and
        returns each write's decoded response, or the error it raised."""
        answers: list = [None] * len(writes)

        def answer(position):
            def callback(result, fail_reason):
                answers[position] = (result, fail_reason)
            return callback

        pending = [(commands.encode_write(request, request_id, self.ts_ms, self.space_quota_bytes),
                    answer(k), batchable)
                   for k, (request, request_id) in enumerate(writes)]
        for entry, callback in batching.group_entries(pending):
            callback(self.raw(entry), 0)
        return [_decoded(result) for result, _ in answers]

    def tick(self, proposer: str, elapsed_ms: int):
        return commands.decode_result(self.raw(commands.encode_lease_tick(proposer, elapsed_ms, 1)))

    def read(self, request):
        readers = {**reads.READERS, **coordination.READERS, **catalog.READERS}
        return readers[type(request)](self.view, request, self.index)

    def get(self, key: bytes):
        return self.read(kv_pb2.GetRequest(key=key))

    def counter(self, name: bytes) -> int:
        return self.read(counter_pb2.CounterGetRequest(name=name)).value


def _decoded(result: bytes | None):
    try:
        return commands.decode_result(result)
    except Exception as error:  # the typed error a caller would see
        return error
