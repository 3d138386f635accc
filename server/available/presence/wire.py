"""Presence gossip frames: their shapes, their authenticated bytes, and
transfers cut into chunks and put back together.

A frame is

    PRESENCE_WIRE_VERSION (1 byte) | HMAC-SHA256 (32 bytes) | body

where the MAC, keyed with the cluster secret, covers a domain tag, the
version byte and the body (so no frame of another plane verifies here),
and the body is the canonical encoding (crdt/canonical.py) of the frame's
fields. The MAC is checked, in constant time, before the body is decoded.

Every frame is a heartbeat: it names its sender (node and incarnation), its
recipient, the sender's clock and its presence version. It may also ask the
recipient for the recipient's changes after a version (`want`), and may
carry one chunk of a transfer of the sender's own entries. A goodbye frame
(the sender's incarnation stops; no want, no chunk) has one field more
than the others: a node of an earlier release refuses it as malformed, and
its copy of the sender leaves by PRESENCE_NODE_DOWN_MS instead. A transfer (a
delta or the full state, owner.py) is encoded once and cut into chunks that
fit PRESENCE_FRAME_BYTES_MAX; the receiver (`Reassembly`) puts them back
together and decodes the whole only when every chunk has come.

This module owns bytes <-> frames and transfers. It never knows what a node
does with them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from tandemkv import limits
from tandemkv.errors import InvalidArgument

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.presence.model import (ID_LIMIT, EntryId, OwnerId, check_key, check_meta,
                                                      check_owner, check_session, check_topic)
from tandemkv.server.available.presence.owner import Transfer

PRESENCE_WIRE_VERSION = 1
MAC_BYTES = 32
FRAME_HEADER_BYTES = 1 + MAC_BYTES
DOMAIN_TAG = b"tandemkv presence gossip"
# Bytes a frame needs beyond its chunk's data: header, ids, numbers, field tags.
FRAME_OVERHEAD_BYTES_MAX = 1024


class Rejected(Exception):
    """A frame or a transfer was refused; `reason` is the counter it counts
    under (too_large, bad_version, bad_mac, malformed, misaddressed)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Chunk:
    transfer_id: int
    index: int
    count: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Want:
    """The sender asks the recipient incarnation for its changes after `have_version`."""

    incarnation: int
    have_version: int


@dataclass(frozen=True, slots=True)
class Frame:
    sender: OwnerId
    recipient: str
    heartbeat_ms: int   # the sender's clock when it built the frame
    version: int        # the sender's own presence version
    want: Want | None = None
    chunk: Chunk | None = None
    goodbye: bool = False   # the sender's incarnation stops: its entries leave, its later frames are refused


def seal(frame: Frame, secret: bytes) -> bytes:
    """The authenticated bytes of `frame`."""
    chunk = frame.chunk
    assert not frame.goodbye or (frame.want is None and chunk is None), "a goodbye asks and carries nothing"
    fields = [frame.sender.node, frame.sender.incarnation, frame.recipient, frame.heartbeat_ms, frame.version,
              None if frame.want is None else [frame.want.incarnation, frame.want.have_version],
              None if chunk is None else [chunk.transfer_id, chunk.index, chunk.count, chunk.data]]
    body = canonical.encode(fields + [True] if frame.goodbye else fields)
    version = bytes([PRESENCE_WIRE_VERSION])
    return version + _mac(secret, version, body) + body


def open_frame(data: bytes, secret: bytes, recipient: str,
               frame_bytes_max: int = limits.PRESENCE_FRAME_BYTES_MAX) -> Frame:
    """The frame in `data`, addressed to `recipient`; raises Rejected."""
    if len(data) > frame_bytes_max:
        raise Rejected("too_large", f"{len(data)} bytes")
    if len(data) < FRAME_HEADER_BYTES or data[0] != PRESENCE_WIRE_VERSION:
        raise Rejected("bad_version")
    body = data[FRAME_HEADER_BYTES:]
    if not hmac.compare_digest(_mac(secret, data[:1], body), data[1:FRAME_HEADER_BYTES]):
        raise Rejected("bad_mac")
    try:
        frame = _frame_from_plain(canonical.decode(body))
    except (ValueError, TypeError, InvalidArgument) as error:
        raise Rejected("malformed", str(error)) from error
    if frame.recipient != recipient:
        raise Rejected("misaddressed", f"to {frame.recipient!r}")
    return frame


def _mac(secret: bytes, version: bytes, body: bytes) -> bytes:
    return hmac.new(secret, DOMAIN_TAG + version + body, hashlib.sha256).digest()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _natural(value: Any) -> bool:
    return type(value) is int and 0 <= value < ID_LIMIT


def _fields(value: Any, count: int, what: str) -> list:
    _require(isinstance(value, list) and len(value) == count, f"{what} has the wrong shape")
    return value


def _frame_from_plain(value: Any) -> Frame:
    goodbye = isinstance(value, list) and len(value) == 8
    if goodbye:
        _require(value[7] is True and value[5] is None and value[6] is None, "a goodbye asks and carries nothing")
        value = value[:7]
    node, incarnation, recipient, heartbeat_ms, version, want, chunk = _fields(value, 7, "a frame")
    _require(isinstance(node, str) and isinstance(recipient, str), "node names are strings")
    _require(all(_natural(number) for number in (incarnation, heartbeat_ms, version)), "bad frame numbers")
    sender = check_owner(OwnerId(node, incarnation))
    parsed_want = None
    if want is not None:
        want_incarnation, have_version = _fields(want, 2, "a want")
        _require(_natural(want_incarnation) and _natural(have_version), "bad want numbers")
        parsed_want = Want(want_incarnation, have_version)
    parsed_chunk = None
    if chunk is not None:
        transfer_id, index, count, data = _fields(chunk, 4, "a chunk")
        _require(all(_natural(number) for number in (transfer_id, index, count)), "bad chunk numbers")
        _require(index < count and isinstance(data, bytes), "bad chunk")
        parsed_chunk = Chunk(transfer_id, index, count, data)
    return Frame(sender, recipient, heartbeat_ms, version, parsed_want, parsed_chunk, goodbye)


