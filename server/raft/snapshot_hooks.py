"""Snapshots as a member writes, reads and receives them (a mixin of
RaftMember): pysyncobj's serializer hooks, and the chunk acknowledgements
of a transfer.

- `_serialize` writes the host's state as a snapshot whose members are the
  voters (learners come from the member set the state holds);
  `_deserialize` reads one back: the host's state then holds, committed,
  every entry it covers. A snapshot of this node's own that is damaged on
  disk stops the node (pysyncobj would only log the error and go on,
  wedged); a received one was checked whole before it was installed.
- A follower answers each snapshot chunk, so the leader's connection does
  not time out during a long transfer, and a lost connection restarts the
  transfer from its first byte (snapshot_transfer.py).
"""

from __future__ import annotations

import logging
from typing import Callable

from pysyncobj import SyncObj
from pysyncobj.node import TCPNode

from tandemkv.server.raft import snapshot_transfer
from tandemkv.server.raft.contract import ReplicaHost
from tandemkv.server.raft.fatal import crash
from tandemkv.server.raft.transport import FlushingTransport
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.server.storage.snapshot_check import SnapshotInvalid

log = logging.getLogger(__name__)


class SnapshotHooks:
    """Needs what is named below on the instance, and SyncObj's serializer."""

    _host: ReplicaHost
    _raft_log: DurableRaftLog
    _learners: set[TCPNode]
    _applied_committed: int
    _transport: Callable[[], FlushingTransport]

    # -- pysyncobj's serializer hooks, tick thread --
    def _serialize(self, path: str, data) -> None:
        last_entry, prev_entry, cluster = data
        # Its members are the voters: learners come from the member set it holds.
        learners = set(self._learners)
        self._host.write_snapshot(path, last_entry, prev_entry,
                                  sorted(n.address for n in cluster if n not in learners))

    def _deserialize(self, path: str):
        try:
            last_entry, prev_entry, members = self._host.read_snapshot(path)
        except SnapshotInvalid as error:
            # A received snapshot was checked whole before it was renamed
            # into place, so this is this node's own file, damaged on disk;
            # without it the state cannot be rebuilt here (pysyncobj would
            # only log the error and go on, wedged).
            log.critical("%s; move this node's data dir aside and restart the node to rebuild "
                         "it from the other members", error)
            crash("the snapshot this node needs is damaged")
        # The state now holds (and has committed) every entry the snapshot covers.
        self._applied_committed = last_entry[1]
        # A crash between publishing a snapshot and compacting the log leaves
        # older entries at the log's head; drop them so pysyncobj keeps the
        # entries after the snapshot instead of clearing the whole log.
        self._raft_log.trim_head_to(prev_entry)
        return last_entry, prev_entry, {TCPNode(address) for address in members}

    # -- a transfer's chunks --
    def _SyncObj__onMessageReceived(self, node, message):  # noqa: N802
        super()._SyncObj__onMessageReceived(node, message)
        if snapshot_transfer.needs_acknowledging(message):
            self._transport().send(node, {"type": snapshot_transfer.CHUNK_RECEIVED})

    def _SyncObj__onNodeDisconnected(self, node):  # noqa: N802
        SyncObj._SyncObj__onNodeDisconnected(self, node)
        snapshot_transfer.cancel_on_disconnect(self._SyncObj__serializer, node)
