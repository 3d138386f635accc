"""The presence workload of a fault run: clients that track, update and
untrack on different nodes under leases, and a sampler that lists every
topic on every node, all recording what they did for presence_check.py.

A client is bound to one node (as a process using presence through the
node it is connected to) and talks to it over raw gRPC, so every call is
recorded as sent: the SDK would move a lost session to another node and
track again by itself. Each client holds one session at a time, with a
short TTL (seconds, renewed every third of it) or a long one (longer than
PRESENCE_NODE_DOWN_MS, so that only the down bound takes a killed node's
entries away), and on it:

- tracks a key (metadata: a counter), updates one, untracks one;
- now and then closes the session, or crashes: stops renewing it and never
  touches it again (short TTLs only; the lease ends it);
- a call of unknown outcome (a deadline, a broken connection) leaves the
  session in doubt: the client closes it, trying again until the close is
  answered or CLOSE_GIVE_UP_S passes (then it abandons it, as a crash);
- NOT_FOUND means the session is gone (expired while its node was paused,
  or its node restarted): recorded as lost; the client opens another.

`hold()` stops the changes: clients only renew what they hold (and finish
closing what is in doubt), so the run's end has a model to compare with.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

import grpc

from tandemkv.v1 import presence_pb2, presence_pb2_grpc

from .presence_check import ABANDONED, CLOSED, FAILED, LOST, OK, UNKNOWN, Call, Observation, Session

TOPICS = ("lobby", "room:1", "room:2")
KEYS = tuple(f"user{number}" for number in range(8))
TTL_SHORT_MS = 3_000
TTL_LONG_MS = 20_000
# One call's deadline, and the pause between a client's actions.
CALL_TIMEOUT_S = 2.0
ACTION_GAP_S_RANGE = (0.05, 0.25)
# How long a client tries to close a session left in doubt before it abandons it.
CLOSE_GIVE_UP_S = 20.0
CLOSE_RETRY_S = 0.3
# What a client does next, and how often.
ACTIONS = ("track", "update", "untrack", "close", "crash", "idle")
ACTION_WEIGHTS = (40, 20, 25, 2, 2, 11)
# Entries one client tracks at most in its session.
TRACKED_MAX = 6
# How often the sampler lists every topic on every node, and the deadline of one list.
SAMPLE_EVERY_S = 0.3
LIST_TIMEOUT_S = 1.0
# Statuses that say a call was surely not applied; any other failure is an unknown outcome.
NOT_APPLIED = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
               grpc.StatusCode.RESOURCE_EXHAUSTED}


def listing_of(response: presence_pb2.PresenceListResponse) -> dict[str, list[tuple[str, str]]]:
    return {entry.key.decode(): sorted((m.ref, m.meta.decode()) for m in entry.metas) for entry in response.keys}


class Record:
    """What every thread of the run recorded, under one lock."""

    def __init__(self, started_at: float):
        self.started_at = started_at
        self.lock = threading.Lock()
        self.sessions: list[Session] = []
        self.observations: list[Observation] = []
        self.unexpected: list[str] = []
        self.counts: dict[str, int] = {}

    def now(self) -> float:
        return time.monotonic() - self.started_at

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1


class PresenceClient:
    """One client thread bound to node `node` at `endpoint`."""

    def __init__(self, name: str, node: str, endpoint: str, record: Record, rng: random.Random):
        self.name, self.node, self.record, self.rng = name, node, record, rng
        self.channel = grpc.insecure_channel(endpoint)
        self.stub = presence_pb2_grpc.PresenceStub(self.channel)
        self.session: Session | None = None
        self.tracked: dict[tuple[str, str], int] = {}
        self.next_renewal_s = 0.0
        self.holding = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- the loop ---------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                if self.session is None:
                    if not self.holding.is_set():
                        self._open()
                elif self.record.now() >= self.next_renewal_s:
                    self._renew()
                elif not self.holding.is_set():
                    self._act()
                self.stopping.wait(self.rng.uniform(*ACTION_GAP_S_RANGE))
        except Exception as error:  # noqa: BLE001 - a harness bug fails the run, with its cause
            with self.record.lock:
                self.record.unexpected.append(f"{self.name}: {type(error).__name__}: {error}")

    def _act(self) -> None:
        """One action, drawn by weight; one that cannot be done now (nothing to untrack) is skipped."""
        topic, key = self.rng.choice(TOPICS), self.rng.choice(KEYS)
        mine = sorted(self.tracked)
        action = self.rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
        if action == "track" and (topic, key) not in self.tracked and len(mine) < TRACKED_MAX:
            self._write("track", topic, key)
        elif action in ("update", "untrack") and mine:
            self._write(action, *self.rng.choice(mine))
        elif action == "close":
            self._close()
        elif action == "crash" and self.session.ttl_s * 1000 == TTL_SHORT_MS:
            self._end(ABANDONED)          # never renewed, never closed
            self.record.count("crashes")

    # -- calls --------------------------------------------------------------

    def _call(self, kind: str, method: Callable, request, **fields) -> tuple[Call, object, grpc.StatusCode | None]:
        start = self.record.now()
        try:
            response = method(request, timeout=CALL_TIMEOUT_S)
            code, outcome = None, OK
        except grpc.RpcError as error:
            response, code = None, error.code()
            outcome = FAILED if code in NOT_APPLIED else UNKNOWN
        call = Call(kind, start, self.record.now(), outcome, **fields)
        self.record.count(f"{kind}_{outcome}")
        return call, response, code

    def _open(self) -> None:
        ttl_ms = TTL_SHORT_MS if self.rng.random() < 0.7 else TTL_LONG_MS
        call, response, _ = self._call("open", self.stub.Open, presence_pb2.PresenceOpenRequest(ttl_ms=ttl_ms))
        if call.outcome != OK:
            return  # a session opened unanswered holds nothing and ends by its TTL
        self.session = Session(response.session, self.node, ttl_ms / 1000, [call])
        with self.record.lock:
            self.record.sessions.append(self.session)
        self.tracked = {}
        self.next_renewal_s = call.end_s + self.session.ttl_s / 3

    def _renew(self) -> None:
        call, _, code = self._call("keepalive", self.stub.KeepAlive, self._session_request())
        self._keep(call)
        if call.outcome == OK:
            self.next_renewal_s = call.end_s + self.session.ttl_s / 3
        elif code == grpc.StatusCode.NOT_FOUND:
            self._end(LOST)
        else:
            self.next_renewal_s = self.record.now() + CLOSE_RETRY_S  # renewals are safe to repeat

    def _write(self, kind: str, topic: str, key: str) -> None:
        version = self.tracked.get((topic, key), 0) + 1
        meta = f"{self.name}:{version}" if kind != "untrack" else ""
        method = {"track": self.stub.Track, "update": self.stub.Update, "untrack": self.stub.Untrack}[kind]
        request = presence_pb2.PresenceTrackRequest(session=self.session.session, topic=topic.encode(),
                                                    key=key.encode(), meta=meta.encode())
        call, response, code = self._call(kind, method, request, topic=topic, key=key, meta=meta)
        if call.outcome == OK:
            call.ref = response.ref if kind != "untrack" else ""
            self._keep(call)
            if kind == "untrack":
                self.tracked.pop((topic, key), None)
            else:
                self.tracked[(topic, key)] = version
        elif code == grpc.StatusCode.NOT_FOUND:
            self._keep(call)
            self._end(LOST)
        elif call.outcome == FAILED:
            self._keep(call)
            with self.record.lock:
                self.record.unexpected.append(f"{self.name}: {kind} {topic}/{key} refused: {code}")
        else:
            self._keep(call)
            self._close()   # the session is in doubt: end it

    def _close(self) -> None:
        give_up = self.record.now() + CLOSE_GIVE_UP_S
        while self.record.now() < give_up and not self.stopping.is_set():
            call, _, code = self._call("close", self.stub.Close, self._session_request())
            self._keep(call)
            if call.outcome == OK:
                self._end(CLOSED)
                return
            self.stopping.wait(CLOSE_RETRY_S)
        self._end(ABANDONED)

    # -- inside ------------------------------------------------------------

    def _session_request(self) -> presence_pb2.PresenceSessionRequest:
        return presence_pb2.PresenceSessionRequest(session=self.session.session)

    def _keep(self, call: Call) -> None:
        with self.record.lock:
            self.session.calls.append(call)

    def _end(self, how: str) -> None:
        with self.record.lock:
            self.session.end, self.session.end_s = how, self.record.now()
        self.session = None
        self.tracked = {}

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(CLOSE_GIVE_UP_S + 2 * CALL_TIMEOUT_S)
        self.channel.close()


class Sampler:
    """Lists every topic on every node every SAMPLE_EVERY_S, recording each answer."""

    def __init__(self, endpoints: dict[str, str], record: Record):
        self.record = record
        self.channels = {node: grpc.insecure_channel(endpoint) for node, endpoint in endpoints.items()}
        self.stubs = {node: presence_pb2_grpc.PresenceStub(channel) for node, channel in self.channels.items()}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="presence-sampler", daemon=True)

    def list_all(self) -> dict[str, dict[str, dict | None]]:
        """node -> topic -> listing (None: no answer), each answer recorded."""
        answers: dict[str, dict[str, dict | None]] = {}
        for node, stub in self.stubs.items():
            answers[node] = {}
            for topic in TOPICS:
                sent = self.record.now()
                try:
                    response = stub.List(presence_pb2.PresenceListRequest(topic=topic.encode()),
                                         timeout=LIST_TIMEOUT_S)
                except grpc.RpcError:
                    answers[node][topic] = None
                    continue
                listing = listing_of(response)
                answers[node][topic] = listing
                with self.record.lock:
                    self.record.observations.append(Observation(node, topic, sent, self.record.now(), listing))
        return answers

    def _run(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY_S):
            self.list_all()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(len(self.stubs) * len(TOPICS) * LIST_TIMEOUT_S + 5)
        for channel in self.channels.values():
            channel.close()

