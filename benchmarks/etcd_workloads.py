"""etcd's side of each workload, over raw grpc.aio stubs (the generated
etcd v3 messages and stubs shipped in the `aetcd` package) on one channel
to the leader, driven by the same load generator as TandemKV.

etcd has no server-side counter: an increment is the client-side Txn
compare-and-swap loop (read, compare value, put value+1, retry on a
mismatch). A registry Register is a Txn create-if-absent (create revision
== 0 -> put), Whereis a linearizable Range. etcd has no CRDTs.
"""

from __future__ import annotations

import random
from typing import AsyncIterator

import grpc.aio
from aetcd import rpc

from benchmarks import fanout, workload
from benchmarks.workload import Options, Workload

RPC_TIMEOUT_S = 30.0
EQUAL = rpc.Compare.CompareResult.Value("EQUAL")
GREATER = rpc.Compare.CompareResult.Value("GREATER")
TARGET_VALUE = rpc.Compare.CompareTarget.Value("VALUE")
TARGET_VERSION = rpc.Compare.CompareTarget.Value("VERSION")
TARGET_CREATE = rpc.Compare.CompareTarget.Value("CREATE")


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key starting with `prefix`"."""
    end = bytearray(prefix)
    for index in range(len(end) - 1, -1, -1):
        if end[index] < 0xFF:
            end[index] += 1
            return bytes(end[:index + 1])
    return b"\0"


