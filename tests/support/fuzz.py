"""Hostile requests for every RPC of TandemKV's services, for the fuzz tier
(tests/test_fuzz_api.py) and the malformed-request benchmark.

- `rpc_methods()`: every RPC of every service in proto/tandemkv/v1, from
  the descriptors, so a new RPC is fuzzed without anyone listing it.
- Raw cases (seeded `random.Random`): random bytes, mutations of a valid
  encoding (bit flips, truncation, a field duplicated, garbage appended),
  and invalid UTF-8 in every `string` field.
- `request_strategy(descriptor)`: hypothesis strategies over the request
  message with every field at and around its limit: bytes of limit-1,
  limit, limit+1, integers at the edges of their type and of the named
  limits (negative TTLs, huge waits), unknown enum values, repeated fields
  (transaction branches, gossip frames) at their count limits.
- `send(channel, method, raw)`: one call with raw bytes, streams included;
  the status code it ended with.
"""

from __future__ import annotations

import dataclasses
import random

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from hypothesis import strategies as st

from tandemkv import limits
from tandemkv.v1 import (
    batch_pb2, cluster_pb2, coordination_pb2, counter_pb2, crdt_pb2, kv_pb2, lease_pb2, maintenance_pb2, presence_pb2,
    pubsub_pb2, watch_pb2, jobs_pb2, auth_pb2,
)

PROTO_MODULES = (kv_pb2, counter_pb2, batch_pb2, cluster_pb2, crdt_pb2, lease_pb2, coordination_pb2, watch_pb2,
                 pubsub_pb2, presence_pb2, maintenance_pb2, jobs_pb2, auth_pb2)
# Codes a fuzzed request must never get: each means a bug on the server.
FORBIDDEN_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                             grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.DATA_LOSS})
# Deadline of one fuzzed call; a stream is read for at most its first
# response within STREAM_READ_S, then cancelled.
CALL_TIMEOUT_S = 3.0
STREAM_READ_S = 0.3
# Longest random byte string sent.
RANDOM_BYTES_MAX = 96
# Nesting of generated messages (KeyRange in a DeleteRequest in a RequestOp
# in a TxnRequest is 3).
MESSAGE_DEPTH_MAX = 3

_KEY = limits.KEY_SIZE_BYTES_MAX
_BYTES_LENGTHS = {
    "request_id": (0, limits.REQUEST_ID_BYTES - 1, limits.REQUEST_ID_BYTES, limits.REQUEST_ID_BYTES + 1),
    "value": (0, 1, limits.VALUE_SIZE_BYTES_MAX - 1, limits.VALUE_SIZE_BYTES_MAX,
              limits.VALUE_SIZE_BYTES_MAX + 1),
    "payload": (0, 1, limits.PUBSUB_MESSAGE_BYTES_MAX, limits.PUBSUB_MESSAGE_BYTES_MAX + 1),
}
_KEY_LENGTHS = (0, 1, _KEY - 1, _KEY, _KEY + 1, limits.LMDB_KEY_BYTES_MAX, limits.LMDB_KEY_BYTES_MAX + 1)
_NAME_LENGTHS = (0, 1, limits.CRDT_TABLE_NAME_BYTES_MAX - 1, limits.CRDT_TABLE_NAME_BYTES_MAX,
                 limits.CRDT_TABLE_NAME_BYTES_MAX + 1)
_LIMIT_INTS = (
    limits.LEASE_TTL_MS_MIN - 1, limits.LEASE_TTL_MS_MIN, limits.LEASE_TTL_MS_MAX,
    limits.LEASE_TTL_MS_MAX + 1, limits.CLAIM_WAIT_MS_MAX, limits.CLAIM_WAIT_MS_MAX + 1,
    limits.RANGE_KEYS_MAX, limits.RANGE_KEYS_MAX + 1, limits.CRDT_SCAN_ENTRIES_MAX + 1,
    limits.WATCH_RESPONSE_EVENTS_MAX + 1, -limits.LEASE_TTL_MS_MIN,
)
_EDGE_INTS = (0, 1, -1, 2, 2**31 - 1, -2**31, 2**32 - 1, 2**63 - 1, -2**63, 2**64 - 1)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_REPEATED_COUNTS = {
    "compare": (0, 1, limits.TXN_COMPARES_MAX, limits.TXN_COMPARES_MAX + 1),
    "success": (0, 1, 32, limits.TXN_OPS_MAX, limits.TXN_OPS_MAX + 1),
    "failure": (0, 1, limits.TXN_OPS_MAX, limits.TXN_OPS_MAX + 1),
    "ops": (0, 1, 32, limits.BATCH_OPS_MAX, limits.BATCH_OPS_MAX + 1),
    "frames": (0, 1, limits.GOSSIP_DELIVER_FRAMES_MAX, limits.GOSSIP_DELIVER_FRAMES_MAX + 1),
    "jobs": (0, 1, 3, limits.JOB_ENQUEUE_MANY_JOBS_MAX, limits.JOB_ENQUEUE_MANY_JOBS_MAX + 1),
    "settlements": (0, 1, 3, limits.JOB_SETTLE_JOBS_MAX, limits.JOB_SETTLE_JOBS_MAX + 1),
}

