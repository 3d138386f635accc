"""What a workload is, the names the suite knows, and helpers both systems'
workload modules share: key and value shapes, the intended-time stamp that
watch events carry, and batched preloading.

A system module builds a `Workload` for a name, or returns the reason it
cannot (an API the system lacks), which the suite prints and records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import struct
import time
from typing import Awaitable, Callable

from benchmarks.loadgen import Operation, RunResult

KEY_BYTES = 16
VALUE_BYTES_DEFAULT = 100
KEY_COUNT_DEFAULT = 1_000
# Keys written per batched transaction while preloading (TXN_OPS_MAX and etcd's --max-txn-ops are 128).
PRELOAD_BATCH_KEYS = 100
PRELOAD_IN_FLIGHT = 16
# A compare-and-set loop gives up after this many failed attempts.
CAS_ATTEMPTS_MAX = 100_000
# Concurrent put loops feeding the watchers in the fan-out workload.
WATCH_WRITERS_IN_FLIGHT = 4
# Registry names attached to one lease before the next lease is granted.
NAMES_PER_LEASE = 500
LEASE_TTL_S = 600
STAMP = struct.Struct("<d")

CORE_WORKLOADS = ("put", "get", "sdk-put", "sdk-get", "incr-hot", "incr-spread", "cas-own", "cas-hot", "txn")
OPTIONAL_WORKLOADS = ("register", "whereis", "watch-fanout", "watch-fanout-mux", "crdt-counter", "crdt-set")
WORKLOADS = CORE_WORKLOADS + OPTIONAL_WORKLOADS

DESCRIPTIONS = {
    "put": "Put of a 16 B key (random among --keys) with a 100 B value",
    "get": "linearizable Get/Range of one preloaded key (random among --keys)",
    "sdk-put": "put through the SDK (TandemKV: one AsyncClient, pipelining on; etcd: not run)",
    "sdk-get": "linearizable get through the SDK (TandemKV: one AsyncClient, pipelining on; etcd: not run)",
    "incr-hot": "increment one shared counter (TandemKV: Counter.Incr; etcd: Txn CAS loop)",
    "incr-spread": "increment the worker's own counter (TandemKV: Counter.Incr; etcd: Txn CAS loop)",
    "cas-own": "Txn compare-and-swap increment of the worker's own key (value == old -> put old+1)",
    "cas-hot": "the same Txn compare-and-swap increment on one shared key",
    "txn": "Txn: 1 version compare, 3 puts to the worker's own keys",
    "register": "registry Register of a fresh name (etcd: Txn create-if-absent)",
    "whereis": "registry Whereis of a registered name (etcd: linearizable Range)",
    "watch-fanout": "N watchers on one prefix, 4 writers putting into it; events delivered/s",
    "watch-fanout-mux": "watch-fanout with the N watchers on one multiplexed stream (TandemKV: the SDK's watches)",
    "crdt-counter": "CRDT PN-counter increment (available plane)",
    "crdt-set": "CRDT OR-set add (available plane)",
}

Driver = Callable[[int, float, str, "float | None"], Awaitable[RunResult]]


@dataclasses.dataclass
class Workload:
    """`prepare(concurrency)` runs before a point's warm-up (preloads keys);
    `op(worker)` is one measured operation. A workload with a `driver`
    (watch fan-out) measures itself: driver(concurrency, seconds, mode, rate)."""

    name: str
    op: Operation | None = None
    prepare: Callable[[int], Awaitable[None]] | None = None
    driver: Driver | None = None
    unit: str = "ops/s"


@dataclasses.dataclass
class Options:
    value_bytes: int = VALUE_BYTES_DEFAULT
    key_count: int = KEY_COUNT_DEFAULT
    # The SDK's TLSConfig against a cluster that speaks TLS (suite --tls); None: plaintext.
    tls: object = None


def key(index: int) -> bytes:
    """A 16-byte key, `k` and 15 digits."""
    return b"k%015d" % index


def own_key(worker: int, slot: int = 0) -> bytes:
    """The worker's own 16-byte key number `slot`."""
    return b"o%02d%013d" % (slot, worker)


def value(size_bytes: int) -> bytes:
    return b"v" * size_bytes


def stamped_value(size_bytes: int) -> bytes:
    """A value that starts with the time it was sent (perf_counter seconds)."""
    stamp = STAMP.pack(time.perf_counter())
    return stamp + b"v" * max(0, size_bytes - STAMP.size)


def stamp_age_s(stamped: bytes) -> float:
    return time.perf_counter() - STAMP.unpack_from(stamped)[0]


_unique = itertools.count()


def unique_suffix() -> int:
    """A number no other call in this process returns (fresh names and prefixes)."""
    return next(_unique)


async def preload(put_batch: Callable[[list[bytes]], Awaitable[None]], keys: list[bytes]) -> None:
    """Writes `keys` in batches of PRELOAD_BATCH_KEYS, PRELOAD_IN_FLIGHT at once."""
    batches = [keys[i:i + PRELOAD_BATCH_KEYS] for i in range(0, len(keys), PRELOAD_BATCH_KEYS)]
    pending = iter(batches)

    async def worker() -> None:
        for batch in pending:
            await put_batch(batch)

    await asyncio.gather(*(worker() for _ in range(PRELOAD_IN_FLIGHT)))
