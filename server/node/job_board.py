"""`node.jobs.board` (`NodeJobBoard`): job progress and worker heartbeats
on this node's available plane, never a Raft write per report or beat.
The rules (keys, values, what is shown, what leaves) are the pure
server/available/job_board.py's; this file reads and writes its two keyed
tables through `node.crdt` and reads jobs from this node's replica
(a stale query, which reads local state).

The tables are catalogued through Raft the first time this node needs one
(one write per table for the cluster's life, then never again). A report
or a beat is durable on this node when the call returns and reaches the
others by gossip.

Entries leave in two ways: soon, when a complete, fail, settle, retry,
cancel or discard through this node ends the claim (`forget_soon`, off
the call's path: one drain on the executor at a time removes the ids
queued meanwhile, at most JOB_PROGRESS_FORGETS_QUEUED_MAX; reads never
show the progress of an ended claim anyway); and by a sweep that
any call here starts at most every JOB_BOARD_SWEEP_INTERVAL_MS, looking at
up to JOB_BOARD_SWEEP_KEYS_MAX keys of each table and going on from there
the next time. Reads filter by the same rules, so what a sweep has not
reached yet is never shown. Every method is safe from any thread; none
but `forget_soon` runs on the event loop (the servicer runs them on its
executor).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, NotFound, TandemKVError
from tandemkv.server.available import job_board as rules
from tandemkv.server.available.crdt.mutations import Assign
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class NodeJobBoard:
    def __init__(self, node: "Node") -> None:
        self._node = node
        self._lock = threading.Lock()
        self._known_tables: set[str] = set()
        # Monotonic seconds until which a table found absent is taken as absent (no catalogue read).
        self._absent_until: dict[str, float] = {}
        self._next_sweep_at = 0.0
        self._resume: dict[str, bytes | None] = {rules.PROGRESS_TABLE: None, rules.WORKERS_TABLE: None}
        self._forgets_lock = threading.Lock()
        self._to_forget: list[int] = []
        self._draining = False

    # -- writes --
    def progress(self, request: J.JobProgressRequest, *, timeout_s: float | None = None) -> J.JobProgressResponse:
        """Records the progress of the claim `request.token` of a job.
        FailedPrecondition when this replica knows that claim has ended."""
        reason = rules.stale_token_reason(self._job(request.id), request.token)
        if reason:
            raise FailedPrecondition(reason)
        self._ensure(rules.PROGRESS_TABLE, timeout_s)
        entry = J.JobProgress(id=request.id, token=request.token, progress=request.progress, note=request.note,
                              at_ms=_now_ms(), node=self._node_name())
        node_name = self._node.crdt.update(rules.PROGRESS_TABLE, Assign(entry.SerializeToString()),
                               key=rules.progress_key(request.id), timeout_s=timeout_s)
        self.sweep_if_due()
        return J.JobProgressResponse(node=node_name)

    def heartbeat(self, request: J.JobHeartbeatRequest, *,
                  timeout_s: float | None = None) -> J.JobHeartbeatResponse:
        """Records a worker's beat (or, stopping, removes its entry)."""
        self._ensure(rules.WORKERS_TABLE, timeout_s)
        key = rules.worker_key(request.queue, request.worker)
        if request.stopping:
            node_name = self._node.crdt.remove_entry(rules.WORKERS_TABLE, key, timeout_s=timeout_s)
        else:
            entry = J.JobWorker(queue=request.queue, worker=request.worker, running=request.running,
                                beat_ms=_now_ms(), node=self._node_name())
            node_name = self._node.crdt.update(rules.WORKERS_TABLE, Assign(entry.SerializeToString()), key=key,
                                   timeout_s=timeout_s)
        self.sweep_if_due()
        return J.JobHeartbeatResponse(node=node_name)

    def forget(self, job_id: int) -> None:
        """Removes a job's progress now: its claim ended through this node.
        Best effort: the sweep removes what this misses."""
        self.forget_many([job_id])

    def forget_many(self, job_ids: list[int]) -> None:
        """`forget` for each of `job_ids` (a Settle's settled jobs), in one call."""
        if not self._known(rules.PROGRESS_TABLE, trust_absence=True):
            return  # no progress table in this node's catalogue: nothing to remove
        for job_id in job_ids:
            key = rules.progress_key(job_id)
            try:
                if self._node.crdt.read(rules.PROGRESS_TABLE, key).value is not None:
                    self._node.crdt.remove_entry(rules.PROGRESS_TABLE, key)
            except TandemKVError as error:
                log.info("progress of job %d not removed now (%s); the sweep will", job_id, error)

    def forget_soon(self, job_ids: Iterable[int], submit: Callable[[Callable[[], None]], object]) -> None:
        """Queues `job_ids` for `forget` and, unless a drain is under way,
        starts one with `submit` (the loop's executor): cheap enough for
        the event loop, so a call that ended claims answers without waiting
        for the removal (a thread hop on every such call cost a busy worker
        a sixth of its jobs per second)."""
        if self._absence_trusted(rules.PROGRESS_TABLE):
            return  # no progress table here: nothing to remove, and no thread hop to learn it
        with self._forgets_lock:
            room = limits.JOB_PROGRESS_FORGETS_QUEUED_MAX - len(self._to_forget)
            self._to_forget.extend(list(job_ids)[:max(0, room)])
            if self._draining or not self._to_forget:
                return
            self._draining = True
        try:
            submit(self._drain_forgets)
        except RuntimeError as refused:  # the executor is shutting down: the ids wait for the next call
            with self._forgets_lock:
                self._draining = False
            log.info("progress of %d finished claims not removed now (%s); the sweep will", len(self._to_forget),
                     refused)

    def _drain_forgets(self) -> None:
        while True:
            with self._forgets_lock:
                batch, self._to_forget = self._to_forget, []
                if not batch:
                    self._draining = False
                    return
            try:
                self.forget_many(batch)
            except Exception:  # noqa: BLE001 - best effort: the sweep removes what this misses
                log.exception("removing the progress of %d finished claims failed", len(batch))

    # -- reads --
    def progress_of(self, job: J.Job) -> J.JobProgress | None:
        """The last progress of the job's current claim, as this node has it."""
        if not self._known(rules.PROGRESS_TABLE):
            return None
        raw = self._node.crdt.read(rules.PROGRESS_TABLE, rules.progress_key(job.id)).value
        entry = None if raw is None else J.JobProgress.FromString(raw)
        return rules.progress_shown(entry, job, _now_ms())

    def workers(self, request: J.JobWorkersRequest, *, timeout_s: float | None = None) -> J.JobWorkersResponse:
        self.sweep_if_due()
        entries = self._worker_entries(request.queue)
        return J.JobWorkersResponse(workers=rules.live_workers(entries, request.queue, _now_ms()))

    def workers_per_queue(self) -> dict[bytes, tuple[int, int]]:
        """queue -> (live workers, jobs they run), for the dashboard."""
        return rules.workers_per_queue(self._worker_entries(b""), _now_ms())

    def _worker_entries(self, queue: bytes) -> list[J.JobWorker]:
        if not self._known(rules.WORKERS_TABLE):
            return []
        prefix = rules.queue_key_prefix(queue) if queue else b""
        entries: list[J.JobWorker] = []
        after = None
        while len(entries) < limits.JOB_WORKERS_LIST_MAX:
            page = self._node.crdt.scan_keys(rules.WORKERS_TABLE, prefix, after=after,
                                             limit=limits.JOB_WORKERS_LIST_MAX)
            entries += [J.JobWorker.FromString(v.value) for v in page.values if v.value is not None]
            if page.resume_after is None:
                break
            after = page.resume_after
        return entries

    # -- the sweep --
    def sweep_if_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next_sweep_at:
                return
            self._next_sweep_at = now + limits.JOB_BOARD_SWEEP_INTERVAL_MS / 1000
        try:
            self.sweep()
        except TandemKVError as error:  # stopping, or the plane is not running
            log.info("job board sweep skipped (%s)", error)

    def sweep(self) -> int:
        """One bounded pass over each table: removes what leaves by the
        rules. Returns how many entries it removed."""
        now_ms = _now_ms()
        applied_index = self._node.status().applied_index
        removed = 0
        for table in (rules.PROGRESS_TABLE, rules.WORKERS_TABLE):
            if not self._known(table):
                continue
            page = self._node.crdt.scan_keys(table, b"", after=self._resume[table],
                                             limit=limits.JOB_BOARD_SWEEP_KEYS_MAX)
            self._resume[table] = page.resume_after
            for value in page.values:
                if value.value is None or not self._leaves(table, value.value, now_ms, applied_index):
                    continue
                self._node.crdt.remove_entry(table, value.key)
                removed += 1
        return removed

    def _leaves(self, table: str, raw: bytes, now_ms: int, applied_index: int) -> bool:
        if table == rules.WORKERS_TABLE:
            return rules.worker_stale(J.JobWorker.FromString(raw), now_ms)
        entry = J.JobProgress.FromString(raw)
        return rules.progress_leaves(entry, self._job(entry.id), now_ms, applied_index)

    # -- helpers --
    def _job(self, job_id: int) -> J.Job | None:
        answer = self._node.query(J.JobGetRequest(id=job_id, consistency=kv_pb2.STALE))
        return answer.job if answer.found else None

    def _known(self, table: str, trust_absence: bool = False) -> bool:
        """Whether this node's catalogue has `table`. `trust_absence`: an
        absence seen within JOB_BOARD_ABSENT_TABLE_RECHECK_MS is taken as
        still true (for removals, which the sweep backs up; reads look)."""
        if table in self._known_tables:
            return True
        if trust_absence and self._absence_trusted(table):
            return False
        try:
            self._node.crdt.is_keyed(table)
        except NotFound:
            self._absent_until[table] = time.monotonic() + limits.JOB_BOARD_ABSENT_TABLE_RECHECK_MS / 1000
            return False
        self._known_tables.add(table)
        self._absent_until.pop(table, None)
        return True

    def _absence_trusted(self, table: str) -> bool:
        """Whether `table` was seen absent within JOB_BOARD_ABSENT_TABLE_RECHECK_MS
        and has not been catalogued here since."""
        return table not in self._known_tables and self._absent_until.get(table, 0.0) > time.monotonic()

    def _ensure(self, table: str, timeout_s: float | None) -> None:
        """Catalogues `table` if this node does not know it yet (through
        Raft, the first time any node needs it; a create that another node
        made first changes nothing)."""
        if not self._known(table):
            self._node.crdt.create_table(table, rules.TABLE_KIND, keyed=True, timeout_s=timeout_s)
            self._known_tables.add(table)

    def _node_name(self) -> str:
        return getattr(getattr(self._node, "config", None), "name", "")
