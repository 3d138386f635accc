"""Recipe objects that hang off a client: `Counter` and the transaction
builder `Txn` (with `Op`, the operations a transaction can run), plus
their asyncio twins. Each is a thin layer over `Client.run`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from tandemkv.client import _operations as ops
from tandemkv.client._results import BytesLike, TxnResult, to_bytes
from tandemkv.v1 import counter_pb2, kv_pb2

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient
    from tandemkv.client._sync import Client


class Counter:
    """A named int64 counter, changed inside the replicated state machine.

    Semantics: every call is linearizable; `incr` and `decr` never
    conflict with each other, so there is no read-modify-write race. A
    counter that was never set reads as 0. Counter names share no namespace
    with KV keys; `str` names are encoded as UTF-8.

    Failure modes: each write carries one request id, reused on every
    retry, so a retried `incr` applies exactly once. If the client gives up
    while the outcome is unknown it raises `OutcomeUnknown` (the increment
    may or may not have applied); pass its `request_id` to the same call to
    finish it without applying twice. `Unavailable` means it did not apply.
    Leaving int64 raises `OutOfRange` and changes nothing.

    Example::

        with Client() as client:
            hits = client.counter("hits")
            hits.incr()          # -> 1
            hits.incr(10)        # -> 11
            hits.decr(1)         # -> 10
            hits.compare_and_set(10, 0)  # -> True
            hits.get()           # -> 0
    """

    def __init__(self, client: Client, name: BytesLike):
        self.client = client
        self.name = to_bytes(name, "counter name")

    def incr(self, delta: int = 1, *, request_id: bytes | None = None) -> int:
        """Adds `delta` (may be negative); returns the new value."""
        return self.client.run(ops.counter_incr(self.name, delta, request_id))

    def decr(self, delta: int = 1, *, request_id: bytes | None = None) -> int:
        """Subtracts `delta`; returns the new value."""
        return self.client.run(ops.counter_incr(self.name, -delta, request_id))

    def get(self, *, stale: bool = False) -> int:
        """The current value (0 if never set). `stale=True` reads the
        answering node's local state without a read barrier: faster, may lag."""
        return self.client.run(ops.counter_get(self.name, stale))

    def set(self, value: int, *, request_id: bytes | None = None) -> int:
        """Sets the value; returns the previous one."""
        return self.client.run(ops.counter_set(self.name, value, request_id))

    def compare_and_set(self, expected: int, value: int, *, request_id: bytes | None = None) -> bool:
        """Sets `value` only if the counter equals `expected`; returns
        whether it did."""
        return self.client.run(ops.counter_compare_and_set(self.name, expected, value, request_id))

    def delete(self, *, request_id: bytes | None = None) -> bool:
        """Removes the counter (it then reads as 0); returns whether it existed."""
        return self.client.run(ops.counter_delete(self.name, request_id))


class AsyncCounter:
    """`Counter` for `AsyncClient`: the same semantics, every method awaited.

    Example::

        async with AsyncClient() as client:
            await client.counter("hits").incr(5)
    """

    def __init__(self, client: AsyncClient, name: BytesLike):
        self.client = client
        self.name = to_bytes(name, "counter name")

    async def incr(self, delta: int = 1, *, request_id: bytes | None = None) -> int:
        return await self.client.run(ops.counter_incr(self.name, delta, request_id))

    async def decr(self, delta: int = 1, *, request_id: bytes | None = None) -> int:
        return await self.client.run(ops.counter_incr(self.name, -delta, request_id))

    async def get(self, *, stale: bool = False) -> int:
        return await self.client.run(ops.counter_get(self.name, stale))

    async def set(self, value: int, *, request_id: bytes | None = None) -> int:
        return await self.client.run(ops.counter_set(self.name, value, request_id))

    async def compare_and_set(self, expected: int, value: int, *, request_id: bytes | None = None) -> bool:
        return await self.client.run(ops.counter_compare_and_set(self.name, expected, value, request_id))

    async def delete(self, *, request_id: bytes | None = None) -> bool:
        return await self.client.run(ops.counter_delete(self.name, request_id))


@dataclasses.dataclass(frozen=True)
class TxnOp:
    """One operation inside a transaction and how to decode its answer."""

    message: kv_pb2.RequestOp
    decode: Callable[[Any], Any]