# A distinct byte per request type that has a request id, to fill its ids.
_REQUEST_ID_FILLERS = {name: bytes([0x41 + k]) for k, name in enumerate(sorted(
    message.full_name for module in PROTO_MODULES for message in module.DESCRIPTOR.message_types_by_name.values()
    if "request_id" in message.fields_by_name))}


@dataclasses.dataclass(frozen=True)
class Rpc:
    path: str
    method: MethodDescriptor
    request_class: type

    @property
    def streaming(self) -> bool:
        return self.method.client_streaming or self.method.server_streaming


def rpc_methods() -> list[Rpc]:
    found = []
    for module in PROTO_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(Rpc(f"/{service.full_name}/{method.name}", method,
                                 message_factory.GetMessageClass(method.input_type)))
    return found


# -- raw cases --

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(raw: bytes, position: int) -> tuple[int, int]:
    """(value, position after it) of the varint at `position`."""
    value, shift = 0, 0
    while True:
        byte = raw[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def _field_spans(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level field of a valid encoding."""
    spans, position = [], 0
    while position < len(raw):
        start = position
        tag, position = _read_varint(raw, position)
        wire_type = tag & 7
        if wire_type == 0:
            _, position = _read_varint(raw, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            length, position = _read_varint(raw, position)
            position += length
        spans.append((start, position))
    return spans


def mutate(rng: random.Random, valid: bytes) -> bytes:
    """One mutation of a valid encoding."""
    kind = rng.randrange(5)
    if kind == 0 and valid:  # bit flips
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 1 and valid:  # truncation
        return valid[:rng.randrange(len(valid))]
    if kind == 2 and valid:  # a field duplicated
        start, end = rng.choice(_field_spans(valid))
        return valid + valid[start:end] * rng.randint(1, 3)
    if kind == 3:  # a made-up field with a bad length or wire type
        number = rng.choice((1, 2, 3, 15, 16, 536_870_911))
        tag = _varint(number << 3 | rng.choice((2, 3, 4, 6, 7)))
        return valid + tag + _varint(rng.choice((0, 1, 2**31, 2**63))) + b"x" * rng.randrange(4)
    return valid + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(RANDOM_BYTES_MAX)))


def invalid_utf8_cases(descriptor: Descriptor, depth: int = 0) -> list[bytes]:
    """For every `string` field reachable from `descriptor`, an encoding
    that holds invalid UTF-8 there."""
    cases = []
    for field in descriptor.fields:
        tag = _varint(field.number << 3 | 2)
        if field.type == FieldDescriptor.TYPE_STRING:
            cases.append(tag + _varint(3) + b"a\xff\xfe")
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth < MESSAGE_DEPTH_MAX:
            cases += [tag + _varint(len(inner)) + inner
                      for inner in invalid_utf8_cases(field.message_type, depth + 1)]
    return cases


# -- structure-aware cases --

def _within(field: FieldDescriptor) -> int:
    """The most bytes a field's limit allows (the key limit for the rest)."""
    if field.name == "value":
        return limits.VALUE_SIZE_BYTES_MAX
    if field.name == "payload":
        return limits.PUBSUB_MESSAGE_BYTES_MAX
    if field.type == FieldDescriptor.TYPE_STRING:
        return limits.CRDT_TABLE_NAME_BYTES_MAX
    return limits.KEY_SIZE_BYTES_MAX


def _bytes_strategy(field: FieldDescriptor, valid: bool) -> st.SearchStrategy:
    if field.name in _BYTES_LENGTHS:
        lengths = _BYTES_LENGTHS[field.name]
    elif field.type == FieldDescriptor.TYPE_STRING:
        lengths = _NAME_LENGTHS
    else:
        lengths = _KEY_LENGTHS
    if valid:  # within the limit: what a well-behaved client may send
        lengths = ((0, limits.REQUEST_ID_BYTES) if field.name == "request_id"
                   else tuple(n for n in lengths if 0 < n <= _within(field)))
    small = st.binary(max_size=8) if field.type == FieldDescriptor.TYPE_BYTES else st.text(max_size=8)
    filler = b"k" if field.type == FieldDescriptor.TYPE_BYTES else "t"
    if field.name == "request_id":
        # One request id per request type: a request id reused by a
        # different request is a known case of its own (see
        # tests/test_cluster_api_edge.py), not one to meet by chance.
        filler = _REQUEST_ID_FILLERS[field.containing_type.full_name]
    return st.one_of(small, st.sampled_from(lengths).map(lambda n: filler * n))


def _scalar_strategy(field: FieldDescriptor, valid: bool) -> st.SearchStrategy:
    if field.type in (FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_STRING):
        return _bytes_strategy(field, valid)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.sampled_from(known if valid else [*known, -1, 99, 2**31 - 1])
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, width=32)
    if valid:
        return st.sampled_from((0, 1, 2, 3, limits.LEASE_TTL_MS_MIN, 10_000))
    low, high = _INT_RANGES[field.type]
    edges = [v for v in (*_EDGE_INTS, *_LIMIT_INTS) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def request_strategy(descriptor: Descriptor) -> st.SearchStrategy:
    """Messages of `descriptor` with fields at and around their limits: half
    of them within every limit (so they reach the state machine), half with
    any field anywhere."""
    return st.one_of(_message_strategy(descriptor, 0, True), _message_strategy(descriptor, 0, False))


def _message_strategy(descriptor: Descriptor, depth: int, valid: bool) -> st.SearchStrategy:
    message_class = message_factory.GetMessageClass(descriptor)
    oneofs = {f.name for o in descriptor.oneofs for f in o.fields}
    parts = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= MESSAGE_DEPTH_MAX or field.message_type.GetOptions().map_entry:
                continue
            value = _message_strategy(field.message_type, depth + 1, valid)
        else:
            value = _scalar_strategy(field, valid)
        if field.is_repeated:
            counts = _REPEATED_COUNTS.get(field.name, (0, 1, 2, 3))
            counts = counts[:-1] if valid and counts[-1] > 3 else counts
            value = st.tuples(value, st.sampled_from(counts)).map(lambda pair: [pair[0]] * pair[1])
        parts[field.name] = st.one_of(st.none(), value)
    chosen_oneof = st.sampled_from(sorted(oneofs)) if oneofs else st.none()

    def build(drawn: tuple[dict, str | None]):
        values, keep = drawn
        message = message_class()
        for name, value in values.items():
            if value is None or (name in oneofs and name != keep):
                continue
            field = descriptor.fields_by_name[name]
            if field.is_repeated:
                container = getattr(message, name)
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    for item in value:
                        container.add().CopyFrom(item)
                else:
                    container.extend(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message
    return st.tuples(st.fixed_dictionaries(parts), chosen_oneof).map(build)


# -- sending --

def send(channel: grpc.Channel, rpc: Rpc, raw: bytes) -> grpc.StatusCode:
    """Sends `raw` as the request of `rpc`; the status code it ended with
    (OK for a stream that answered or stayed open; CANCELLED never)."""
    try:
        if not rpc.method.server_streaming:
            channel.unary_unary(rpc.path)(raw, timeout=CALL_TIMEOUT_S)
            return grpc.StatusCode.OK
        if rpc.method.client_streaming:
            responses = channel.stream_stream(rpc.path)(iter([raw]), timeout=STREAM_READ_S)
        else:
            responses = channel.unary_stream(rpc.path)(raw, timeout=STREAM_READ_S)
        try:
            next(responses, None)
        finally:
            responses.cancel()
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
        # A stream still open at its short deadline is what a healthy one does.
        return grpc.StatusCode.OK if code == grpc.StatusCode.CANCELLED else code
