"""`Worker`: runs a queue's jobs through a blocking handler on a bounded
pool of threads, for `Client.jobs.worker`, and `WorkerMethods`, the
`worker` and `run_many` of `Client.jobs` (`_jobs.Jobs`). The decisions are
`WorkerCore`'s (`_job_worker_policy`) and `RunMany`'s (`_job_run_many`),
shared with the asyncio face; here one loop thread claims, renews and
releases, and `concurrency` daemon threads run handlers and record their
outcomes.
"""

from __future__ import annotations

import dataclasses
import inspect
import queue as queue_module
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from tandemkv.client import _jobs_ops as ops
from tandemkv.client._job_run_many import (RUN_MANY_MAX_ATTEMPTS_DEFAULT,
                                           RUN_MANY_TIMEOUT_S_DEFAULT, RunMany)
from tandemkv.client._job_worker_core import (WORKER_GRACE_S_DEFAULT, WORKER_LEASE_TTL_S_DEFAULT, Done, Send,
                                              TimedOut, Wait, WorkerSettings, WorkerStats, log,
                                              worker_name)
from tandemkv.client._job_settlements import WORKER_SETTLES_IN_FLIGHT_MAX
from tandemkv.client._job_worker_policy import WorkerCore
from tandemkv.client._jobs_ops import Job
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.errors import TandemKVError

if TYPE_CHECKING:
    from tandemkv.client._sync import Client


class Worker:
    """Runs jobs of one queue: `handler(job)` in up to `concurrency` threads.

    Semantics (docs/jobs.md, "Workers"): the worker holds one lease, renewed
    every TTL/3, and claims only as many jobs as it has free threads (and
    rate-limit tokens). `handler(job)` returns the result (bytes, str or
    None) and the job is completed with it under the claim's fencing token;
    an exception fails the job with its text (retried after a backoff until
    `max_attempts`). A job running past its `timeout_s` is failed as timed
    out; its thread runs on (Python cannot stop it) and keeps its slot, and
    whatever it returns is dropped. If the worker dies, its lease expires
    and its jobs return to the queue after `lease_ttl_s`.

    `stop(graceful=True)` claims nothing more, waits up to `grace_s` for
    running handlers, then revokes the lease so any job still running is
    at once available to other workers; `graceful=False` releases at once.
    Handlers should be idempotent: a job released or whose lease was lost
    runs again elsewhere.

    Example::

        def resize(job):
            return thumbnail(job.args)

        with client.jobs.worker("images", resize, concurrency=4):
            ...                                   # runs until the block ends
        client.jobs.worker("images", resize).run()   # until Ctrl-C / stop()
    """

    def __init__(self, client: Client, settings: WorkerSettings, handler: Callable[[Job], Any]):
        if inspect.iscoroutinefunction(handler):
            raise TypeError("handler is a coroutine function: run it with AsyncClient.jobs.worker, "
                            "or pass a plain function to Client.jobs.worker")
        if not callable(handler):
            raise TypeError(f"handler must be callable (a function taking the Job), got {type(handler).__name__}")
        self._client = client
        self.settings = settings
        self._handler = handler
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._jobs: queue_module.SimpleQueue[Job | None] = queue_module.SimpleQueue()
        # Handlers running at once; a thread per job held (`capacity`) waits
        # here, so a settlement in flight never holds a handler's turn.
        self._turns = threading.BoundedSemaphore(settings.concurrency)
        # A thread per job held, and one per Settle in flight (the thread of a
        # job just finished sends it, and holds no job meanwhile).
        self._threads = settings.capacity + WORKER_SETTLES_IN_FLIGHT_MAX
        self._core: WorkerCore | None = None
        self._loop_thread: threading.Thread | None = None
        self._stop_graceful: bool | None = None  # a stop asked for, graceful or not

    # -- the user's verbs ------------------------------------------------------
    def start(self) -> Worker:
        """Starts claiming in the background; returns at once."""
        if self._loop_thread is None:
            self._core = WorkerCore(self.settings, self._client.retry, time.monotonic())
            name = f"tandemkv-worker-{self.settings.queue.decode('utf-8', 'replace')}"
            for number in range(self._threads):
                threading.Thread(target=self._run_handlers, daemon=True, name=f"{name}-{number}").start()
            self._loop_thread = threading.Thread(target=self._loop, daemon=True, name=name)
            self._loop_thread.start()
        return self

    def request_stop(self, graceful: bool = True) -> None:
        """Asks the worker to stop and returns at once (see `stop`). Takes no
        lock, so a signal handler may call it; a later `graceful=False`
        overrides an earlier graceful request."""
        self._stop_graceful = graceful and self._stop_graceful is not False
        self._wake.set()

    def stop(self, graceful: bool = True) -> None:
        """Stops claiming, lets running handlers finish within `grace_s`
        (`graceful=False`: none), revokes the lease and returns."""
        self.request_stop(graceful)
        if self._loop_thread is not None:
            self._loop_thread.join()

    def run(self) -> None:
        """Starts and blocks until stopped (by `stop` from another thread);
        Ctrl-C stops gracefully, a second Ctrl-C at once."""
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            try:
                self.stop(graceful=True)
            except KeyboardInterrupt:
                self.stop(graceful=False)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stats(self) -> WorkerStats:
        """A copy of what the worker has done so far."""
        if self._core is None:
            return WorkerStats()
        with self._lock:
            return dataclasses.replace(self._core.stats)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop(graceful=True)

    # -- the loop: claims, renewals, timeouts, release --------------------------
    def _loop(self) -> None:
        core = self._core
        assert core is not None
        try:
            while True:
                self._wake.clear()
                with self._lock:
                    if self._stop_graceful is not None:
                        core.stop(self._stop_graceful, time.monotonic())
                    action = core.next_action(time.monotonic())
                if isinstance(action, Done):
                    return
                if isinstance(action, Wait):
                    self._wake.wait(action.seconds)
                    continue
                if isinstance(action, TimedOut):
                    log.warning("job %d ran past its timeout; failing it (its thread runs on)", action.job.id)
                    if action.fail is None:
                        continue
                    action = action.fail
                answer, error = self._send(action)
                with self._lock:
                    jobs = core.on_done(action, answer, error, time.monotonic())
                for job in jobs:
                    self._jobs.put(job)
        except Exception:  # a bug, not the cluster's answer: say so; the lease ends by itself
            log.exception("the loop of worker %s failed; its jobs return when its lease expires",
                          self.settings.name)
        finally:
            self._stopped.set()
            for _ in range(self._threads):
                self._jobs.put(None)

    def _send(self, send: Send) -> tuple[Any, TandemKVError | None]:
        try:
            return self._client.run(send.operation, retry=send.retry), None
        except TandemKVError as error:
            return None, error

    def _run_handlers(self) -> None:
        core = self._core
        assert core is not None
        while (job := self._jobs.get()) is not None:
            value: Any = None
            error: BaseException | None = None
            with self._turns:
                with self._lock:  # claimed ahead, it may have timed out while it waited for a turn
                    runs = core.handler_started(job.id, job.token)
                try:
                    if runs:
                        value = self._handler(job)
                except BaseException as raised:  # noqa: B036 - whatever a handler raises fails its job
                    error = raised
                    log.warning("job %d of queue %r failed", job.id, job.queue, exc_info=raised)
            with self._lock:
                send = core.handler_returned(job.id, value, error, time.monotonic(), job.token)
            self._wake.set()  # a slot is free
            while send is not None:  # a Settle, carrying the claim of the next jobs when a slot is free
                answer, failure = self._send(send)
                with self._lock:
                    jobs = core.settled(send, answer, failure, time.monotonic())
                    send = core.next_settlement(time.monotonic())  # outcomes that waited meanwhile
                for claimed in jobs:
                    self._jobs.put(claimed)
                self._wake.set()


