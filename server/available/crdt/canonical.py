"""The canonical binary encoding of the available plane, version 1.

Everything the available plane stores or sends (CRDT states, deltas, gossip
messages) is a tree of None, bool, int, bytes, str, list and dict, encoded
here. The encoding is canonical: one value has exactly one encoding (map
entries sorted by their encoded key, minimal varints), and `decode` rejects
anything else, so `encode(decode(data)) == data` and equal states have equal
digests.

Layout: one tag byte, then the content.

    0x00 None   0x01 False   0x02 True
    0x03 int    zigzag varint, within int64
    0x04 bytes  varint length, raw bytes
    0x05 str    varint length, UTF-8
    0x06 list   varint count, items
    0x07 map    varint count, (key, value) pairs in strictly increasing
                order of the key's encoding

This module owns bytes <-> trees only. It never knows what the trees mean.
"""

from __future__ import annotations

from typing import Any, Union

from tandemkv import limits

# Varint bytes of an int64 in zigzag form.
VARINT_BYTES_MAX = 10
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Plain = Union[None, bool, int, bytes, str, list, tuple, dict]

_NONE, _FALSE, _TRUE, _INT, _BYTES, _STR, _LIST, _MAP = range(8)


class DecodeError(ValueError):
    """The bytes are not a canonical version-1 encoding."""


def encode(value: Plain) -> bytes:
    """The canonical encoding of `value`; lists and tuples encode alike."""
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


def decode(data: bytes) -> Any:
    """The tree `data` encodes; raises DecodeError for anything else,
    including trailing bytes and non-canonical forms."""
    value, end = _decode_at(memoryview(data), 0, 0)
    if end != len(data):
        raise DecodeError("trailing bytes after the value")
    return value


def _encode_into(out: bytearray, value: Plain) -> None:
    if value is None:
        out.append(_NONE)
    elif value is True or value is False:
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        assert INT64_MIN <= value <= INT64_MAX, f"integer {value} outside int64"
        out.append(_INT)
        _put_varint(out, (value << 1) ^ (value >> 63))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out.append(_BYTES)
        _put_varint(out, len(value))
        out += value
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out.append(_STR)
        _put_varint(out, len(raw))
        out += raw
    elif isinstance(value, (list, tuple)):
        out.append(_LIST)
        _put_varint(out, len(value))
        for item in value:
            _encode_into(out, item)
    elif isinstance(value, dict):
        _encode_map(out, value)
    else:
        raise AssertionError(f"cannot encode {type(value).__name__}")


def _encode_map(out: bytearray, value: dict) -> None:
    pairs = sorted((encode(key), item) for key, item in value.items())
    out.append(_MAP)
    _put_varint(out, len(pairs))
    for index, (key, item) in enumerate(pairs):
        assert index == 0 or pairs[index - 1][0] != key, "map keys encode alike"
        out += key
        _encode_into(out, item)


def _put_varint(out: bytearray, number: int) -> None:
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)


def _get_varint(data: memoryview, at: int) -> tuple[int, int]:
    number = shift = 0
    for offset in range(VARINT_BYTES_MAX):
        if at + offset >= len(data):
            raise DecodeError("truncated varint")
        byte = data[at + offset]
        number |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte == 0 and offset > 0:
                raise DecodeError("varint is not minimal")
            return number, at + offset + 1
    raise DecodeError("varint too long")


def _take(data: memoryview, at: int, length: int) -> tuple[bytes, int]:
    if length > len(data) - at:
        raise DecodeError("truncated string")
    return bytes(data[at:at + length]), at + length


def _decode_at(data: memoryview, at: int, depth: int) -> tuple[Any, int]:
    if at >= len(data):
        raise DecodeError("truncated value")
    tag, at = data[at], at + 1
    if tag in (_NONE, _FALSE, _TRUE):
        return (None, False, True)[tag], at
    if tag == _INT:
        zigzag, at = _get_varint(data, at)
        if zigzag >= 2**64:
            raise DecodeError("integer outside int64")
        return (zigzag >> 1) ^ -(zigzag & 1), at
    if tag in (_BYTES, _STR):
        length, at = _get_varint(data, at)
        raw, at = _take(data, at, length)
        return (raw, at) if tag == _BYTES else (_utf8(raw), at)
    if tag in (_LIST, _MAP):
        if depth >= limits.CRDT_NESTING_DEPTH_MAX:
            raise DecodeError("nesting too deep")
        count, at = _get_varint(data, at)
        if count > len(data) - at:
            raise DecodeError("count larger than the remaining bytes")
        if tag == _LIST:
            return _decode_list(data, at, depth, count)
        return _decode_map(data, at, depth, count)
    raise DecodeError(f"unknown tag {tag}")


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DecodeError("invalid UTF-8") from error


def _decode_list(data: memoryview, at: int, depth: int, count: int) -> tuple[list, int]:
    items = []
    for _ in range(count):
        item, at = _decode_at(data, at, depth + 1)
        items.append(item)
    return items, at


def _decode_map(data: memoryview, at: int, depth: int, count: int) -> tuple[dict, int]:
    result: dict = {}
    previous = b""
    for index in range(count):
        start = at
        key, at = _decode_at(data, at, depth + 1)
        encoded_key = bytes(data[start:at])
        if index > 0 and encoded_key <= previous:
            raise DecodeError("map keys out of order")
        if isinstance(key, (list, dict)):
            raise DecodeError("map key is not a scalar")
        previous = encoded_key
        result[key], at = _decode_at(data, at, depth + 1)
    return result, at
