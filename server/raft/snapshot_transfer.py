"""Snapshot transfers between members, made whole or refused.

pysyncobj streams a snapshot file to a lagging follower in chunks that
carry no offset, only "first" and "last" flags, and the follower appends
each chunk to the file it opened at the first. Two things went wrong:

- A follower says nothing until the last chunk, and a connection that
  brings no data for connectionTimeout (3.5 s) is closed as dead: under
  CPU load a 25 MB transfer took longer, so the leader closed the
  connection midway, dropping the chunks it still buffered.
- The leader's transfer kept its place in the file across the lost
  connection: pysyncobj cancels it only if the follower is still
  disconnected at the leader's next append round, and the side that
  connects had reconnected by then (at once, on 127.0.0.1). The follower
  appended the rest to what it had: a file short by the dropped chunk,
  which it renamed into place and loaded; LMDB then read past the end of
  the short image (SIGBUS).

So:
- `needs_acknowledging`: a follower answers every chunk but the last with a
  message the leader ignores, except that it shows the connection alive;
- `cancel_on_disconnect`: the leader drops a follower's transfer as soon
  as their connection is lost; the next one starts from the first byte.
- `check_incoming`: the follower checks the stream as it arrives
  (storage/snapshot_check.py: the length and SHA-256 its header declares,
  and its LMDB meta page). A transfer that is not whole is refused before
  it replaces the node's snapshot file: nothing of it is loaded or kept,
  chunks that continue it are ignored, and the leader, finding the
  follower's log still short, sends the snapshot again from its start.
"""

from __future__ import annotations

import logging
from typing import Callable

from pysyncobj.serializer import Serializer

from tandemkv.server.storage.snapshot_check import IncomingSnapshot, SnapshotInvalid

log = logging.getLogger(__name__)

# pysyncobj's chunk: (bytes, first, last); the last is empty.
Chunk = tuple[bytes, bool, bool]


# A follower's answer to a snapshot chunk; pysyncobj ignores a message type
# it does not know, so a leader of any version only reads it as a sign of life.
CHUNK_RECEIVED = "tandemkv_snapshot_chunk_received"


def needs_acknowledging(message: dict) -> bool:
    """A snapshot chunk that is not the last, which a follower answers with
    {"type": CHUNK_RECEIVED} (the last is answered by pysyncobj, once the
    snapshot is installed)."""
    chunk = message.get("serialized") if message.get("type") == "append_entries" else None
    return bool(chunk) and not chunk[2]


def cancel_on_disconnect(serializer, node) -> None:
    """The leader forgets its transfer to `node`, whose connection is lost."""
    serializer.cancelTransmisstion(node)  # sic: pysyncobj's spelling


def checking_serializer(*args, **kwargs) -> Serializer:
    """pysyncobj's Serializer, built with `args`, that refuses a received
    snapshot which is not whole (`check_incoming`)."""
    serializer = Serializer(*args, **kwargs)
    check_incoming(serializer)
    return serializer


def check_incoming(serializer) -> None:
    """Makes `serializer` (pysyncobj's, of a member) refuse a received
    snapshot that is not whole, before it becomes the member's file."""
    receive: Callable[[Chunk | None], bool] = serializer.setTransmissionData
    incoming: list[IncomingSnapshot] = []  # the transfer being received, if any

    def checked(data: Chunk | None) -> bool:
        if data is None:
            return receive(data)
        chunk, first, last = data
        if first:
            incoming[:] = [IncomingSnapshot()]
        elif not incoming:
            return False  # continues a transfer refused or never started here
        try:
            incoming[0].feed(chunk)
            if last:
                incoming[0].finish()
        except SnapshotInvalid as error:
            incoming.clear()
            log.error("refused the snapshot being received from the leader: %s; it is "
                      "not installed, and the leader will send it again", error)
            # Starting an empty transfer is the one way pysyncobj offers to
            # throw away the file it is receiving into.
            receive((b"", True, False))
            return False
        if last:
            incoming.clear()
        return receive(data)

    serializer.setTransmissionData = checked
