"""The friendly half of the `Node` API: one method per operation, each
building its request message and calling `propose` (writes) or `query`
(reads). Kept apart from node.py so the composition root stays short."""

from __future__ import annotations

from google.protobuf.message import Message

from tandemkv.v1 import counter_pb2, kv_pb2

LINEARIZABLE = kv_pb2.LINEARIZABLE


def _key_range(key: bytes, range_end: bytes, prefix: bool) -> kv_pb2.KeyRange:
    return kv_pb2.KeyRange(key=key, range_end=range_end, prefix=prefix)


class NodeOperations:
    """Mixin: needs `propose(request, timeout_s=)` and `query(...)`."""

    def propose(self, request: Message, *, timeout_s: float | None = None) -> Message:
        raise NotImplementedError

    def query(self, request: Message, *, timeout_s: float | None = None) -> Message:
        raise NotImplementedError

    # -- KV --
    def put(self, key: bytes, value: bytes, *, prev_kv: bool = False,
            request_id: bytes | None = None, timeout_s: float | None = None) -> kv_pb2.PutResponse:
        request = kv_pb2.PutRequest(key=key, value=value, prev_kv=prev_kv,
                                    request_id=request_id or b"")
        return self.propose(request, timeout_s=timeout_s)

    def get(self, key: bytes, *, consistency: int = LINEARIZABLE,
            timeout_s: float | None = None) -> kv_pb2.GetResponse:
        return self.query(kv_pb2.GetRequest(key=key, consistency=consistency),
                          timeout_s=timeout_s)

    def range(self, key: bytes = b"", *, range_end: bytes = b"", prefix: bool = False,
              limit: int = 0, keys_only: bool = False, consistency: int = LINEARIZABLE,
              timeout_s: float | None = None) -> kv_pb2.RangeResponse:
        request = kv_pb2.RangeRequest(range=_key_range(key, range_end, prefix), limit=limit,
                                      keys_only=keys_only, consistency=consistency)
        return self.query(request, timeout_s=timeout_s)

    def delete(self, key: bytes, *, range_end: bytes = b"", prefix: bool = False,
               prev_kv: bool = False, request_id: bytes | None = None,
               timeout_s: float | None = None) -> kv_pb2.DeleteResponse:
        request = kv_pb2.DeleteRequest(range=_key_range(key, range_end, prefix),
                                       prev_kv=prev_kv, request_id=request_id or b"")
        return self.propose(request, timeout_s=timeout_s)

    def txn(self, request: kv_pb2.TxnRequest, *,
            timeout_s: float | None = None) -> kv_pb2.TxnResponse:
        return self.propose(request, timeout_s=timeout_s)

    # -- counters --
    def incr(self, name: bytes, delta: int = 1, *, request_id: bytes | None = None,
             timeout_s: float | None = None) -> counter_pb2.CounterIncrResponse:
        request = counter_pb2.CounterIncrRequest(name=name, delta=delta,
                                                 request_id=request_id or b"")
        return self.propose(request, timeout_s=timeout_s)

    def counter_get(self, name: bytes, *, consistency: int = LINEARIZABLE,
                    timeout_s: float | None = None) -> counter_pb2.CounterGetResponse:
        request = counter_pb2.CounterGetRequest(name=name, consistency=consistency)
        return self.query(request, timeout_s=timeout_s)

    def counter_set(self, name: bytes, value: int, *, request_id: bytes | None = None,
                    timeout_s: float | None = None) -> counter_pb2.CounterSetResponse:
        request = counter_pb2.CounterSetRequest(name=name, value=value,
                                                request_id=request_id or b"")
        return self.propose(request, timeout_s=timeout_s)

    def counter_compare_and_set(
        self, name: bytes, expected: int, value: int, *, request_id: bytes | None = None,
        timeout_s: float | None = None,
    ) -> counter_pb2.CounterCompareAndSetResponse:
        request = counter_pb2.CounterCompareAndSetRequest(
            name=name, expected=expected, value=value, request_id=request_id or b"")
        return self.propose(request, timeout_s=timeout_s)

    def counter_delete(self, name: bytes, *, request_id: bytes | None = None,
                       timeout_s: float | None = None) -> counter_pb2.CounterDeleteResponse:
        request = counter_pb2.CounterDeleteRequest(name=name, request_id=request_id or b"")
        return self.propose(request, timeout_s=timeout_s)