# -- transfers --------------------------------------------------------------

def encode_transfer(transfer: Transfer) -> bytes:
    owner = transfer.owner
    return canonical.encode([
        owner.node, owner.incarnation, transfer.base_version, transfer.version, transfer.full,
        sorted(transfer.sessions.items()), list(transfer.closed),
        [[entry.topic, entry.key, entry.session, meta, written]
         for entry, (meta, written) in sorted(transfer.upserts.items())],
        [[entry.topic, entry.key, entry.session] for entry in transfer.removed]])


def decode_transfer(data: bytes) -> Transfer:
    """The transfer in `data`; raises Rejected("malformed") for anything
    that is not one, or breaks a presence limit."""
    try:
        node, incarnation, base_version, version, full, sessions, closed, upserts, removed = \
            _fields(canonical.decode(data), 9, "a transfer")
        _require(isinstance(node, str) and isinstance(full, bool), "bad transfer header")
        _require(all(_natural(number) for number in (incarnation, base_version, version)), "bad versions")
        _require(base_version < version, "a transfer moves its version forward")
        _require(all(isinstance(part, list) for part in (sessions, closed, upserts, removed)), "bad lists")
        parsed_sessions = {}
        for pair in sessions:
            session, deadline_ms = _fields(pair, 2, "a session")
            _require(_natural(deadline_ms), "bad deadline")
            parsed_sessions[check_session(session)] = deadline_ms
        parsed_upserts = {}
        for row in upserts:
            topic, key, session, meta, written = _fields(row, 5, "an entry")
            _require(_natural(written) and base_version < written <= version, "bad entry version")
            parsed_upserts[_entry(topic, key, session)] = (check_meta(meta), written)
        return Transfer(check_owner(OwnerId(node, incarnation)), base_version, version, full, parsed_sessions,
                        tuple(check_session(session) for session in closed), parsed_upserts,
                        tuple(_entry(*_fields(row, 3, "a removal")) for row in removed))
    except (ValueError, TypeError, InvalidArgument) as error:
        raise Rejected("malformed", str(error)) from error


def _entry(topic: Any, key: Any, session: Any) -> EntryId:
    return EntryId(check_topic(topic), check_key(key), check_session(session))


def chunk_data_bytes_max(frame_bytes_max: int = limits.PRESENCE_FRAME_BYTES_MAX) -> int:
    """Bytes of transfer one frame's chunk carries."""
    assert frame_bytes_max > 2 * FRAME_OVERHEAD_BYTES_MAX
    return frame_bytes_max - FRAME_OVERHEAD_BYTES_MAX


def cut(transfer_id: int, data: bytes, frame_bytes_max: int = limits.PRESENCE_FRAME_BYTES_MAX) -> list[Chunk]:
    """`data` as chunks that each fit a frame (at least one chunk)."""
    step = chunk_data_bytes_max(frame_bytes_max)
    pieces = [data[start:start + step] for start in range(0, len(data), step)] or [b""]
    return [Chunk(transfer_id, index, len(pieces), piece) for index, piece in enumerate(pieces)]


class Reassembly:
    """Chunks of one sender's transfers put back together. One transfer per
    sender is kept in progress: a chunk of another transfer id starts over
    (the abandoned one is asked for again when the sender's version says the
    copy is behind)."""

    def __init__(self, transfer_bytes_max: int = limits.PRESENCE_NODE_STATE_BYTES_MAX + (1 << 20),
                 frame_bytes_max: int = limits.PRESENCE_FRAME_BYTES_MAX):
        self._chunks_max = -(-transfer_bytes_max // chunk_data_bytes_max(frame_bytes_max))
        self._pending: dict[OwnerId, tuple[int, int, dict[int, bytes]]] = {}
        self.abandoned = 0

    def add(self, sender: OwnerId, chunk: Chunk) -> bytes | None:
        """The whole transfer once its last chunk has come, else None;
        raises Rejected("too_large") for a transfer of too many chunks."""
        if chunk.count > self._chunks_max:
            raise Rejected("too_large", f"a transfer of {chunk.count} chunks")
        if chunk.count == 1:
            self._pending.pop(sender, None)
            return chunk.data
        pending = self._pending.get(sender)
        if pending is None or pending[:2] != (chunk.transfer_id, chunk.count):
            self.abandoned += pending is not None
            pending = (chunk.transfer_id, chunk.count, {})
            self._pending[sender] = pending
        pending[2][chunk.index] = chunk.data
        if len(pending[2]) < chunk.count:
            return None
        del self._pending[sender]
        return b"".join(pending[2][index] for index in range(chunk.count))

    def forget(self, sender: OwnerId) -> None:
        self._pending.pop(sender, None)

    def keep_only(self, senders: set[OwnerId]) -> None:
        """Drops the transfers in progress of senders not in `senders`
        (owners that lapsed or were replaced)."""
        for sender in [sender for sender in self._pending if sender not in senders]:
            del self._pending[sender]