class WorkerMethods:
    """`Client.jobs.worker` and `Client.jobs.run_many` (mixed into `Jobs`)."""

    _client: Client
    enqueue_many: Callable[..., list[int]]  # Jobs.enqueue_many

    def worker(self, queue: BytesLike, handler: Callable[[Job], Any], *, concurrency: int = 8,
               lease_ttl_s: float = WORKER_LEASE_TTL_S_DEFAULT, rate_limit: float | None = None,
               grace_s: float = WORKER_GRACE_S_DEFAULT, name: str | None = None, prefetch: int = 0) -> Worker:
        """A `Worker` running `handler(job)` for the jobs of `queue` in up to
        `concurrency` threads (`rate_limit`: jobs/s at most); see `Worker`.
        `name`: its id in the heartbeats `client.jobs.workers(queue)` lists
        (default host:pid:n). `prefetch`: jobs claimed ahead of free slots
        (0..WORKER_PREFETCH_JOBS_MAX; docs/jobs.md, "Workers"). Not
        started: use `with`, `start()` or `run()`."""
        settings = WorkerSettings(to_bytes(queue, "queue"), concurrency, lease_ttl_s, rate_limit, grace_s,
                                  name or worker_name(), prefetch)
        return Worker(self._client, settings, handler)

    def run_many(self, queue: BytesLike, items: Iterable[BytesLike], *,
                 timeout_s: float = RUN_MANY_TIMEOUT_S_DEFAULT,
                 max_attempts: int = RUN_MANY_MAX_ATTEMPTS_DEFAULT, job_timeout_s: float | None = None,
                 priority: int = 0) -> list[bytes]:
        """Enqueues one job of `queue` per item (its args), waits for the
        workers of the cluster to run them, and returns their results in the
        items' order. Raises `RunManyFailed` naming the items whose jobs
        died (after `max_attempts` failures) or were cancelled, or did not
        finish within `timeout_s` (those are cancelled). At most
        RUN_MANY_ITEMS_MAX items.

        Example::

            squares = client.jobs.run_many("square", [b"1", b"2", b"3"])   # [b"1", b"4", b"9"]
        """
        book = RunMany(queue, list(items), max_attempts=max_attempts, timeout_s=timeout_s,
                       job_timeout_s=job_timeout_s, priority=priority)
        if not book.job_ids:
            return []
        deadline_s = time.monotonic() + timeout_s
        try:
            book.enqueued_all(self.enqueue_many(book.queue, book.args, **book.options))
        except TandemKVError as error:
            self._cancel_quietly(getattr(error, "enqueued_ids", []))  # the items that were enqueued
            raise
        while True:
            before = len(book.finished)
            self._read_round(book)
            left_s = deadline_s - time.monotonic()
            if book.done or left_s <= 0:
                break
            time.sleep(min(left_s, book.pause_s(len(book.finished) > before)))
        if not book.done:
            self._cancel_quietly(book.unfinished_ids())
            self._read_round(book)  # a job may have finished before its cancel
        return book.outcome()

    def _read_round(self, book: RunMany) -> None:
        after_id: int | None = book.list_from()
        while after_id is not None:
            after_id = book.take_page(self._client.run(book.page_operation(after_id)))

    def _cancel_quietly(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                self._client.run(ops.by_id("Cancel", job_id))
            except TandemKVError:
                pass  # finished meanwhile (the read that follows tells), or the cluster is away
