"""Client workloads that run through the SDK while the nemesis works, and
record every operation into a `History`.

Six workloads, each on keys that rotate so no key sees more than a few
hundred operations (the checker's search is per key):
- register: `reg/<n>` KV keys; get (linearizable), put of a unique value,
  and compare-and-set as a transaction that compares the value
  (`txn().compare_value(k, "==", old).on_success(Op.put(k, new))`).
- counter: `ctr/<n>` counters; `incr` by 1..3 (output: the new value) and
  linearizable `get`. The final value is checked with check_counter_final.
- set: `set/<n>` is a grow-only set of keys `set/<n>/<element>`; an add is
  a put of a unique element, a read a linearizable prefix range. The final
  read is checked with check_set_final.

Outcomes, from the SDK's contract (see client/_retry.py):
- a return value: ok;
- `OutcomeUnknown`: unknown (the write may apply at any later time); the
  worker then continues under a new process id;
- `Unavailable`: fail (definitely not applied) — except for a write one of
  whose attempts broke at the transport (connection reset or closed by a
  killed node): the request may have reached the server, so it is unknown
  (`TrackingClient`, in tracking.py, notices those attempts, also when
  the workers share one pipelining client);
- any other TandemKV error on a write: unknown, and counted as unexpected.
A read that does not return is recorded as failed: it changes nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import random
import threading
import time
from typing import Any, Callable

from tandemkv import errors
from tandemkv.client import Client, Op, Retry
from tandemkv.client import _coordination_ops as cops
from tandemkv.client._crdt import plain

from .history import History, HistoryFullError
from .models import CLAIM_GRANTED, CLAIM_TAKEN
from .tracking import TrackingClient

WORKLOAD_KINDS = ("register", "counter", "set", "registry", "lock", "crdt")
DEFAULT_WORKLOADS = ("register", "counter", "set")
# Operations one key sees at most before its workload moves to a new key.
# A CRDT table is never retired: creating one needs a quorum, and every
# member stays in the one final read anyway.
OPS_PER_KEY_MAX = {"register": 200, "counter": 200, "set": 120, "registry": 150, "lock": 150,
                   "crdt": 1_000_000}
# Keys each workload works on at once (more keys: less contention per key).
ACTIVE_KEYS = {"register": 3, "counter": 2, "set": 2, "registry": 2, "lock": 2, "crdt": 1}
# Seconds a worker's lease lives: far beyond any run, so no claim expires.
LEASE_TTL_S = 24 * 3600.0
# Convergence of CRDT replicas after the heal: the deadline, and the pause
# between rounds of reads (gossip rounds are 1 s).
CRDT_CONVERGE_S_MAX = 60.0
CRDT_CONVERGE_POLL_S = 0.5
# One SDK call: attempts and the budget for all of them, in seconds.
WORKLOAD_RETRY = Retry(attempts_max=4, deadline_s=3.0, attempt_timeout_s=1.0,
                       backoff_initial_s=0.05, backoff_max_s=0.5)
# Final reads after healing are patient: the cluster must answer them.
FINAL_READ_RETRY = Retry(attempts_max=20, deadline_s=30.0, attempt_timeout_s=3.0)
class Processes:
    """Process ids for the history: unique, thread-safe."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def new(self) -> int:
        with self._lock:
            return next(self._ids)


class KeyRotation:
    """The keys one workload works on: `active` at a time, each retired
    after `ops_per_key_max` operations. Every key handed out is remembered
    for the final reads."""

    def __init__(self, prefix: str, active: int, ops_per_key_max: int):
        self.prefix = prefix
        self.ops_per_key_max = ops_per_key_max
        self._lock = threading.Lock()
        self._next = 0
        self._counts: dict[str, int] = {}
        self._active = [self._fresh() for _ in range(active)]

    def _fresh(self) -> str:
        key = f"{self.prefix}/{self._next}"
        self._next += 1
        self._counts[key] = 0
        return key

    def pick(self, rng: random.Random) -> str:
        with self._lock:
            slot = rng.randrange(len(self._active))
            key = self._active[slot]
            self._counts[key] += 1
            if self._counts[key] >= self.ops_per_key_max:
                self._active[slot] = self._fresh()
            return key

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._counts)


