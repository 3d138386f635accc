"""TandemKV's side of each workload, over raw grpc.aio stubs on one channel
to the leader (no SDK routing or retry layer, so the load generator costs
the same per operation as etcd's). Every write carries a random 16-byte
request id, as the SDK sends. The `sdk-*` workloads go through one
`AsyncClient` instead (routing, retries and its pipelining: the loadgen's
workers are its concurrent callers, so their calls coalesce into
`Batch.Call`s), to be read beside the raw one-op-per-call figures.

Optional workloads (registry, watch, CRDT) are built only when the API has
them: the service must be in the generated protos, and the server must
answer it (UNIMPLEMENTED means it is absent); otherwise `build` returns the
reason.
"""

from __future__ import annotations

import importlib
import os
import random
from typing import AsyncIterator

import grpc
import grpc.aio

from benchmarks import fanout, workload
from benchmarks.workload import Options, Workload

# Optional workload -> (proto module, service, SDK attribute of AsyncClient).
OPTIONAL_APIS = {
    "register": ("coordination", "Registry", "registry"),
    "whereis": ("coordination", "Registry", "registry"),
    "watch-fanout": ("watch", "Watch", "watch"),
    "watch-fanout-mux": ("watch", "Watch", "watch"),
    "crdt-counter": ("crdt", "Crdt", "crdt"),
    "crdt-set": ("crdt", "Crdt", "crdt"),
}
CRDT_TABLES = {"crdt-counter": ("bench_pn_counter", "PN_COUNTER"), "crdt-set": ("bench_or_set", "OR_SET")}
RPC_TIMEOUT_S = 30.0


def _rid() -> bytes:
    return os.urandom(16)


def _pb(module: str):
    return importlib.import_module(f"tandemkv.v1.{module}_pb2")


def _stub(channel: grpc.aio.Channel, module: str, service: str):
    return getattr(importlib.import_module(f"tandemkv.v1.{module}_pb2_grpc"), f"{service}Stub")(channel)


def api_absence(name: str) -> str | None:
    """Why an optional workload cannot run against this checkout, or None."""
    if name not in OPTIONAL_APIS:
        return None
    module, service, sdk_attribute = OPTIONAL_APIS[name]
    try:
        services = _pb(module).DESCRIPTOR.services_by_name
    except ImportError:
        return f"proto module tandemkv.v1.{module}_pb2 is absent"
    if service not in services:
        return f"service tandemkv.v1.{service} is absent from proto/"
    from tandemkv.client import AsyncClient

    if not hasattr(AsyncClient, sdk_attribute):
        print(f"note: {name}: the SDK has no AsyncClient.{sdk_attribute} yet; driving the raw stub")
    return None


