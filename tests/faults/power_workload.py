"""The power-loss experiment's workload and its check: `Writers`, client
threads that write through the strong plane (unique keys, counter
increments) and the available plane (CRDT set members) and record every
outcome, and `verify`, which reads the cluster back and returns a `Verdict`
against everything acknowledged so far.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from tandemkv import errors
from tandemkv.client import Client, Retry

from .power_mounts import POLL_S

WRITER_THREADS = 3
# Every third operation of a writer is a counter increment.
COUNTER_EVERY = 3
COUNTER_NAME = "pl-counter"
CRDT_SET_NAME = "pl-set"
KEY_PREFIX = b"pl/"
WRITE_RETRY = Retry(attempts_max=3, deadline_s=2.0, attempt_timeout_s=1.0,
                    backoff_initial_s=0.05, backoff_max_s=0.3)
READ_RETRY = Retry(attempts_max=20, deadline_s=30.0, attempt_timeout_s=5.0)
RANGE_PAGE_KEYS = 5_000


class Writers:
    """Client threads writing unique keys and counter increments (the
    strong plane) and adding unique members to a CRDT set (the available
    plane), recording every outcome: acknowledged, or attempted with an
    unknown outcome."""

    def __init__(self, endpoints: list[str], threads: int = WRITER_THREADS):
        self.client = Client(endpoints, retry=WRITE_RETRY)
        self.lock = threading.Lock()
        self.acked_keys: dict[bytes, bytes] = {}
        self.attempted_keys: set[bytes] = set()
        self.counter_acked = 0
        self.counter_attempted = 0
        self.members_acked: set[bytes] = set()
        self.members_attempted: set[bytes] = set()
        self.acks = 0
        self.errors: dict[str, int] = {}
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), name=f"writer-{k}", daemon=True)
                        for k in range(threads)]
        self.threads.append(threading.Thread(target=self._run_crdt, name="crdt-writer", daemon=True))

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(WRITE_RETRY.deadline_s + 10.0)
        self.client.close()
        assert not any(t.is_alive() for t in self.threads), "writer threads did not stop"

    def _run(self, thread: int) -> None:
        try:
            for seq in range(1 << 62):
                if self.stop.is_set():
                    return
                if seq % COUNTER_EVERY == COUNTER_EVERY - 1:
                    self._increment()
                else:
                    self._put(thread, seq)
        except BaseException as failure:  # noqa: BLE001 (reported by check_alive)
            self.failure = failure

    def _run_crdt(self) -> None:
        try:
            crdt_set = self.client.crdt.set(CRDT_SET_NAME)
            for seq in range(1 << 62):
                if self.stop.is_set():
                    return
                member = f"member {seq:09d}".encode()
                with self.lock:
                    self.members_attempted.add(member)
                if self._attempt(lambda: crdt_set.add(member)):
                    with self.lock:
                        self.members_acked.add(member)
                        self.acks += 1
        except BaseException as failure:  # noqa: BLE001 (reported by check_alive)
            self.failure = failure

    def _put(self, thread: int, seq: int) -> None:
        key = KEY_PREFIX + f"{thread}/{seq:09d}".encode()
        value = f"value {thread}:{seq}".encode()
        with self.lock:
            self.attempted_keys.add(key)
        if self._attempt(lambda: self.client.put(key, value)):
            with self.lock:
                self.acked_keys[key] = value
                self.acks += 1

    def _increment(self) -> None:
        with self.lock:
            self.counter_attempted += 1
        if self._attempt(lambda: self.client.counter(COUNTER_NAME).incr(1)):
            with self.lock:
                self.counter_acked += 1
                self.acks += 1

    def _attempt(self, write) -> bool:
        """True if the write was acknowledged; any error leaves its outcome
        unknown (even `Unavailable`: see docs/faults.md, Findings)."""
        try:
            write()
            return True
        except errors.TandemKVError as error:
            with self.lock:
                kind = type(error).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
            return False

    def check_alive(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"a writer thread failed: {self.failure!r}") from self.failure

    def wait_for_acks(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acks < count:
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.acks} of {count} writes acknowledged within {timeout_s} s")
            time.sleep(POLL_S)


@dataclasses.dataclass
class Verdict:
    """One check of the cluster against everything acknowledged so far."""

    acked_keys: int
    counter_acked: int
    counter_value: int
    counter_attempted: int
    lost_keys: list[bytes]
    wrong_values: list[bytes]
    never_attempted: list[bytes]
    members_acked: int
    lost_members: list[bytes]
    members_never_attempted: list[bytes]

    @property
    def ok(self) -> bool:
        return (not self.lost_keys and not self.wrong_values and not self.never_attempted
                and self.counter_acked <= self.counter_value <= self.counter_attempted
                and not self.lost_members and not self.members_never_attempted)

    def describe(self) -> str:
        return (f"{len(self.lost_keys)} acknowledged keys lost (e.g. {self.lost_keys[:5]}), "
                f"{len(self.wrong_values)} with a wrong value (e.g. {self.wrong_values[:5]}), "
                f"{len(self.never_attempted)} never attempted (e.g. {self.never_attempted[:5]}); counter "
                f"{self.counter_value}, acknowledged {self.counter_acked}, attempted {self.counter_attempted}; "
                f"CRDT set: {len(self.lost_members)} acknowledged members on no node (e.g. "
                f"{self.lost_members[:5]}), {len(self.members_never_attempted)} never attempted")


def read_all(client: Client, prefix: bytes) -> dict[bytes, bytes]:
    """Every key under `prefix` with its value (linearizable, in pages)."""
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    found: dict[bytes, bytes] = {}
    start = prefix
    for _ in range(10_000):
        page = client.range(start, end=end, limit=RANGE_PAGE_KEYS)
        found.update((kv.key, kv.value) for kv in page)
        if not page.more:
            return found
        start = page[-1].key + b"\x00"
    raise AssertionError("range paging did not end")


def verify(writers: Writers, endpoints: list[str]) -> Verdict:
    # What was acknowledged before the reads start must be in what they see;
    # what they see must have been attempted before they ended.
    # A CRDT update is durable on the node that took it before it is
    # acknowledged, so each must be on at least one node.
    with writers.lock:
        acked_keys = dict(writers.acked_keys)
        counter_acked = writers.counter_acked
        members_acked = set(writers.members_acked)
    with Client(endpoints, retry=READ_RETRY) as client:
        present = read_all(client, KEY_PREFIX)
        counter_value = client.counter(COUNTER_NAME).get()
    members: set[bytes] = set()
    for endpoint in endpoints:
        with Client([endpoint], retry=READ_RETRY) as client:
            members.update(client.crdt.set(CRDT_SET_NAME).members())
    with writers.lock:
        attempted_keys = set(writers.attempted_keys)
        counter_attempted = writers.counter_attempted
        members_attempted = set(writers.members_attempted)
    return Verdict(
        acked_keys=len(acked_keys), counter_acked=counter_acked, counter_value=counter_value,
        counter_attempted=counter_attempted,
        lost_keys=sorted(k for k in acked_keys if k not in present),
        wrong_values=sorted(k for k, v in acked_keys.items() if k in present and present[k] != v),
        never_attempted=sorted(k for k in present if k not in attempted_keys),
        members_acked=len(members_acked),
        lost_members=sorted(members_acked - members),
        members_never_attempted=sorted(members - members_attempted),
    )
