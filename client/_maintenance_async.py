"""`client.maintenance` of the asyncio client (`AsyncMaintenance`): the
same calls as `Maintenance`, deciding nothing of their own (the core is
`_maintenance_core`). The file's last steps (fsync, rename) run in a
thread, so the loop is not held by the disk."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import grpc

from tandemkv.client import _maintenance_core as core
from tandemkv.client._maintenance_core import SnapshotInfo

if TYPE_CHECKING:
    from tandemkv.client._async import AsyncClient


class AsyncMaintenance:
    def __init__(self, client: AsyncClient):
        self._client = client

    async def snapshot(self, path: str | os.PathLike, *, endpoint: str | None = None,
                       timeout_s: float = core.SNAPSHOT_TIMEOUT_S) -> SnapshotInfo:
        """Writes a backup of the cluster to `path`; see `Maintenance.snapshot`."""
        if endpoint is None:
            await self._client.leader()
        nodes = core.targets(self._client._router, endpoint)
        for position, target in enumerate(nodes):
            download = core.SnapshotDownload(path, target)
            call = self._client.stub("Maintenance", target).Snapshot(core.request(), timeout=timeout_s)
            try:
                async for chunk in call:
                    download.receive(chunk)
                return await asyncio.to_thread(download.finish)
            except grpc.RpcError as rpc_error:
                await asyncio.to_thread(download.abandon)
                core.attempt_failed(target, rpc_error, download.received_bytes, position == len(nodes) - 1)
            except BaseException:
                download.abandon()
                raise
            finally:
                call.cancel()
        raise AssertionError("the last attempt raises")  # pragma: no cover
