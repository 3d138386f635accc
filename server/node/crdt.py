"""The CRDT half of the `Node` API, `node.crdt`: the available plane's front
door, as the KV, counter and coordination halves are the strong plane's.

Two kinds of call, as in the SDK's `client.crdt`:

- the catalog (`create_table`, `drop_table`, `list_tables`) goes through
  Raft (`node.propose` / `node.query`), so every node agrees on a table's
  kind; a create or drop returns once this node's plane follows it, so the
  next update here finds the table;
- contents (`update`, `read`, `scan`, `subscribe`) are served by this
  node's replica (`node.available`) and never wait on Raft: they work while
  the cluster has no quorum. A read sees this node's value, which converges
  with the others' by gossip.

A keyed table (`create_table(..., keyed=True)`, docs/keyed-tables.md)
holds any number of keys, each its own value of the table's kind, and is
catalogued once: `update`, `read` and `subscribe` take `key=` (or
`prefix=` to subscribe), `remove_entry` removes a key, `scan_keys` pages
through keys by prefix. A key on a single-value table, or none on a keyed
one, is FailedPrecondition.

Updates are typed mutations (`tandemkv.server.available.crdt.mutations`,
re-exported here with `TableKind`), checked against the table's kind
before they touch the replica. Every method is safe from any thread. It
knows nothing of gRPC.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, NodeRemoved, TandemKVError, Unavailable
from tandemkv.server.available.crdt import mutations
from tandemkv.server.available.crdt.base import TableKind, check_value_size
from tandemkv.server.available.crdt.mutations import (Add, Assign, Clear, Decrement, Increment, Mutation, Put,
                                                      Remove, RemoveKey)
from tandemkv.server.available.node_plane import type_of
from tandemkv.server.available.subscriptions import KeyBatch, KeyFeed
from tandemkv.server.feeds import Feed, follow
from tandemkv.server.strong.validation import check_table_name
from tandemkv.v1 import crdt_pb2, kv_pb2

if TYPE_CHECKING:
    from tandemkv.server.available.runtime import AvailablePlane, PlaneStatus

log = logging.getLogger(__name__)

LINEARIZABLE = kv_pb2.LINEARIZABLE

__all__ = ["Add", "Assign", "Clear", "Decrement", "Increment", "KeyedScanPage", "Mutation", "NodeCrdt", "Put",
           "Remove", "RemoveKey", "ScanPage", "TableKind", "TableValue"]


@dataclasses.dataclass(frozen=True)
class TableValue:
    """A table's value on one node: an int (counters), bytes or None
    (LWW_REGISTER), a sorted list of bytes (MV_REGISTER values, OR_SET
    members) or a dict of bytes (AW_LWW_MAP)."""

    table: str
    kind: TableKind
    value: Any
    node: str
    # Keyed tables: the key (value None: the key is absent).
    key: bytes | None = None
    # Keyed subscriptions: changes before this may be missing; read what
    # is followed now (no value). See subscriptions.KeyFeed.
    resync: bool = False


@dataclasses.dataclass(frozen=True)
class KeyedScanPage:
    """Present keys of a keyed table, in key order, with their values;
    `resume_after`: pass as `after` for the next page (None: done). A page
    may be short, even empty, with more to come."""

    values: list[TableValue]
    resume_after: bytes | None


@dataclasses.dataclass(frozen=True)
class ScanPage:
    """OR_SET members (value b"") or AW_LWW_MAP entries, sorted by key;
    `more` when entries past the limit matched."""

    entries: list[tuple[bytes, bytes]]
    more: bool


class NodeCrdt:
    """`node.crdt`. Needs of its node: `propose`, `query` and `available`
    (the running `AvailablePlane`, None while it is not running)."""

    def __init__(self, node: Any) -> None:
        self._node = node

    # -- the catalog (Raft) --
    def create_table(self, table: str, kind: TableKind | str, *, keyed: bool = False,
                     request_id: bytes | None = None,
                     timeout_s: float | None = None) -> crdt_pb2.CreateTableResponse:
        """Ensures table `table` exists with `kind` ('pn_counter' or a
        TableKind), keyed or not: `created` is False if it already did.
        FailedPrecondition if it exists with another kind or keyedness."""
        request = crdt_pb2.CreateTableRequest(name=table, type=type_of(_kind(kind)), keyed=keyed,
                                              request_id=request_id or b"")
        response = self._node.propose(request, timeout_s=timeout_s)
        self._follow_catalog()
        return response

    def drop_table(self, table: str, *, request_id: bytes | None = None,
                   timeout_s: float | None = None) -> crdt_pb2.DropTableResponse:
        """Drops the table if it exists (`dropped` says whether it did);
        every node deletes its replica when it applies the drop."""
        request = crdt_pb2.DropTableRequest(name=table, request_id=request_id or b"")
        response = self._node.propose(request, timeout_s=timeout_s)
        self._follow_catalog()
        return response

    def list_tables(self, *, consistency: int = LINEARIZABLE,
                    timeout_s: float | None = None) -> crdt_pb2.ListTablesResponse:
        return self._node.query(crdt_pb2.ListTablesRequest(consistency=consistency),
                                timeout_s=timeout_s)

    def _follow_catalog(self) -> None:
        """The write is applied here when propose returns (callbacks run
        after the batch commits), so reading local state now finds it. A
        failure here must not report an applied write as failed: the
        plane's own poll follows within CATALOG_POLL_INTERVAL_MS."""
        plane = self._node.available
        if plane is None:
            return
        try:
            plane.refresh_catalog()
        except TandemKVError as error:  # stopping: local state is closing
            log.info("catalog not followed now (%s); the plane's poll will", error)

    # -- this node's replica (never waits on Raft) --
    def update(self, table: str, mutation: Mutation, *, key: bytes | None = None,
               timeout_s: float | None = None) -> str:
        """Applies `mutation` to this node's replica and returns once it is
        durable here; returns this node's name. NotFound for a table not
        (yet) known here, FailedPrecondition for a mutation its kind does
        not take, OutcomeUnknown if it was not saved within `timeout_s`
        (it is applied in memory and is saved and gossiped unless the node
        stops first). `key`: the key of a keyed table to update."""
        check_table_name(table)
        plane = self._plane()
        mutations.check(table, plane.table_kind(table), mutation)
        plane.update(table, mutation, key=key, timeout_s=_timeout_s(timeout_s))
        return plane.node_name

    def remove_entry(self, table: str, key: bytes, *, timeout_s: float | None = None) -> str:
        """Removes `key` from a keyed table as its kind says (an observed
        remove: a write it has not seen survives it; LWW_REGISTER: the
        later wins; counters: FailedPrecondition). Durable here on return,
        like `update`; returns this node's name."""
        check_table_name(table)
        plane = self._plane()
        plane.update(table, None, key=key, timeout_s=_timeout_s(timeout_s))
        return plane.node_name

    def read(self, table: str, key: bytes | None = None) -> TableValue:
        """This node's value of the table, or of `key` in a keyed table
        (value None when the key is absent)."""
        check_table_name(table)
        plane = self._plane()
        kind, value = plane.read(table, key)
        return TableValue(table, kind, value, plane.node_name, key)

    def is_keyed(self, table: str) -> bool:
        """Whether `table` is a keyed table (NotFound if not known here)."""
        check_table_name(table)
        return self._plane().is_keyed(table)

    def scan_keys(self, table: str, prefix: bytes = b"", *, after: bytes | None = None,
                  limit: int = 0) -> KeyedScanPage:
        """A page of a keyed table's present keys starting with `prefix`,
        after `after`, in key order, at most `limit` (0 or over
        CRDT_SCAN_ENTRIES_MAX: CRDT_SCAN_ENTRIES_MAX)."""
        check_table_name(table)
        plane = self._plane()
        kind, page = plane.scan_keys(table, prefix, after, limit)
        values = [TableValue(table, kind, value, plane.node_name, key) for key, value in page.entries]
        return KeyedScanPage(values, page.resume_after)

    def scan(self, table: str, prefix: bytes = b"", limit: int = 0) -> ScanPage:
        """OR_SET members or AW_LWW_MAP entries whose key starts with
        `prefix`, at most `limit` (0 or over CRDT_SCAN_ENTRIES_MAX means
        CRDT_SCAN_ENTRIES_MAX)."""
        check_table_name(table)
        check_value_size(prefix, "prefix")
        plane = self._plane()
        if plane.is_keyed(table):
            raise FailedPrecondition(f"table {table!r} is a keyed table: page through its keys with "
                                     "scan_keys (the Scan RPC with `after`)")
        kind, value = plane.read(table)
        if kind == TableKind.OR_SET:
            items = [(member, b"") for member in value]
        elif kind == TableKind.AW_LWW_MAP:
            items = sorted(value.items())
        else:
            raise FailedPrecondition(f"a {kind.value.upper()} has no members or keys to scan")
        if limit <= 0 or limit > limits.CRDT_SCAN_ENTRIES_MAX:
            limit = limits.CRDT_SCAN_ENTRIES_MAX
        matched = [(key, entry) for key, entry in items if key.startswith(prefix)]
        return ScanPage(matched[:limit], len(matched) > limit)

    def subscribe(self, table: str, stop: threading.Event | None = None, *, key: bytes | None = None,
                  prefix: bytes | None = None) -> Iterator[TableValue]:
        """The table's value now, then after every saved change on this
        node, until `stop` is set, the node stops or the table is dropped
        (then NotFound). A slow reader is given the latest value, never a
        stale one after the last change (values in between are skipped).

        A keyed table: give `key` (its value now, then each change) or
        `prefix` (a `resync` value first, then each changed key's value).
        A reader that falls CRDT_KEY_FEED_PENDING_KEYS_MAX keys behind is
        given `resync` again and the changes it missed are dropped: on
        `resync`, read (scan_keys) what you follow."""
        stopped = stop.is_set if stop is not None else (lambda: False)
        if key is None and prefix is None:
            return follow(lambda wake: self.value_feed(table, wake), stopped)
        batches = follow(lambda wake: self.key_feed(table, wake, key=key, prefix=prefix), stopped)
        return (value for values in batches for value in values)

    def key_feed(self, table: str, wake: Callable[[], None], *, key: bytes | None = None,
                 prefix: bytes | None = None) -> KeyFeed:
        """A feed (subscriptions.KeyFeed) of a keyed table's changes: what
        the gRPC server's Subscribe waits on for a key or a prefix. Each
        take gives a list of values, as `subscribe` yields them: a resync
        (no value) first when changes may be missing, then each changed key."""
        check_table_name(table)
        if (key is None) == (prefix is None):
            raise InvalidArgument("subscribe to a keyed table's key or prefix: give exactly one")
        plane = self._plane()
        node_name = plane.node_name

        def values(kind: TableKind, batch: KeyBatch) -> list[TableValue]:
            first = [TableValue(table, kind, None, node_name, resync=True)] if batch.resync else []
            return first + [TableValue(table, kind, change.value, node_name, change.key)
                            for change in batch.changes]
        return plane.key_feed(table, wake, key=key, prefix=prefix, shape=values)


    def value_feed(self, table: str, wake: Callable[[], None]) -> Feed[TableValue]:
        """A feed (tandemkv.server.feeds) of the table's value, as
        `subscribe` yields it: what the gRPC server's Subscribe waits on.
        `wake` is called, from the plane's thread, when it has news."""
        check_table_name(table)
        plane = self._plane()
        node_name = plane.node_name
        return plane.value_feed(table, wake,
                                shape=lambda kind, value: TableValue(table, kind, value, node_name))

    def status(self) -> PlaneStatus:
        """The plane's gossip view, transport and inbox counters."""
        return self._plane().status()

    def _plane(self) -> AvailablePlane:
        removed = self._node.removed_reason()
        if removed is not None:
            raise NodeRemoved(removed)  # its plane stopped: it is no replica any more
        plane = self._node.available
        if plane is None:
            raise Unavailable("the available plane of this node is not running")
        return plane


def _kind(kind: TableKind | str) -> TableKind:
    try:
        return TableKind(kind.lower() if isinstance(kind, str) else kind)
    except ValueError:
        raise InvalidArgument(f"unknown CRDT kind {kind!r}; use one of "
                              f"{sorted(k.value for k in TableKind)}") from None


def _timeout_s(timeout_s: float | None) -> float:
    if timeout_s is None or timeout_s > limits.DEADLINE_S_MAX:
        return limits.DEADLINE_S_MAX
    return timeout_s