@dataclasses.dataclass
class Tally:
    """Counts the runner reports; thread-safe through `add`."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[name] += amount


class Worker:
    """One client thread's state: its process id and its view of values."""

    def __init__(self, history: History, client: TrackingClient, processes: Processes, tally: Tally,
                 rng: random.Random):
        self.history = history
        self.client = client
        self.processes = processes
        self.tally = tally
        self.rng = rng
        self.process = processes.new()
        self.sequence = itertools.count()
        self.last_value: dict[str, str] = {}
        # The lease registry names and locks are claimed under, and the
        # claims it holds: name -> (owner, token).
        self.lease: int | None = None
        self.held: dict[str, tuple[Any, int]] = {}
        # True: record every Unavailable as failed, as the SDK's docs say
        # (to test that contract) instead of the transport-aware default.
        self.trust_unavailable = False

    def unique(self) -> str:
        return f"p{self.process}-{next(self.sequence)}"

    def perform(self, key: str, kind: str, input: Any, call: Callable[[], Any], write: bool) -> tuple[str, Any]:
        """Runs `call` and records it; returns (outcome, output)."""
        handle = self.history.invoke(self.process, key, kind, input)
        self.client.begin_call()
        try:
            output = call()
        except errors.OutcomeUnknown:
            return self._unknown(handle, "unknown:timeout")
        except errors.Unavailable:
            if write and self.client.write_maybe_sent() and not self.trust_unavailable:
                return self._unknown(handle, "unknown:transport")
            self.history.fail(handle)
            self.tally.add("fail")
            return "fail", None
        except errors.TandemKVError as error:
            self.tally.add(f"unexpected:{type(error).__name__}")
            if write:
                return self._unknown(handle, "unknown:unexpected")
            self.history.fail(handle)
            return "fail", None
        self.history.ok(handle, output)
        self.tally.add("ok")
        return "ok", output

    def _unknown(self, handle: int, reason: str) -> tuple[str, Any]:
        self.history.unknown(handle)
        self.tally.add("unknown")
        self.tally.add(reason)
        self.process = self.processes.new()
        # What the lease holds is no longer known: claim under a new one.
        self.lease = None
        self.held.clear()
        return "unknown", None

    def ensure_lease(self) -> bool:
        """Whether the worker has a lease, granting one if needed."""
        if self.lease is None:
            try:
                self.lease = self.client.lease(LEASE_TTL_S).id
            except errors.TandemKVError as error:
                self.tally.add(f"lease-grant-failed:{type(error).__name__}")
                return False
        return True


def _put(client: Client, key: str, value: str) -> None:
    """A put whose recorded output is None (the register model ignores it)."""
    client.put(key, value)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def register_step(worker: Worker, rotation: KeyRotation) -> None:
    key = rotation.pick(worker.rng)
    client, draw = worker.client, worker.rng.random()
    expected = worker.last_value.get(key)
    if draw < 0.4:
        outcome, output = worker.perform(key, "read", None, lambda: _text(client.get(key)), write=False)
        if outcome == "ok" and output is not None:
            worker.last_value[key] = output
        return
    new = worker.unique()
    if draw < 0.7 or expected is None:
        outcome, _ = worker.perform(key, "write", new, lambda: _put(client, key, new), write=True)
    else:
        def swap() -> bool:
            return client.txn().compare_value(key, "==", expected).on_success(Op.put(key, new)).commit().succeeded
        outcome, _ = worker.perform(key, "cas", (expected, new), swap, write=True)
    if outcome == "ok":
        worker.last_value[key] = new


def counter_step(worker: Worker, rotation: KeyRotation) -> None:
    name = rotation.pick(worker.rng)
    counter = worker.client.counter(name)
    if worker.rng.random() < 0.3:
        worker.perform(name, "read", None, counter.get, write=False)
        return
    delta = worker.rng.randint(1, 3)
    worker.perform(name, "incr", delta, lambda: counter.incr(delta), write=True)


def read_set(client: Client, name: str) -> frozenset[str]:
    """Every element of set `name` (a linearizable prefix range)."""
    prefix = f"{name}/"
    result = client.range(prefix)
    assert not result.more, f"set {name} has more elements than one range returns"
    return frozenset(kv.key.decode()[len(prefix):] for kv in result)


def set_step(worker: Worker, rotation: KeyRotation) -> None:
    name = rotation.pick(worker.rng)
    client = worker.client
    if worker.rng.random() < 0.2:
        worker.perform(name, "read", None, lambda: read_set(client, name), write=False)
        return
    element = worker.unique()
    worker.perform(name, "add", element, lambda: _put(client, f"{name}/{element}", "1"), write=True)


def read_registry(client: Client, name: str) -> tuple[str, int, int] | None:
    """The holder of registry name `name` as (owner, lease, token), or None."""
    found = client.registry.whereis(name)
    return None if found is None else (found.value.decode(), found.lease, found.token)


def _register(client: Client, name: str, value: str, lease: int) -> tuple:
    try:
        return CLAIM_GRANTED, client.registry.register(name, value, lease)
    except errors.AlreadyExists as taken:
        owner = None if taken.owner is None else taken.owner.decode()
        return CLAIM_TAKEN, owner, taken.token


