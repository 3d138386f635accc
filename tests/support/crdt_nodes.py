"""Talking to the CRDT tables of single nodes, for cluster tests: create a
table, update and read one node's replica, wait until a set of nodes reads
the same expected values, and build gossip frames as a member would (to
forge or tamper with them).

Every wait polls with a deadline and fails with what each node last read.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import grpc

from tandemkv.server.available.gossip.wire import Message, MessageKind, seal
from tandemkv.server.available.crdt.hlc import Hlc
from tandemkv.v1 import crdt_pb2, crdt_pb2_grpc

POLL_S = 0.05
CALL_TIMEOUT_S = 5.0


def crdt_stub(endpoint: str) -> tuple[grpc.Channel, crdt_pb2_grpc.CrdtStub]:
    channel = grpc.insecure_channel(endpoint)
    return channel, crdt_pb2_grpc.CrdtStub(channel)


def call(endpoint: str, method: str, request: Any) -> Any:
    channel, stub = crdt_stub(endpoint)
    with channel:
        return getattr(stub, method)(request, timeout=CALL_TIMEOUT_S)


def create_table(endpoint: str, name: str, crdt_type: int, timeout_s: float) -> None:
    """Creates a table through `endpoint`, retrying while Raft is unavailable."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            call(endpoint, "CreateTable", crdt_pb2.CreateTableRequest(name=name, type=crdt_type))
            return
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or time.monotonic() > deadline:
                raise
        time.sleep(POLL_S)


def update(endpoint: str, table: str, **op: Any) -> None:
    if "put" in op:
        key, value = op.pop("put")
        op["put"] = crdt_pb2.MapPut(key=key, value=value)
    call(endpoint, "Update", crdt_pb2.CrdtUpdateRequest(table=table, **op))


def update_when_known(endpoint: str, table: str, timeout_s: float, **op: Any) -> None:
    """Updates once the node knows the table (it follows the catalog)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return update(endpoint, table, **dict(op))
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        time.sleep(POLL_S)


def plain_value(value: crdt_pb2.CrdtValue) -> Any:
    which = value.WhichOneof("value")
    if which == "counter":
        return value.counter
    if which == "values":
        return sorted(value.values.items)
    if which == "map":
        return {entry.key: entry.value for entry in value.map.entries}
    if which == "register":
        return value.register if value.present else None
    return None


def read(endpoint: str, table: str) -> Any:
    return plain_value(call(endpoint, "Read", crdt_pb2.CrdtReadRequest(table=table)))


def read_all(endpoints: dict[str, str], tables: list[str]) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for name, endpoint in endpoints.items():
        try:
            views[name] = {table: read(endpoint, table) for table in tables}
        except grpc.RpcError as error:
            views[name] = {"error": error.code().name}
    return views


def wait_until_all_read(endpoints: dict[str, str], expected: dict[str, Any],
                        timeout_s: float, clock: Callable[[], float] = time.monotonic) -> float:
    """Polls every node until each reads `expected` (table -> value);
    returns the seconds it took. Fails with the last views otherwise."""
    start = clock()
    views: dict[str, dict[str, Any]] = {}
    while clock() - start < timeout_s:
        views = read_all(endpoints, list(expected))
        if all(view == expected for view in views.values()):
            return clock() - start
        time.sleep(POLL_S)
    raise AssertionError(f"nodes did not converge within {timeout_s} s on {expected}: {views}")


def signed_frame(key: bytes, sender: str, recipient: str, stamp_ms: int) -> bytes:
    """A PUSH from `sender` to `recipient` with no sections, sealed with `key`."""
    stamp = Hlc(stamp_ms, 0)
    message = Message(MessageKind.PUSH, sender, recipient, stamp, None, stamp, {sender: stamp}, ())
    return seal(message, key)


def deliver(endpoint: str, frames: list[bytes]) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """Sends frames to a node's Gossip.Deliver; returns code, details and
    the trailing metadata."""
    with grpc.insecure_channel(endpoint) as channel:
        stub = crdt_pb2_grpc.GossipStub(channel)
        try:
            _, rpc = stub.Deliver.with_call(crdt_pb2.GossipFrames(frames=frames),
                                            timeout=CALL_TIMEOUT_S)
            return rpc.code(), "", dict(rpc.trailing_metadata() or ())
        except grpc.RpcError as error:
            return error.code(), error.details(), dict(error.trailing_metadata() or ())
