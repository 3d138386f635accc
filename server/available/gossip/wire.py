"""Gossip messages and their authenticated framing.

A frame is

    GOSSIP_WIRE_VERSION (1 byte) | HMAC-SHA256 (32 bytes) | body

where the MAC is keyed with the cluster secret and covers the version byte
and the body, and the body is the canonical encoding of the message tree.
The MAC is checked (in constant time) before a byte of the body is decoded.

A message names its sender and recipient and both incarnations, so a frame
sent to one node, or to an earlier life of it, means nothing to another.

This module owns the message shapes and bytes <-> message. It never knows
what a section asks for or what a node does with it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.base import TableKind
from tandemkv.server.available.crdt.hlc import Hlc

GOSSIP_WIRE_VERSION = 1
MAC_BYTES = 32
FRAME_HEADER_BYTES = 1 + MAC_BYTES


class MessageKind(enum.IntEnum):
    PUSH = 0   # starts a round; the recipient answers with a REPLY
    REPLY = 1  # answers a PUSH; the recipient may answer with a FINAL
    FINAL = 2  # ends an exchange (also carries chunks of large payloads)


class Rejected(Exception):
    """A frame was refused; `reason` is the status counter it counts under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Chunk:
    """One piece of a payload: an encoded CRDT state or delta."""

    transfer_id: int
    full: bool      # the sender's whole state (else a delta interval)
    upto_seq: int   # the sender's sequence number the payload covers
    index: int
    count: int
    data: bytes


@dataclass(frozen=True)
class Section:
    """What a message says about one table."""

    table: str
    kind: TableKind
    digest: bytes     # of the sender's state when the message was built
    seq: int          # the sender's sequence number for the table then
    ack: int | None   # the recipient's sequence number the sender covers
    want: bool        # the sender asks for the recipient's state
    chunk: Chunk | None


@dataclass(frozen=True)
class Message:
    kind: MessageKind
    sender: str
    recipient: str
    sender_incarnation: Hlc
    recipient_incarnation: Hlc | None
    stamp: Hlc
    heartbeats: dict[str, Hlc]
    sections: tuple[Section, ...]


def seal(message: Message, secret: bytes) -> bytes:
    """The authenticated frame of `message`."""
    return seal_body(GOSSIP_WIRE_VERSION, canonical.encode(_message_to_plain(message)), secret)


def open_frame(frame: bytes, secret: bytes, frame_bytes_max: int) -> Message:
    """The message in an authenticated frame; raises Rejected with reason
    too_large, bad_version, bad_mac or malformed."""
    body = open_body(frame, GOSSIP_WIRE_VERSION, secret, frame_bytes_max)
    try:
        return _message_from_plain(canonical.decode(body))
    except (ValueError, TypeError, KeyError) as error:
        raise Rejected("malformed", str(error)) from error


def seal_body(version: int, body: bytes, secret: bytes) -> bytes:
    """A frame: the version byte, the HMAC-SHA256 of version and body, the
    body (every gossip wire version frames its messages so)."""
    head = bytes([version])
    return head + hmac.new(secret, head + body, hashlib.sha256).digest() + body


def open_body(frame: bytes, version: int, secret: bytes, frame_bytes_max: int) -> bytes:
    """The body of a frame sealed by `seal_body` with `version`; raises
    Rejected with reason too_large, bad_version or bad_mac."""
    if len(frame) > frame_bytes_max:
        raise Rejected("too_large", f"{len(frame)} bytes")
    if len(frame) < FRAME_HEADER_BYTES or frame[0] != version:
        raise Rejected("bad_version")
    body = frame[FRAME_HEADER_BYTES:]
    expected = hmac.new(secret, frame[:1] + body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, frame[1:FRAME_HEADER_BYTES]):
        raise Rejected("bad_mac")
    return body


def _optional_hlc(stamp: Hlc | None) -> Any:
    return None if stamp is None else stamp.to_plain()


def _message_to_plain(message: Message) -> list:
    heartbeats = {node: stamp.to_plain() for node, stamp in message.heartbeats.items()}
    return [int(message.kind), message.sender, message.recipient,
            message.sender_incarnation.to_plain(), _optional_hlc(message.recipient_incarnation),
            message.stamp.to_plain(), heartbeats,
            [_section_to_plain(section) for section in message.sections]]


def _section_to_plain(section: Section) -> list:
    chunk = section.chunk
    chunk_plain = None if chunk is None else [
        chunk.transfer_id, chunk.full, chunk.upto_seq, chunk.index, chunk.count, chunk.data]
    return [section.table, section.kind.value, section.digest, section.seq, section.ack,
            section.want, chunk_plain]


def _fields(value: Any, count: int, what: str) -> list:
    if not (isinstance(value, list) and len(value) == count):
        raise ValueError(f"{what} has the wrong shape")
    return value


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _natural(value: Any) -> bool:
    return type(value) is int and value >= 0


def _message_from_plain(value: Any) -> Message:
    kind, sender, recipient, incarnation, recipient_incarnation, stamp, heartbeats, sections = \
        _fields(value, 8, "a message")
    _require(isinstance(sender, str) and isinstance(recipient, str), "node ids are strings")
    _require(isinstance(heartbeats, dict) and isinstance(sections, list), "bad message body")
    _require(all(isinstance(node, str) for node in heartbeats), "heartbeat keys are node ids")
    return Message(
        kind=MessageKind(kind), sender=sender, recipient=recipient,
        sender_incarnation=Hlc.from_plain(incarnation),
        recipient_incarnation=None if recipient_incarnation is None
        else Hlc.from_plain(recipient_incarnation),
        stamp=Hlc.from_plain(stamp),
        heartbeats={node: Hlc.from_plain(beat) for node, beat in heartbeats.items()},
        sections=tuple(_section_from_plain(section) for section in sections))


def _section_from_plain(value: Any) -> Section:
    table, kind, digest, seq, ack, want, chunk = _fields(value, 7, "a section")
    _require(isinstance(table, str) and isinstance(digest, bytes), "bad table or digest")
    _require(_natural(seq) and (ack is None or _natural(ack)), "bad sequence numbers")
    _require(isinstance(want, bool), "want is a boolean")
    return Section(table=table, kind=TableKind(kind), digest=digest, seq=seq, ack=ack, want=want,
                   chunk=None if chunk is None else _chunk_from_plain(chunk))


def _chunk_from_plain(value: Any) -> Chunk:
    transfer_id, full, upto_seq, index, count, data = _fields(value, 6, "a chunk")
    _require(all(_natural(number) for number in (transfer_id, upto_seq, index, count)),
             "chunk numbers are natural")
    _require(isinstance(full, bool) and isinstance(data, bytes), "bad chunk fields")
    _require(index < count, "chunk index out of range")
    return Chunk(transfer_id, full, upto_seq, index, count, data)


def section_bytes(section: Section) -> int:
    """The bytes `section` adds to a frame (give or take the few bytes of
    the section count)."""
    return len(canonical.encode(_section_to_plain(section)))