def registry_step(worker: Worker, rotation: KeyRotation) -> None:
    name = rotation.pick(worker.rng)
    if not worker.ensure_lease():
        return
    client, lease, held = worker.client, worker.lease, worker.held.get(name)
    if worker.rng.random() < 0.3:
        worker.perform(name, "read", None, lambda: read_registry(client, name), write=False)
    elif held is not None:
        owner, token = held
        outcome, _ = worker.perform(name, "release", (owner, lease, token),
                                    lambda: client.registry.unregister(name, token), write=True)
        if outcome == "ok":
            worker.held.pop(name, None)
    else:
        value = worker.unique()
        outcome, output = worker.perform(name, "claim", (value, lease),
                                         lambda: _register(client, name, value, lease), write=True)
        if outcome == "ok" and output[0] == CLAIM_GRANTED:
            worker.held[name] = (value, output[1])


def try_lock(client: Client, name: str, lease: int) -> tuple:
    """One Lock Acquire with no wait (what the SDK's Lock sends, without
    its lease and retry loop)."""
    response = client.run(cops.lock_acquire(name.encode(), lease, 0.0))
    if response.acquired:
        return CLAIM_GRANTED, response.claim.token
    return CLAIM_TAKEN, response.claim.lease, response.claim.token


def lock_step(worker: Worker, rotation: KeyRotation) -> None:
    name = rotation.pick(worker.rng)
    if not worker.ensure_lease():
        return
    client, lease, held = worker.client, worker.lease, worker.held.get(name)
    if held is not None:
        token = held[1]
        outcome, _ = worker.perform(name, "release", (lease, lease, token),
                                    lambda: client.run(cops.lock_release(name.encode(), token)), write=True)
        if outcome == "ok":
            worker.held.pop(name, None)
        return
    outcome, output = worker.perform(name, "claim", (lease, lease), lambda: try_lock(client, name, lease),
                                     write=True)
    if outcome == "ok" and output[0] == CLAIM_GRANTED:
        worker.held[name] = (lease, output[1])


def read_crdt_set(client: Client, table: str) -> frozenset[str]:
    """The members of CRDT set `table` on the first node that answers."""
    return frozenset(member.decode() for member in plain(client.crdt.read(table)))


def crdt_step(worker: Worker, rotation: KeyRotation) -> None:
    table = rotation.pick(worker.rng)
    member = worker.unique()
    crdt_set = worker.client.crdt.set(table)
    worker.perform(table, "add", member, lambda: crdt_set.add(member), write=True)


STEPS = {"register": register_step, "counter": counter_step, "set": set_step, "registry": registry_step,
         "lock": lock_step, "crdt": crdt_step}
PREFIXES = {"register": "reg", "counter": "ctr", "set": "set", "registry": "name", "lock": "lock",
            "crdt": "crdt"}


def endpoints_for(kind: str, index: int, endpoints: list[str]) -> list[str]:
    """The endpoints worker `index` of `kind` tries in order: CRDT workers
    start on different nodes (their updates stay on the node that answers)."""
    if kind != "crdt":
        return list(endpoints)
    shift = index % len(endpoints)
    return endpoints[shift:] + endpoints[:shift]


def workload_of_key(key: str) -> str:
    prefix = key.split("/", 1)[0]
    return next(kind for kind, known in PREFIXES.items() if known == prefix)


def run_worker(kind: str, worker: Worker, rotation: KeyRotation, stop: threading.Event, deadline: float,
               ops_max: int) -> None:
    """Runs `kind` steps until `stop`, the deadline (monotonic seconds) or
    `ops_max` steps. The client is the runner's to close (workers share it)."""
    step = STEPS[kind]
    try:
        for _ in range(ops_max):
            if stop.is_set() or time.monotonic() >= deadline:
                break
            step(worker, rotation)
    except HistoryFullError:
        worker.tally.add("history-full")


def final_read(client: Client, key: str) -> Any:
    """The value of `key` for its workload's final check (not for crdt or
    lock keys: see final_crdt_read and try_lock)."""
    kind = workload_of_key(key)
    if kind == "register":
        return _text(client.get(key))
    if kind == "counter":
        return client.counter(key).get()
    if kind == "registry":
        return read_registry(client, key)
    return read_set(client, key)


def final_crdt_read(clients: dict[str, Client], table: str, deadline_s: float = CRDT_CONVERGE_S_MAX
                    ) -> tuple[tuple[str, frozenset[str]], ...]:
    """Every node's members of `table` (pairs of node and members), read
    again until they agree or `deadline_s` passes; the last reads either
    way. `clients` maps a node's name to a client of that node alone."""
    deadline = time.monotonic() + deadline_s
    rounds_max = int(deadline_s / CRDT_CONVERGE_POLL_S) + 1
    reads: dict[str, frozenset[str]] = {}
    for _ in range(rounds_max):
        for node, client in sorted(clients.items()):
            try:
                reads[node] = read_crdt_set(client, table)
            except errors.TandemKVError:
                reads.pop(node, None)
        if len(reads) == len(clients) and len(set(reads.values())) == 1:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(CRDT_CONVERGE_POLL_S)
    return tuple(sorted(reads.items()))
