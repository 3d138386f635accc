"""The gRPC servicer of the job queue (tandemkv.v1.Jobs).

Every RPC is unary and goes through `edge.handle` like the KV servicers:
validate against the named limits, check the deadline, call the node
(writes through `propose_async`, reads through `query_async`, neither
holding a thread while it waits). A stale fencing token, a job not found
and a claim under a missing lease are FAILED_PRECONDITION with a message
naming what to do; the model is the pure core's (server/strong/jobs.py).

Progress, Heartbeat and Workers are the available plane's (node.jobs.board,
server/node/job_board.py): served by this node's replica on the executor,
never a Raft write. A write that ends claims (complete, fail, settle,
retry, cancel, discard) has their jobs' progress removed here soon after
it answers (`board.forget_soon`), and Get carries the current claim's
last progress.
"""

from __future__ import annotations

import asyncio

from tandemkv.server.api.edge import handle
from tandemkv.v1 import jobs_pb2_grpc


class JobsServicer(jobs_pb2_grpc.JobsServicer):
    def __init__(self, node):
        self._node = node

    async def _write(self, request, context):
        return await handle(context, request, self._node.propose_async)

    async def _read(self, request, context):
        return await handle(context, request, self._node.query_async)

    async def _ending(self, request, context):
        """A write that ends the job's claim; its progress goes here too, soon."""
        response = await self._write(request, context)
        self._node.jobs.forget_soon([response.job.id])
        return response

    async def _board(self, request, context, call):
        return await handle(context, request, call)

    async def Enqueue(self, request, context):
        return await self._write(request, context)

    async def EnqueueMany(self, request, context):
        return await self._write(request, context)

    async def Settle(self, request, context):
        response = await self._write(request, context)
        settled = [outcome.id for outcome in response.outcomes if outcome.settled]
        if settled:
            self._node.jobs.forget_soon(settled)
        return response

    async def Claim(self, request, context):
        return await self._write(request, context)

    async def Complete(self, request, context):
        return await self._ending(request, context)

    async def Fail(self, request, context):
        return await self._ending(request, context)

    async def Retry(self, request, context):
        return await self._ending(request, context)

    async def Cancel(self, request, context):
        return await self._ending(request, context)

    async def Discard(self, request, context):
        return await self._ending(request, context)

    async def Get(self, request, context):
        response = await self._read(request, context)
        return await asyncio.get_running_loop().run_in_executor(None, self._node.jobs.with_progress, response)

    async def List(self, request, context):
        return await self._read(request, context)

    async def Stats(self, request, context):
        return await self._read(request, context)

    async def SetQueueLimit(self, request, context):
        return await self._write(request, context)

    async def CronPut(self, request, context):
        return await self._write(request, context)

    async def CronDelete(self, request, context):
        return await self._write(request, context)

    async def CronList(self, request, context):
        return await self._read(request, context)

    async def Progress(self, request, context):
        return await self._board(request, context, self._node.jobs.board.progress)

    async def Heartbeat(self, request, context):
        return await self._board(request, context, self._node.jobs.board.heartbeat)

    async def Workers(self, request, context):
        return await self._board(request, context, self._node.jobs.board.workers)
