"""`AsyncWorker`: runs a queue's jobs through a coroutine handler, one task
per job, for `AsyncClient.jobs.worker`, and `AsyncWorkerMethods`, the
`worker` and `run_many` of `AsyncClient.jobs` (`_jobs_async.AsyncJobs`). Its decisions are `WorkerCore`'s
(`_job_worker_policy`, shared with the threaded `Worker`); here one loop
task claims, renews and releases, and each job's task runs its handler
and records its outcome. Unlike a thread, a task past its job's timeout,
or still running when a stop's grace ends, is cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from tandemkv.client import _jobs_ops as ops
from tandemkv.client._job_run_many import (RUN_MANY_MAX_ATTEMPTS_DEFAULT,
                                           RUN_MANY_TIMEOUT_S_DEFAULT, RunMany)
from tandemkv.client._job_worker_core import (WORKER_GRACE_S_DEFAULT, WORKER_LEASE_TTL_S_DEFAULT, Done, Send,
                                              TimedOut, Wait, WorkerSettings, WorkerStats, log,
                                              worker_name)
from tandemkv.client._job_worker_policy import WorkerCore
from tandemkv.client._jobs_ops import Job
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.errors import TandemKVError

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncWorker:
    """`Worker` for `AsyncClient`: the same semantics (see `Worker`), with
    `async def handler(job)` run as up to `concurrency` tasks.

    Example::

        async def resize(job):
            return await thumbnail(job.args)

        async with client.jobs.worker("images", resize, concurrency=32):
            await stop_requested.wait()
    """

    def __init__(self, client: AsyncClient, settings: WorkerSettings, handler: Callable[[Job], Awaitable[Any]]):
        if not inspect.iscoroutinefunction(handler):
            raise TypeError("handler must be an async function (async def handler(job)) for "
                            "AsyncClient.jobs.worker; pass a plain function to Client.jobs.worker")
        self._client = client
        self.settings = settings
        self._handler = handler
        self._wake = asyncio.Event()
        self._core: WorkerCore | None = None
        self._loop_task: asyncio.Task | None = None
        self._tasks: dict[int, asyncio.Task] = {}
        # Handlers running at once; a job claimed ahead (`prefetch`) waits here.
        self._turns = asyncio.Semaphore(settings.concurrency)

    async def start(self) -> AsyncWorker:
        """Starts claiming in a task; returns at once."""
        if self._loop_task is None:
            self._core = WorkerCore(self.settings, self._client.retry, time.monotonic())
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def request_stop(self, graceful: bool = True) -> None:
        """Asks the worker to stop and returns at once (see `stop`)."""
        if self._core is not None:
            self._core.stop(graceful, time.monotonic())
            self._wake.set()

    async def stop(self, graceful: bool = True) -> None:
        """Stops claiming, lets running handlers finish within `grace_s`
        (`graceful=False`: none), cancels the rest, revokes the lease."""
        self.request_stop(graceful)
        if self._loop_task is not None:
            await asyncio.shield(self._loop_task)

    async def run(self) -> None:
        """Starts and waits until stopped; if the waiting task is cancelled
        the worker stops gracefully first."""
        await self.start()
        assert self._loop_task is not None
        try:
            await asyncio.shield(self._loop_task)
        except asyncio.CancelledError:
            await self.stop(graceful=True)
            raise

    @property
    def stopped(self) -> bool:
        return self._loop_task is not None and self._loop_task.done()

    def stats(self) -> WorkerStats:
        return WorkerStats() if self._core is None else dataclasses.replace(self._core.stats)

    async def __aenter__(self) -> AsyncWorker:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop(graceful=True)

    async def _loop(self) -> None:
        core = self._core
        assert core is not None
        try:
            while True:
                self._wake.clear()
                action = core.next_action(time.monotonic())
                if isinstance(action, Done):
                    return
                if isinstance(action, Wait):
                    try:
                        await asyncio.wait_for(self._wake.wait(), action.seconds)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if isinstance(action, TimedOut):
                    log.warning("job %d ran past its timeout; cancelling its handler", action.job.id)
                    self._cancel(action.job.id)
                    if action.fail is None:
                        continue
                    action = action.fail
                answer, error = await self._send(action)
                self._start(core.on_done(action, answer, error, time.monotonic()))
        except Exception:  # a bug, not the cluster's answer: say so; the lease ends by itself
            log.exception("the loop of worker %s failed; its jobs return when its lease expires",
                          self.settings.name)
        finally:
            for job_id in list(self._tasks):
                self._cancel(job_id)  # released at stop: their jobs are other workers' now

    def _start(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._tasks[job.id] = asyncio.get_running_loop().create_task(self._run_handler(job))

    def _forget_task(self, job_id: int) -> None:
        # Only this task's own entry: its job may have been claimed again, a new task there.
        if self._tasks.get(job_id) is asyncio.current_task():
            del self._tasks[job_id]

    def _cancel(self, job_id: int) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    async def _send(self, send: Send) -> tuple[Any, TandemKVError | None]:
        try:
            return await self._client.run(send.operation, retry=send.retry), None
        except TandemKVError as error:
            return None, error

    async def _run_handler(self, job: Job) -> None:
        core = self._core
        assert core is not None
        value: Any = None
        error: BaseException | None = None
        try:
            async with self._turns:
                if core.handler_started(job.id, job.token):  # claimed ahead, it may have timed out waiting
                    value = await self._handler(job)
        except asyncio.CancelledError:
            if core.handler_started(job.id, job.token):  # its outcome still counts
                self._forget_task(job.id)
                raise  # cancelled from outside (the loop is closing): the lease ends its claim
        except Exception as raised:
            error = raised
            log.warning("job %d of queue %r failed", job.id, job.queue, exc_info=raised)
        finally:
            self._forget_task(job.id)
        send = core.handler_returned(job.id, value, error, time.monotonic(), job.token)
        self._wake.set()  # a slot is free
        while send is not None:  # a Settle, carrying the claim of the next jobs when a slot is free
            answer, failure = await self._send(send)
            self._start(core.settled(send, answer, failure, time.monotonic()))
            send = core.next_settlement(time.monotonic())  # outcomes that waited meanwhile
            self._wake.set()


class AsyncWorkerMethods:
    """`AsyncClient.jobs.worker` and `.run_many` (mixed into `AsyncJobs`)."""

    _client: AsyncClient
    enqueue_many: Callable[..., Awaitable[list[int]]]  # AsyncJobs.enqueue_many

    def worker(self, queue: BytesLike, handler: Callable[[Job], Awaitable[Any]], *, concurrency: int = 8,
               lease_ttl_s: float = WORKER_LEASE_TTL_S_DEFAULT, rate_limit: float | None = None,
               grace_s: float = WORKER_GRACE_S_DEFAULT, name: str | None = None,
               prefetch: int = 0) -> AsyncWorker:
        """An `AsyncWorker` running `await handler(job)` for the jobs of
        `queue` as up to `concurrency` tasks; see `Worker` (and `name` in
        `Jobs.worker`). Not started: use `async with`, `await start()` or
        `await run()`; `prefetch` as in `Jobs.worker`."""
        settings = WorkerSettings(to_bytes(queue, "queue"), concurrency, lease_ttl_s, rate_limit, grace_s,
                                  name or worker_name(), prefetch)
        return AsyncWorker(self._client, settings, handler)

    async def run_many(self, queue: BytesLike, items: Iterable[BytesLike], *,
                       timeout_s: float = RUN_MANY_TIMEOUT_S_DEFAULT,
                       max_attempts: int = RUN_MANY_MAX_ATTEMPTS_DEFAULT, job_timeout_s: float | None = None,
                       priority: int = 0) -> list[bytes]:
        """One job per item, the results in the items' order; see `Jobs.run_many`."""
        book = RunMany(queue, list(items), max_attempts=max_attempts, timeout_s=timeout_s,
                       job_timeout_s=job_timeout_s, priority=priority)
        if not book.job_ids:
            return []
        deadline_s = time.monotonic() + timeout_s
        try:
            book.enqueued_all(await self.enqueue_many(book.queue, book.args, **book.options))
        except TandemKVError as error:
            await self._cancel_quietly(getattr(error, "enqueued_ids", []))  # the items that were enqueued
            raise
        while True:
            before = len(book.finished)
            await self._read_round(book)
            left_s = deadline_s - time.monotonic()
            if book.done or left_s <= 0:
                break
            await asyncio.sleep(min(left_s, book.pause_s(len(book.finished) > before)))
        if not book.done:
            await self._cancel_quietly(book.unfinished_ids())
            await self._read_round(book)  # a job may have finished before its cancel
        return book.outcome()

    async def _read_round(self, book: RunMany) -> None:
        after_id: int | None = book.list_from()
        while after_id is not None:
            after_id = book.take_page(await self._client.run(book.page_operation(after_id)))

    async def _cancel_quietly(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                await self._client.run(ops.by_id("Cancel", job_id))
            except TandemKVError:
                pass  # finished meanwhile (the read that follows tells), or the cluster is away
