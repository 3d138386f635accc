"""The gRPC servicer of the Batch service: one call, many independent
operations (`Node.batch`). It unpacks the ops, lets the node answer each,
and packs every answer or error into its own result, an error in the very
form a single call would have reported it (code, message, trailing
metadata; edge.status_for_error). An op with nothing set fails alone."""

from __future__ import annotations

import logging

import grpc
import grpc.aio

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort, node_timeout_s, status_for_error
from tandemkv.v1 import batch_pb2, batch_pb2_grpc

log = logging.getLogger(__name__)


class BatchServicer(batch_pb2_grpc.BatchServicer):
    def __init__(self, node):
        self._node = node

    async def Call(self, request: batch_pb2.BatchRequest, context: grpc.aio.ServicerContext):
        try:
            return await self._call(request, node_timeout_s(context))
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            if not isinstance(error, errors.TandemKVError):
                log.exception("unexpected error serving Batch.Call")
            await abort(context, error)
            raise AssertionError("context.abort returned")  # pragma: no cover

    async def _call(self, request: batch_pb2.BatchRequest, timeout_s: float) -> batch_pb2.BatchResponse:
        if len(request.ops) > limits.BATCH_OPS_MAX:
            raise errors.InvalidArgument(
                f"a batch of {len(request.ops)} operations is over BATCH_OPS_MAX={limits.BATCH_OPS_MAX}; "
                "split it", limit="BATCH_OPS_MAX")
        kinds = [op.WhichOneof("op") for op in request.ops]
        set_ops = [getattr(op, kind) for op, kind in zip(request.ops, kinds) if kind is not None]
        answers = iter(await self._node.batch_async(set_ops, timeout_s=timeout_s) if set_ops else ())
        results = []
        for position, kind in enumerate(kinds):
            if kind is None:
                answer = errors.InvalidArgument(f"ops[{position}] sets no operation; set one field of BatchOp")
            else:
                answer = next(answers)
            results.append(_result(kind, answer))
        return batch_pb2.BatchResponse(results=results)


def _result(kind: str | None, answer) -> batch_pb2.BatchResult:
    if isinstance(answer, BaseException):
        code, message, metadata = status_for_error(answer)
        return batch_pb2.BatchResult(error=batch_pb2.BatchError(
            code=code.value[0], message=message, metadata=dict(metadata)))
    return batch_pb2.BatchResult(**{kind: answer})