class TandemWorkloads:
    """Builds workloads against one leader endpoint."""

    def __init__(self, channel: grpc.aio.Channel, options: Options):
        self.channel = channel
        self.options = options
        self.kv = _stub(channel, "kv", "KV")
        self.counter = _stub(channel, "counter", "Counter")
        self.kv_pb2 = _pb("kv")
        self.counter_pb2 = _pb("counter")
        self.cas_known: dict[bytes, bytes] = {}
        self.sdk = None  # the AsyncClient of the sdk-* workloads, made by their prepare
        self.preloaded = False

    async def build(self, name: str) -> Workload | str:
        absent = api_absence(name)
        if absent:
            return absent
        built = getattr(self, "_" + name.replace("-", "_"))()
        if built.prepare is not None and name in OPTIONAL_APIS:
            try:
                await built.prepare(1)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return f"the server does not implement {OPTIONAL_APIS[name][1]} (UNIMPLEMENTED)"
                raise
        return built

    # -- KV --
    async def put_keys(self, keys: list[bytes], size_bytes: int | None = None) -> None:
        payload = workload.value(size_bytes or self.options.value_bytes)
        ops = [self.kv_pb2.RequestOp(put=self.kv_pb2.PutRequest(key=k, value=payload)) for k in keys]
        await self.kv.Txn(self.kv_pb2.TxnRequest(success=ops, request_id=_rid()), timeout=RPC_TIMEOUT_S)

    async def preload(self, count: int) -> None:
        await workload.preload(self.put_keys, [workload.key(i) for i in range(count)])

    def _put(self) -> Workload:
        payload = workload.value(self.options.value_bytes)

        async def op(worker: int) -> None:
            request = self.kv_pb2.PutRequest(key=workload.key(random.randrange(self.options.key_count)),
                                             value=payload, request_id=_rid())
            await self.kv.Put(request, timeout=RPC_TIMEOUT_S)

        return Workload("put", op)

    async def preload_once(self) -> None:
        if not self.preloaded:
            await self.preload(self.options.key_count)
            self.preloaded = True

    def _get(self) -> Workload:
        async def prepare(concurrency: int) -> None:
            await self.preload_once()

        async def op(worker: int) -> None:
            request = self.kv_pb2.GetRequest(key=workload.key(random.randrange(self.options.key_count)))
            response = await self.kv.Get(request, timeout=RPC_TIMEOUT_S)
            assert response.found, "a preloaded key is missing"

        return Workload("get", op, prepare)

    # -- KV through the SDK --
    async def sdk_client(self):
        """One AsyncClient for the run, given the leader first and every member."""
        if self.sdk is None:
            from tandemkv.client import AsyncClient

            status = await _stub(self.channel, "cluster", "Cluster").Status(
                _pb("cluster").StatusRequest(), timeout=RPC_TIMEOUT_S)
            members = [m.client_address for m in status.members if m.client_address]
            leader = status.leader_client_address
            self.sdk = AsyncClient([leader] + [m for m in members if m != leader] if leader else members,
                                   tls=self.options.tls or False)
        return self.sdk

    def _sdk_put(self) -> Workload:
        payload = workload.value(self.options.value_bytes)

        async def prepare(concurrency: int) -> None:
            await self.sdk_client()

        async def op(worker: int) -> None:
            await self.sdk.put(workload.key(random.randrange(self.options.key_count)), payload)

        return Workload("sdk-put", op, prepare)

    def _sdk_get(self) -> Workload:
        async def prepare(concurrency: int) -> None:
            await self.preload_once()
            await self.sdk_client()

        async def op(worker: int) -> None:
            found = await self.sdk.get(workload.key(random.randrange(self.options.key_count)))
            assert found is not None, "a preloaded key is missing"

        return Workload("sdk-get", op, prepare)

    # -- counters --
    def _incr(self, name: str, hot: bool) -> Workload:
        async def op(worker: int) -> None:
            counter = b"hot" if hot else b"c%015d" % worker
            request = self.counter_pb2.CounterIncrRequest(name=counter, delta=1, request_id=_rid())
            await self.counter.Incr(request, timeout=RPC_TIMEOUT_S)

        return Workload(name, op)

    def _incr_hot(self) -> Workload:
        return self._incr("incr-hot", hot=True)

    def _incr_spread(self) -> Workload:
        return self._incr("incr-spread", hot=False)

    # -- compare-and-set and transactions --
    async def cas_increment(self, key: bytes) -> None:
        """value == old -> put old+1; on a mismatch the failure branch reads
        the current value and the loop tries again."""
        pb = self.kv_pb2
        for _ in range(workload.CAS_ATTEMPTS_MAX):
            old = self.cas_known.get(key, b"0")
            compare = pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.VALUE, key=key, value=old)
            put = pb.RequestOp(put=pb.PutRequest(key=key, value=b"%d" % (int(old) + 1)))
            read = pb.RequestOp(range=pb.RangeRequest(range=pb.KeyRange(key=key)))
            response = await self.kv.Txn(pb.TxnRequest(compare=[compare], success=[put], failure=[read],
                                                       request_id=_rid()), timeout=RPC_TIMEOUT_S)
            if response.succeeded:
                self.cas_known[key] = b"%d" % (int(old) + 1)
                return
            kvs = response.responses[0].range.kvs
            self.cas_known[key] = kvs[0].value if kvs else b"0"
            if not kvs:
                await self.kv.Put(pb.PutRequest(key=key, value=b"0", request_id=_rid()))
        raise RuntimeError(f"compare-and-set on {key!r} failed {workload.CAS_ATTEMPTS_MAX} times")

    def _cas_own(self) -> Workload:
        return Workload("cas-own", lambda worker: self.cas_increment(workload.own_key(worker)))

    def _cas_hot(self) -> Workload:
        return Workload("cas-hot", lambda worker: self.cas_increment(b"hot-cas"))

    def _txn(self) -> Workload:
        pb = self.kv_pb2
        payload = workload.value(self.options.value_bytes)

        async def prepare(concurrency: int) -> None:
            await workload.preload(self.put_keys, [workload.own_key(w) for w in range(concurrency)])

        async def op(worker: int) -> None:
            first = workload.own_key(worker)
            compare = pb.Compare(result=pb.Compare.GREATER, target=pb.Compare.VERSION, key=first, version=0)
            puts = [pb.RequestOp(put=pb.PutRequest(key=workload.own_key(worker, slot), value=payload))
                    for slot in range(3)]
            read = pb.RequestOp(range=pb.RangeRequest(range=pb.KeyRange(key=first)))
            response = await self.kv.Txn(pb.TxnRequest(compare=[compare], success=puts, failure=[read],
                                                       request_id=_rid()), timeout=RPC_TIMEOUT_S)
            assert response.succeeded, "the txn's own key vanished"

        return Workload("txn", op, prepare)

    # -- registry --
    async def _grant(self) -> int:
        lease = _stub(self.channel, "lease", "Lease")
        request = _pb("lease").LeaseGrantRequest(ttl_ms=workload.LEASE_TTL_S * 1000, request_id=_rid())
        return (await lease.Grant(request, timeout=RPC_TIMEOUT_S)).id

    async def _register_name(self, registry, name: bytes, lease: int) -> None:
        request = _pb("coordination").RegisterRequest(name=name, value=b"127.0.0.1:1", lease=lease,
                                                      request_id=_rid())
        response = await registry.Register(request, timeout=RPC_TIMEOUT_S)
        assert response.registered, f"{name!r} was already registered"

    def _register(self) -> Workload:
        registry = _stub(self.channel, "coordination", "Registry")
        leases: dict[int, list[int]] = {}

        async def op(worker: int) -> None:
            lease, used = leases.get(worker) or [0, workload.NAMES_PER_LEASE]
            if used >= workload.NAMES_PER_LEASE:
                lease, used = await self._grant(), 0
            leases[worker] = [lease, used + 1]
            await self._register_name(registry, b"svc/%d" % workload.unique_suffix(), lease)

        async def probe(concurrency: int) -> None:
            await op(0)

        return Workload("register", op, probe)

    def _whereis(self) -> Workload:
        registry = _stub(self.channel, "coordination", "Registry")
        names = [b"where/%d" % i for i in range(workload.NAMES_PER_LEASE)]
        loaded = set()

        async def prepare(concurrency: int) -> None:
            if not loaded:
                lease = await self._grant()
                for name in names:
                    await self._register_name(registry, name, lease)
                loaded.add(True)

        async def op(worker: int) -> None:
            request = _pb("coordination").WhereisRequest(name=random.choice(names))
            assert (await registry.Whereis(request, timeout=RPC_TIMEOUT_S)).found

        return Workload("whereis", op, prepare)

    # -- watch --
    def _watch_fanout(self) -> Workload:
        pb = self.kv_pb2
        watch_pb2 = _pb("watch")
        stub = _stub(self.channel, "watch", "Watch")

        async def revision() -> int:
            return (await self.kv.Get(pb.GetRequest(key=b"w"), timeout=RPC_TIMEOUT_S)).header.revision

        async def watch(prefix: bytes, start: int) -> AsyncIterator[bytes]:
            request = watch_pb2.WatchRequest(range=pb.KeyRange(key=prefix, prefix=True), start_revision=start)
            call = stub.Watch(request)
            try:
                async for response in call:
                    for event in response.events:
                        yield event.kv.value
            finally:
                call.cancel()

        async def put(key: bytes, value: bytes) -> None:
            await self.kv.Put(pb.PutRequest(key=key, value=value, request_id=_rid()), timeout=RPC_TIMEOUT_S)

        async def probe(concurrency: int) -> None:
            await revision()

        driver = fanout.make_driver(revision, watch, put, self.options.value_bytes)
        return Workload("watch-fanout", prepare=probe, driver=driver, unit="events/s")

    def _watch_fanout_mux(self) -> Workload:
        """watch-fanout through the SDK: every watcher is a watch of one
        AsyncClient, so all of them share one Watch.Watches stream (each
        with its own bounded buffer); the writers are raw puts as above."""
        pb = self.kv_pb2

        async def revision() -> int:
            return (await self.kv.Get(pb.GetRequest(key=b"w"), timeout=RPC_TIMEOUT_S)).header.revision

        async def watch(prefix: bytes, start: int) -> AsyncIterator[bytes]:
            async with self.sdk.watch(prefix, prefix=True, start_revision=start) as events:
                async for event in events:
                    yield event.value

        async def put(key: bytes, value: bytes) -> None:
            await self.kv.Put(pb.PutRequest(key=key, value=value, request_id=_rid()), timeout=RPC_TIMEOUT_S)

        async def probe(concurrency: int) -> None:
            await revision()
            await self.sdk_client()  # made once, before the watchers start

        driver = fanout.make_driver(revision, watch, put, self.options.value_bytes)
        return Workload("watch-fanout-mux", prepare=probe, driver=driver, unit="events/s")

    # -- CRDT --
    def _crdt(self, name: str) -> Workload:
        crdt_pb2 = _pb("crdt")
        stub = _stub(self.channel, "crdt", "Crdt")
        table, kind = CRDT_TABLES[name]

        async def prepare(concurrency: int) -> None:
            request = crdt_pb2.CreateTableRequest(name=table, type=getattr(crdt_pb2, kind), request_id=_rid())
            await stub.CreateTable(request, timeout=RPC_TIMEOUT_S)

        async def op(worker: int) -> None:
            if kind == "PN_COUNTER":
                request = crdt_pb2.CrdtUpdateRequest(table=table, increment=1)
            else:
                request = crdt_pb2.CrdtUpdateRequest(table=table, add=b"m%d" % random.randrange(10_000))
            await stub.Update(request, timeout=RPC_TIMEOUT_S)

        return Workload(name, op, prepare)

    def _crdt_counter(self) -> Workload:
        return self._crdt("crdt-counter")

    def _crdt_set(self) -> Workload:
        return self._crdt("crdt-set")
