"""Decoding a request's bytes inside the handler, where a failure can be
answered: `decode` turns bytes into the RPC's request message or raises
`MalformedRequest` (INVALID_ARGUMENT) with a message saying what is wrong.

grpcio decodes before the handler runs when it is given a deserializer, and
answers a failure with `INTERNAL: Exception deserializing request!`, a
traceback in the log, and memory it never frees; so the server registers
every method with raw bytes in and decodes here instead.

The protobuf runtime only says "Error parsing message", so on a failure
`describe_malformed` walks the wire format against the message's descriptor
to name the first problem (truncation, a bad tag or wire type, invalid UTF-8
in a `string` field, nesting too deep). It runs only on the failure path.
Pure: no grpc, no sockets.
"""

from __future__ import annotations

from google.protobuf import descriptor as _descriptor
from google.protobuf.message import DecodeError, Message

from tandemkv import errors, limits

# Bytes of a varint at most (a 64-bit value).
VARINT_BYTES_MAX = 10

_FIXED_BYTES = {1: 8, 5: 4}
_LENGTH_DELIMITED = 2
_GROUP_WIRE_TYPES = (3, 4)
_FD = _descriptor.FieldDescriptor


class MalformedRequest(errors.InvalidArgument):
    """The request's bytes are not an encoding of the RPC's request type."""


def decode(message_class: type[Message], raw: bytes) -> Message:
    """`raw` parsed as `message_class`; MalformedRequest if it is not one."""
    try:
        return message_class.FromString(raw)
    except (DecodeError, RuntimeError, ValueError) as error:
        # RuntimeError: the runtime's recursion limit on deep nesting.
        full_name = message_class.DESCRIPTOR.full_name
        reason = describe_malformed(message_class.DESCRIPTOR, raw) or str(error)
        raise MalformedRequest(
            f"the request's {len(raw)} bytes are not a valid {full_name}: {reason}; "
            "encode requests from the service's .proto (proto/tandemkv/v1 for TandemKV's)") from None


class _Problem(Exception):
    pass


def describe_malformed(message_type: _descriptor.Descriptor, raw: bytes) -> str | None:
    """The first problem in `raw` as an encoding of `message_type`, said so a
    client author can find it; None if the walker finds none."""
    try:
        _walk(message_type, memoryview(raw), 0, len(raw), 1)
    except _Problem as problem:
        return str(problem)
    return None


def _varint(data: memoryview, position: int, end: int) -> tuple[int, int]:
    value = 0
    for count in range(VARINT_BYTES_MAX):
        if position + count >= end:
            raise _Problem(f"truncated varint at byte {position}")
        byte = data[position + count]
        value |= (byte & 0x7F) << (7 * count)
        if not byte & 0x80:
            return value, position + count + 1
    raise _Problem(f"varint longer than {VARINT_BYTES_MAX} bytes at byte {position}")


def _walk(message_type: _descriptor.Descriptor, data: memoryview, position: int, end: int,
          depth: int) -> None:
    if depth > limits.PROTOBUF_NESTING_DEPTH_MAX:
        raise _Problem(f"messages nested deeper than {limits.PROTOBUF_NESTING_DEPTH_MAX}")
    while position < end:
        start = position
        tag, position = _varint(data, position, end)
        number, wire_type = tag >> 3, tag & 7
        field = message_type.fields_by_number.get(number) if message_type else None
        name = f"field {number}" + (f" ({field.name})" if field else "")
        if number == 0:
            raise _Problem(f"field number 0 at byte {start}")
        if wire_type == 0:
            _, position = _varint(data, position, end)
        elif wire_type in _FIXED_BYTES:
            position += _FIXED_BYTES[wire_type]
            if position > end:
                raise _Problem(f"{name} at byte {start} is truncated")
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(data, position, end)
            if length > end - position:
                raise _Problem(f"{name} at byte {start} declares {length} bytes, "
                               f"{end - position} remain")
            _check_delimited(field, name, start, data, position, position + length, depth)
            position += length
        elif wire_type in _GROUP_WIRE_TYPES:
            raise _Problem(f"{name} at byte {start} uses a group wire type ({wire_type}), "
                           "which proto3 requests never do")
        else:
            raise _Problem(f"invalid wire type {wire_type} at byte {start}")


def _check_delimited(field, name: str, start: int, data: memoryview, begin: int, end: int,
                     depth: int) -> None:
    if field is None:
        return
    if field.type == _FD.TYPE_STRING:
        try:
            bytes(data[begin:end]).decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Problem(f"{name} at byte {start} is a string but not valid UTF-8 "
                           f"({error.reason} at its byte {error.start})") from None
    elif field.type == _FD.TYPE_MESSAGE:
        _walk(field.message_type, data, begin, end, depth + 1)
