"""What benchmarks/jobs_throughput.py needs of each system: a local
`redis-server` (`Redis`, in a temporary directory, as shipped or with
appendfsync everysec), and per system the batch enqueue, the count of
completed jobs and each job's enqueue and completion stamps
(`TandemQueue`, `RqQueue`, `ArqQueue`)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time

from benchmarks import clusters

ENQUEUES_IN_FLIGHT = 64
POLL_S = 0.1
REDIS_START_S_MAX = 10.0
REDIS_MODES = {"shipped": [], "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"]}


class Redis:
    """One `redis-server` on a free port in a temporary directory."""

    def __init__(self, mode: str):
        self.mode = mode
        self.root = tempfile.mkdtemp(prefix="redis-jobs-")
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> Redis:
        import redis

        port = clusters.free_ports(1)[0]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", self.root, *REDIS_MODES[self.mode]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + REDIS_START_S_MAX
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.__exit__()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(POLL_S)
        return self

    def settings(self) -> dict[str, str]:
        import redis

        config = redis.Redis.from_url(self.url, decode_responses=True)
        return {name: config.config_get(name)[name] for name in ("appendonly", "appendfsync", "save")}

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            clusters.stop_processes([self.process])
        shutil.rmtree(self.root, ignore_errors=True)


# -- one system's enqueue, completion check and stamps ------------------------

class TandemQueue:
    def __init__(self, endpoints: list[str], queue: str):
        from tandemkv.client import AsyncClient, Client

        self.client = Client(endpoints)
        self.async_client = AsyncClient(endpoints)
        self.queue = queue
        self.ids: list[int] = []

    async def enqueue(self, count: int) -> None:
        # As RQ's enqueue_many: batches of ENQUEUES_IN_FLIGHT, one after another (one Raft entry each).
        for start in range(0, count, ENQUEUES_IN_FLIGHT):
            items = [b""] * min(ENQUEUES_IN_FLIGHT, count - start)
            self.ids += await self.async_client.jobs.enqueue_many(self.queue, items)

    def completed(self) -> int:
        stats = self.client.jobs.stats(self.queue)
        return stats[0].completed if stats else 0

    def stamps(self, ids: list[int]) -> list[tuple[float, float]]:
        wanted, stamps, after = set(ids), [], 0
        while True:
            page = self.client.jobs.list(self.queue, after_id=after)
            stamps += [(job.inserted_ms / 1000, job.finished_ms / 1000) for job in page.jobs if job.id in wanted]
            if not page.more:
                return stamps
            after = page.next_after_id

    async def close(self) -> None:
        await self.async_client.close()
        self.client.close()


class RqQueue:
    def __init__(self, url: str, queue: str):
        from redis import Redis as RedisClient
        from rq import Queue

        self.connection = RedisClient.from_url(url)
        self.rq_queue = Queue(queue, connection=self.connection)
        self.ids: list[str] = []

    async def enqueue(self, count: int) -> None:
        from rq import Queue

        for start in range(0, count, ENQUEUES_IN_FLIGHT):
            batch = [Queue.prepare_data("benchmarks.jobs_throughput_worker.noop", result_ttl=3600)
                     for _ in range(min(ENQUEUES_IN_FLIGHT, count - start))]
            jobs = await asyncio.to_thread(self.rq_queue.enqueue_many, batch)
            self.ids += [job.id for job in jobs]

    def completed(self) -> int:
        return self.rq_queue.finished_job_registry.count

    def stamps(self, ids: list[str]) -> list[tuple[float, float]]:
        from rq.job import Job

        jobs = Job.fetch_many(ids, connection=self.connection)
        return [(job.enqueued_at.timestamp(), job.ended_at.timestamp()) for job in jobs
                if job is not None and job.ended_at is not None]

    async def close(self) -> None:
        self.connection.close()


class ArqQueue:
    def __init__(self, url: str, queue: str):
        self.url, self.queue = url, queue
        self.pool = None
        self.ids: list[str] = []

    async def enqueue(self, count: int) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        if self.pool is None:
            self.pool = await create_pool(RedisSettings.from_dsn(self.url))
        gate = asyncio.Semaphore(ENQUEUES_IN_FLIGHT)

        async def one() -> str:
            async with gate:
                return (await self.pool.enqueue_job("arq_noop", _queue_name=self.queue)).job_id
        self.ids += await asyncio.gather(*(one() for _ in range(count)))

    def completed(self) -> int:
        """How many of this queue's jobs have a result (arq keeps one per finished job)."""
        import redis

        with redis.Redis.from_url(self.url) as connection:
            pipeline = connection.pipeline(transaction=False)
            for job_id in self.ids:
                pipeline.exists(f"arq:result:{job_id}")
            return sum(pipeline.execute())

    async def stamps_async(self, ids: list[str]) -> list[tuple[float, float]]:
        from arq.jobs import Job

        infos = [await Job(job_id, self.pool, _queue_name=self.queue).result_info() for job_id in ids]
        return [(i.enqueue_time.timestamp(), i.finish_time.timestamp()) for i in infos if i is not None]

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
