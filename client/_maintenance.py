"""`client.maintenance` (`Maintenance`): operator calls of the blocking
client. `snapshot(path)` writes a backup of the cluster to a file; what it
decides (which node, what a whole stream is, how the file is written) is
the core's (`_maintenance_core`), shared with `AsyncMaintenance`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import grpc

from tandemkv.client import _maintenance_core as core
from tandemkv.client._maintenance_core import SnapshotInfo

if TYPE_CHECKING:
    from tandemkv.client._sync import Client


class Maintenance:
    def __init__(self, client: Client):
        self._client = client

    def snapshot(self, path: str | os.PathLike, *, endpoint: str | None = None,
                 timeout_s: float = core.SNAPSHOT_TIMEOUT_S) -> SnapshotInfo:
        """Writes a backup of the cluster to `path` and returns what it
        holds. The backup is taken on the leader (or `endpoint`) after a
        read barrier, so it holds every write acknowledged before this call
        (`revision`: every write acknowledged at or below it is in it, none
        above), and that node's CRDT tables. It arrives in `path + ".part"`,
        is checked against its SHA-256, fsynced and renamed to `path`; on
        any failure `path` is left as it was and `Unavailable` says why
        (retry). Restore it with `tandemkv snapshot restore` (docs/backup.md).

        Example::

            info = client.maintenance.snapshot("backup.tkv")
            print(info.revision, info.key_count, info.file_bytes)
        """
        if endpoint is None:
            self._client.leader()  # learns it, if the cluster has one
        nodes = core.targets(self._client._router, endpoint)
        for position, target in enumerate(nodes):
            download = core.SnapshotDownload(path, target)
            call = self._client.stub("Maintenance", target).Snapshot(core.request(), timeout=timeout_s)
            try:
                for chunk in call:
                    download.receive(chunk)
                return download.finish()
            except grpc.RpcError as rpc_error:
                download.abandon()
                core.attempt_failed(target, rpc_error, download.received_bytes, position == len(nodes) - 1)
            except BaseException:
                download.abandon()
                raise
            finally:
                call.cancel()  # a stream left early (a refused chunk) ends here, not when collected
        raise AssertionError("the last attempt raises")  # pragma: no cover