class EtcdWorkloads:
    """Builds workloads against one etcd leader endpoint."""

    def __init__(self, channel: grpc.aio.Channel, options: Options):
        self.channel = channel
        self.options = options
        self.kv = rpc.KVStub(channel)
        self.cas_known: dict[bytes, bytes] = {}

    async def build(self, name: str) -> Workload | str:
        if name.startswith("crdt-"):
            return "etcd has no CRDT API"
        if name.startswith("sdk-") or name == "watch-fanout-mux":
            return "TandemKV's SDK workload; etcd's figure is its raw one beside it"
        return getattr(self, "_" + name.replace("-", "_"))()

    # -- KV --
    async def put_keys(self, keys: list[bytes], size_bytes: int | None = None) -> None:
        payload = workload.value(size_bytes or self.options.value_bytes)
        ops = [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=payload)) for k in keys]
        await self.kv.Txn(rpc.TxnRequest(success=ops), timeout=RPC_TIMEOUT_S)

    async def preload(self, count: int) -> None:
        await workload.preload(self.put_keys, [workload.key(i) for i in range(count)])

    def _put(self) -> Workload:
        payload = workload.value(self.options.value_bytes)

        async def op(worker: int) -> None:
            request = rpc.PutRequest(key=workload.key(random.randrange(self.options.key_count)), value=payload)
            await self.kv.Put(request, timeout=RPC_TIMEOUT_S)

        return Workload("put", op)

    def _get(self) -> Workload:
        loaded = set()

        async def prepare(concurrency: int) -> None:
            if not loaded:
                await self.preload(self.options.key_count)
                loaded.add(True)

        async def op(worker: int) -> None:
            request = rpc.RangeRequest(key=workload.key(random.randrange(self.options.key_count)))
            response = await self.kv.Range(request, timeout=RPC_TIMEOUT_S)
            assert response.kvs, "a preloaded key is missing"

        return Workload("get", op, prepare)

    # -- compare-and-set loops (etcd's only way to increment) --
    async def cas_increment(self, key: bytes) -> None:
        for _ in range(workload.CAS_ATTEMPTS_MAX):
            old = self.cas_known.get(key, b"0")
            compare = rpc.Compare(result=EQUAL, target=TARGET_VALUE, key=key, value=old)
            put = rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=b"%d" % (int(old) + 1)))
            read = rpc.RequestOp(request_range=rpc.RangeRequest(key=key))
            response = await self.kv.Txn(rpc.TxnRequest(compare=[compare], success=[put], failure=[read]),
                                         timeout=RPC_TIMEOUT_S)
            if response.succeeded:
                self.cas_known[key] = b"%d" % (int(old) + 1)
                return
            kvs = response.responses[0].response_range.kvs
            self.cas_known[key] = kvs[0].value if kvs else b"0"
            if not kvs:
                await self.kv.Put(rpc.PutRequest(key=key, value=b"0"), timeout=RPC_TIMEOUT_S)
        raise RuntimeError(f"compare-and-set on {key!r} failed {workload.CAS_ATTEMPTS_MAX} times")

    def _incr_hot(self) -> Workload:
        return Workload("incr-hot", lambda worker: self.cas_increment(b"hot"))

    def _incr_spread(self) -> Workload:
        return Workload("incr-spread", lambda worker: self.cas_increment(b"c%015d" % worker))

    def _cas_own(self) -> Workload:
        return Workload("cas-own", lambda worker: self.cas_increment(workload.own_key(worker)))

    def _cas_hot(self) -> Workload:
        return Workload("cas-hot", lambda worker: self.cas_increment(b"hot-cas"))

    def _txn(self) -> Workload:
        payload = workload.value(self.options.value_bytes)

        async def prepare(concurrency: int) -> None:
            await workload.preload(self.put_keys, [workload.own_key(w) for w in range(concurrency)])

        async def op(worker: int) -> None:
            first = workload.own_key(worker)
            compare = rpc.Compare(result=GREATER, target=TARGET_VERSION, key=first, version=0)
            puts = [rpc.RequestOp(request_put=rpc.PutRequest(key=workload.own_key(worker, slot), value=payload))
                    for slot in range(3)]
            read = rpc.RequestOp(request_range=rpc.RangeRequest(key=first))
            response = await self.kv.Txn(rpc.TxnRequest(compare=[compare], success=puts, failure=[read]),
                                         timeout=RPC_TIMEOUT_S)
            assert response.succeeded, "the txn's own key vanished"

        return Workload("txn", op, prepare)

    # -- registry equivalents --
    async def _create_if_absent(self, name: bytes) -> bool:
        compare = rpc.Compare(result=EQUAL, target=TARGET_CREATE, key=name, create_revision=0)
        put = rpc.RequestOp(request_put=rpc.PutRequest(key=name, value=b"127.0.0.1:1"))
        read = rpc.RequestOp(request_range=rpc.RangeRequest(key=name))
        response = await self.kv.Txn(rpc.TxnRequest(compare=[compare], success=[put], failure=[read]),
                                     timeout=RPC_TIMEOUT_S)
        return response.succeeded

    def _register(self) -> Workload:
        async def op(worker: int) -> None:
            assert await self._create_if_absent(b"svc/%d" % workload.unique_suffix())

        return Workload("register", op)

    def _whereis(self) -> Workload:
        names = [b"where/%d" % i for i in range(workload.NAMES_PER_LEASE)]
        loaded = set()

        async def prepare(concurrency: int) -> None:
            if not loaded:
                for name in names:
                    await self._create_if_absent(name)
                loaded.add(True)

        async def op(worker: int) -> None:
            response = await self.kv.Range(rpc.RangeRequest(key=random.choice(names)), timeout=RPC_TIMEOUT_S)
            assert response.kvs

        return Workload("whereis", op, prepare)

    # -- watch --
    def _watch_fanout(self) -> Workload:
        stub = rpc.WatchStub(self.channel)

        async def revision() -> int:
            response = await self.kv.Range(rpc.RangeRequest(key=b"w"), timeout=RPC_TIMEOUT_S)
            return response.header.revision

        async def watch(prefix: bytes, start: int) -> AsyncIterator[bytes]:
            create = rpc.WatchCreateRequest(key=prefix, range_end=prefix_end(prefix), start_revision=start)
            call = stub.Watch()
            try:
                await call.write(rpc.WatchRequest(create_request=create))
                async for response in call:
                    for event in response.events:
                        yield event.kv.value
            finally:
                call.cancel()

        async def put(key: bytes, value: bytes) -> None:
            await self.kv.Put(rpc.PutRequest(key=key, value=value), timeout=RPC_TIMEOUT_S)

        driver = fanout.make_driver(revision, watch, put, self.options.value_bytes)
        return Workload("watch-fanout", driver=driver, unit="events/s")
