"""The Maintenance service: `Snapshot` streams a backup of this node
(node.take_backup; the file format is server/storage/backup.py).

The node writes the whole backup to a temporary file of its data dir
first, off the event loop (the copy holds an LMDB reader, which should not
wait on a slow client); then the file is streamed in chunks of
BACKUP_CHUNK_BYTES, each read off the loop, and closed (it has no name:
its space is freed) when the stream ends for any reason. The first chunk
carries what the backup holds, the last the file's SHA-256.

Limits: the call is in the operator lane (dispatch.py, OPERATOR_RPCS_MAX),
so it neither takes nor waits for a client's slot; and at most
BACKUPS_IN_FLIGHT_MAX backups at once per node, since each holds a copy of
the node's state on its disk. One beyond gets RESOURCE_EXHAUSTED at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import AsyncIterator, BinaryIO

import grpc

from tandemkv import errors, limits
from tandemkv.server.api.edge import abort, node_timeout_s
from tandemkv.v1 import maintenance_pb2, maintenance_pb2_grpc

log = logging.getLogger(__name__)
_DIGEST_BYTES = 32


class MaintenanceServicer(maintenance_pb2_grpc.MaintenanceServicer):
    def __init__(self, node):
        self._node = node
        # Backups being written or streamed; only the event loop touches it.
        self._in_flight = 0

    async def Snapshot(self, request: maintenance_pb2.SnapshotRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[maintenance_pb2.SnapshotChunk]:
        if self._in_flight >= limits.BACKUPS_IN_FLIGHT_MAX:
            await abort(context, errors.ResourceExhausted(
                f"this node is already taking BACKUPS_IN_FLIGHT_MAX={limits.BACKUPS_IN_FLIGHT_MAX} "
                "backups; wait for them to finish, or take this one from another node"))
        self._in_flight += 1
        written = None
        try:
            taking = asyncio.get_running_loop().run_in_executor(
                None, functools.partial(self._node.take_backup, timeout_s=node_timeout_s(context)))
            written = await _taken(taking, self._left)
            backup_file, info = written
            async for chunk in _chunks(backup_file, info):
                yield chunk
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            if not isinstance(error, errors.TandemKVError):
                log.exception("taking a backup failed")
            await abort(context, error)
        finally:
            if written is not None:
                written[0].close()
                self._left()

    def _left(self) -> None:
        self._in_flight -= 1


async def _taken(taking: asyncio.Future, left) -> tuple[BinaryIO, object]:
    """The backup being taken, once written. If the call is cancelled
    meanwhile (the client went away), the copy runs on in its thread: its
    file is closed and its slot given back when it is done."""
    try:
        return await asyncio.shield(taking)
    except asyncio.CancelledError:
        taking.add_done_callback(functools.partial(_discard, left=left))
        raise
    except BaseException:
        left()
        raise


def _discard(taking: asyncio.Future, left) -> None:
    left()
    if not taking.cancelled() and taking.exception() is None:
        taking.result()[0].close()


async def _chunks(backup_file: BinaryIO, info) -> AsyncIterator[maintenance_pb2.SnapshotChunk]:
    loop = asyncio.get_running_loop()
    fd = backup_file.fileno()
    size = info.file_bytes
    assert os.fstat(fd).st_size == size, "the backup file is as long as its header says"
    summary = maintenance_pb2.SnapshotInfo(
        node=info.node, revision=info.revision, applied_index=info.applied_index, key_count=info.key_count,
        state_image_bytes=info.state_image_bytes, crdt_image_bytes=info.crdt_image_bytes,
        file_bytes=info.file_bytes, taken_unix_ms=info.taken_unix_ms)
    at = 0
    while at < size:
        data = await loop.run_in_executor(None, os.pread, fd, min(limits.BACKUP_CHUNK_BYTES, size - at), at)
        assert data, "the backup file ended early"
        chunk = maintenance_pb2.SnapshotChunk(data=data)
        if at == 0:
            chunk.info.CopyFrom(summary)
        at += len(data)
        if at == size:
            chunk.sha256 = data[-_DIGEST_BYTES:] if len(data) >= _DIGEST_BYTES else (
                await loop.run_in_executor(None, os.pread, fd, _DIGEST_BYTES, size - _DIGEST_BYTES))
        yield chunk
