"""Reads of the strong state: the same functions serve a node's read path
(after a read barrier, or stale) and the reads inside a transaction. Pure:
they take a `StoreView` and the revision the answer reflects."""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import counter_pb2, kv_pb2

from tandemkv.server.strong.view import KvRecord, StoreView


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix`; None
    when no such key exists (empty prefix, or all 0xff bytes)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def key_bounds(key_range: kv_pb2.KeyRange) -> tuple[bytes, bytes | None]:
    """[start, end) of a KeyRange; see kv.proto for its three forms."""
    if key_range.prefix:
        return key_range.key, prefix_end(key_range.key)
    if key_range.range_end:
        return key_range.key, key_range.range_end
    return key_range.key, key_range.key + b"\x00"


def to_key_value(key: bytes, record: KvRecord, keys_only: bool = False) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=key,
        value=b"" if keys_only else record.value,
        create_revision=record.create_revision,
        mod_revision=record.mod_revision,
        version=record.version,
        lease=record.lease,
    )


def read_get(view: StoreView, request: kv_pb2.GetRequest, revision: int) -> kv_pb2.GetResponse:
    response = kv_pb2.GetResponse(header=kv_pb2.ResponseHeader(revision=revision))
    record = view.kv_get(request.key)
    if record is not None:
        response.found = True
        response.kv.CopyFrom(to_key_value(request.key, record))
    return response


# What a response's header and each repeated entry's tag and length add to
# the entries' own encoded sizes, at most.
RESPONSE_HEADER_BYTES_MAX = 64
ENTRY_FRAMING_BYTES_MAX = 6


def read_range(
    view: StoreView, request: kv_pb2.RangeRequest, revision: int,
    size_bytes_max: int = limits.RANGE_RESPONSE_BYTES_MAX,
) -> kv_pb2.RangeResponse:
    """Keys in the range, in order, until `limit` keys or `size_bytes_max`
    encoded bytes (then more=true): the response never outgrows it."""
    response = kv_pb2.RangeResponse(header=kv_pb2.ResponseHeader(revision=revision))
    limit = request.limit or limits.RANGE_KEYS_MAX
    limit = min(limit, limits.RANGE_KEYS_MAX)
    start, end = key_bounds(request.range)
    size_bytes = RESPONSE_HEADER_BYTES_MAX
    for key, record in view.kv_scan(start, end):
        kv = to_key_value(key, record, request.keys_only)
        entry_bytes = kv.ByteSize() + ENTRY_FRAMING_BYTES_MAX
        if len(response.kvs) >= limit or size_bytes + entry_bytes > size_bytes_max:
            response.more = True
            break
        response.kvs.append(kv)
        size_bytes += entry_bytes
    return response


def read_counter(
    view: StoreView, request: counter_pb2.CounterGetRequest, revision: int
) -> counter_pb2.CounterGetResponse:
    value = view.counter_get(request.name)
    return counter_pb2.CounterGetResponse(
        header=counter_pb2.CounterHeader(revision=revision),
        value=value or 0,
        found=value is not None,
    )


READERS = {
    kv_pb2.GetRequest: read_get,
    kv_pb2.RangeRequest: read_range,
    counter_pb2.CounterGetRequest: read_counter,
}