class Op:
    """Operations a transaction can run. What each one answers in
    `TxnResult.responses`: put -> `PutResult`, delete -> number deleted,
    get -> `KeyValue` or None, range -> `RangeResult`, incr -> new value,
    counter_set -> previous value, counter_get -> value,
    counter_delete -> whether it existed."""

    @staticmethod
    def put(key: BytesLike, value: BytesLike) -> TxnOp:
        request = kv_pb2.PutRequest(key=to_bytes(key, "key"), value=to_bytes(value, "value"))
        return TxnOp(kv_pb2.RequestOp(put=request), ops.decode_put)

    @staticmethod
    def delete(key: BytesLike, *, prefix: bool = False) -> TxnOp:
        selected = ops.key_range(key) if prefix else kv_pb2.KeyRange(key=to_bytes(key, "key"))
        return TxnOp(kv_pb2.RequestOp(delete=kv_pb2.DeleteRequest(range=selected)), lambda r: r.deleted)

    @staticmethod
    def get(key: BytesLike) -> TxnOp:
        request = kv_pb2.RangeRequest(range=kv_pb2.KeyRange(key=to_bytes(key, "key")))
        return TxnOp(kv_pb2.RequestOp(range=request), lambda r: ops.decode_range(r)[0] if r.kvs else None)

    @staticmethod
    def range(prefix: BytesLike = b"", *, end: BytesLike | None = None, limit: int = 0) -> TxnOp:
        request = kv_pb2.RangeRequest(range=ops.key_range(prefix, end), limit=limit)
        return TxnOp(kv_pb2.RequestOp(range=request), ops.decode_range)

    @staticmethod
    def incr(name: BytesLike, delta: int = 1) -> TxnOp:
        request = counter_pb2.CounterIncrRequest(name=to_bytes(name, "name"), delta=delta)
        return TxnOp(kv_pb2.RequestOp(counter_incr=request), lambda r: r.value)

    @staticmethod
    def counter_set(name: BytesLike, value: int) -> TxnOp:
        request = counter_pb2.CounterSetRequest(name=to_bytes(name, "name"), value=value)
        return TxnOp(kv_pb2.RequestOp(counter_set=request), lambda r: r.prev_value)

    @staticmethod
    def counter_get(name: BytesLike) -> TxnOp:
        request = counter_pb2.CounterGetRequest(name=to_bytes(name, "name"))
        return TxnOp(kv_pb2.RequestOp(counter_get=request), lambda r: r.value)

    @staticmethod
    def counter_delete(name: BytesLike) -> TxnOp:
        request = counter_pb2.CounterDeleteRequest(name=to_bytes(name, "name"))
        return TxnOp(kv_pb2.RequestOp(counter_delete=request), lambda r: r.deleted)


_RESULTS = {"==": kv_pb2.Compare.EQUAL, "!=": kv_pb2.Compare.NOT_EQUAL,
            ">": kv_pb2.Compare.GREATER, "<": kv_pb2.Compare.LESS}


class Txn:
    """A transaction builder: compares, then the ops to run if all hold
    (`on_success`) or if any fails (`on_failure`), applied atomically.

    Semantics: the compares and the chosen branch run as one step of the
    state machine; nothing else happens in between. Each method returns the
    builder, so calls chain. `commit()` sends it once (exactly once across
    retries: one request id) and returns a `TxnResult`.

    Failure modes: an op that fails (e.g. a counter overflow) fails the
    whole transaction and nothing of it applies. Limits: TXN_OPS_MAX ops in
    both branches, TXN_COMPARES_MAX compares.

    Example::

        result = (client.txn()
                  .compare_value("config", "==", "v1")
                  .on_success(Op.put("config", "v2"), Op.incr("config-changes"))
                  .on_failure(Op.get("config"))
                  .commit())
        if not result.succeeded:
            print("someone else changed it to", result.responses[0].value)
    """

    def __init__(self, client: Client | AsyncClient | None = None):
        self.client = client
        self._compares: list[kv_pb2.Compare] = []
        self._success: list[TxnOp] = []
        self._failure: list[TxnOp] = []

    def _compare(self, key: BytesLike, op: str, target: int, **operand: Any) -> Txn:
        if op not in _RESULTS:
            raise ValueError(f"compare op must be one of {sorted(_RESULTS)}, got {op!r}")
        self._compares.append(kv_pb2.Compare(key=to_bytes(key, "key"), result=_RESULTS[op],
                                             target=target, **operand))
        return self

    def compare_value(self, key: BytesLike, op: str, value: BytesLike) -> Txn:
        """The key's value compared with `value`; a missing key fails it."""
        return self._compare(key, op, kv_pb2.Compare.VALUE, value=to_bytes(value, "value"))

    def compare_version(self, key: BytesLike, op: str, version: int) -> Txn:
        """The key's version (0 if missing): `compare_version(k, "==", 0)`
        holds only when the key does not exist."""
        return self._compare(key, op, kv_pb2.Compare.VERSION, version=version)

    def compare_create_revision(self, key: BytesLike, op: str, revision: int) -> Txn:
        return self._compare(key, op, kv_pb2.Compare.CREATE_REVISION, create_revision=revision)

    def compare_mod_revision(self, key: BytesLike, op: str, revision: int) -> Txn:
        return self._compare(key, op, kv_pb2.Compare.MOD_REVISION, mod_revision=revision)

    def compare_counter(self, name: BytesLike, op: str, value: int) -> Txn:
        """The counter `name` (0 if missing) compared with `value`."""
        return self._compare(name, op, kv_pb2.Compare.COUNTER, counter=value)

    def on_success(self, *txn_ops: TxnOp) -> Txn:
        self._success.extend(txn_ops)
        return self

    def on_failure(self, *txn_ops: TxnOp) -> Txn:
        self._failure.extend(txn_ops)
        return self

    def operation(self, request_id: bytes | None = None) -> ops.Operation:
        request = kv_pb2.TxnRequest(
            compare=self._compares,
            success=[op.message for op in self._success],
            failure=[op.message for op in self._failure],
        )
        return ops.txn(request, [op.decode for op in self._success], [op.decode for op in self._failure],
                       request_id)

    def commit(self, *, request_id: bytes | None = None) -> TxnResult:
        """Sends the transaction; `request_id` retries an earlier commit
        whose outcome is unknown (from `OutcomeUnknown.request_id`)."""
        assert self.client is not None, "this Txn was built without a client"
        return self.client.run(self.operation(request_id))


class AsyncTxn(Txn):
    """`Txn` for `AsyncClient`: `await client.txn()....commit()`."""

    async def commit(self, *, request_id: bytes | None = None) -> TxnResult:  # type: ignore[override]
        assert self.client is not None, "this Txn was built without a client"
        return await self.client.run(self.operation(request_id))
