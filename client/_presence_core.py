"""What the SDK's presence shares between `Client` and `AsyncClient`
(`_presence`, `_presence_async`): the listings and diffs users see, their
decoding, metadata as JSON, the requests, and the book of what a client's
session tracks (so it can be tracked again on another node). No channel,
thread or event loop here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grpc

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.client._retry import error_from_rpc
from tandemkv.v1 import presence_pb2

# Longest one presence call waits for its node.
CALL_TIMEOUT_S = 10.0
# After a failed renewal, the next try comes this soon (a session lives a TTL).
RETRY_RENEWAL_S = 1.0
# Errors after which a session is given up and opened again on the next
# node (with every entry tracked again): gone there, or the node is.
SESSION_LOST = (errors.NotFound, errors.Unavailable, errors.OutcomeUnknown)


@dataclasses.dataclass(frozen=True)
class PresenceMeta:
    """One tracking of a key: its metadata (decoded JSON) and the ref of
    the write that made it (an update is a new ref)."""

    ref: str
    meta: Any


Listing = dict[bytes, list[PresenceMeta]]


@dataclasses.dataclass(frozen=True)
class PresenceDiff:
    """What changed in `topic`: key -> metas that joined, key -> metas that
    left (an update is a leave and a join). `resync`: the node's buffer for
    this watch overflowed, and this diff is what its state differs from
    the watch's (computed by the SDK from the state the node sent)."""

    topic: bytes
    joins: Listing
    leaves: Listing
    resync: bool = False


def encode_meta(meta: Any) -> bytes:
    """`meta` as JSON bytes (None: empty); InvalidArgument if it is not JSON."""
    if meta is None:
        return b""
    try:
        return json.dumps(meta, separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError) as error:
        raise errors.InvalidArgument(f"presence metadata is sent as JSON: {error}") from None


def decode_meta(data: bytes) -> Any:
    """JSON metadata decoded; metadata another client wrote as raw bytes stays bytes."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data


def listing_of(keys: Any) -> Listing:
    return {entry.key: [PresenceMeta(m.ref, decode_meta(m.meta)) for m in entry.metas] for entry in keys}


def list_operation(topic: BytesLike) -> ops.Operation:
    """`Presence.List` of `topic`: any node answers (sent as the CRDT reads
    are, to the first local endpoint that does)."""
    request = presence_pb2.PresenceListRequest(topic=names(topic, b"-")[0])
    return ops.Operation("Presence", "List", request, lambda response: listing_of(response.keys),
                         write=False, local=True)


def diff_of(diff: presence_pb2.PresenceDiff) -> PresenceDiff:
    return PresenceDiff(diff.topic, listing_of(diff.joins), listing_of(diff.leaves))


def apply_diff(listing: Listing, diff: PresenceDiff) -> Listing:
    """`listing` after `diff`: leaves first, then joins (metas in ref order)."""
    result = {key: list(metas) for key, metas in listing.items()}
    for key, metas in diff.leaves.items():
        gone = {meta.ref for meta in metas}
        kept = [meta for meta in result.get(key, []) if meta.ref not in gone]
        if kept:
            result[key] = kept
        else:
            result.pop(key, None)
    for key, metas in diff.joins.items():
        result[key] = sorted(result.get(key, []) + metas, key=lambda meta: meta.ref)
    return result


def resync_diff(topic: bytes, old: Listing, new: Listing) -> PresenceDiff:
    """The diff that takes `old` to `new` (by ref), marked resync."""
    joins: Listing = {}
    leaves: Listing = {}
    for key in old.keys() | new.keys():
        old_refs = {meta.ref for meta in old.get(key, [])}
        new_refs = {meta.ref for meta in new.get(key, [])}
        if left := [meta for meta in old.get(key, []) if meta.ref not in new_refs]:
            leaves[key] = left
        if joined := [meta for meta in new.get(key, []) if meta.ref not in old_refs]:
            joins[key] = joined
    return PresenceDiff(topic, joins, leaves, resync=True)


def watch_event(listing: Listing, response: presence_pb2.PresenceWatchResponse,
                topic: bytes) -> tuple[Listing, PresenceDiff]:
    """A watch's listing after one response, and the diff to give the user."""
    if response.HasField("diff"):
        diff = diff_of(response.diff)
        return apply_diff(listing, diff), diff
    fresh = listing_of(response.state.keys)
    return fresh, resync_diff(topic, listing, fresh)


def rpc_error(error: grpc.RpcError) -> errors.TandemKVError:
    return error_from_rpc(error, b"")


def names(topic: BytesLike, key: BytesLike) -> tuple[bytes, bytes]:
    return to_bytes(topic, "topic"), to_bytes(key, "key")


class SessionBook:
    """A client's presence session: the node that holds it, its id, its
    TTL, and what it tracks (topic, key) -> meta, to be tracked again if
    the session has to be opened again elsewhere."""

    def __init__(self, ttl_ms: int = 0):
        self.ttl_ms = ttl_ms          # 0: the node's default, PRESENCE_SESSION_TTL_MS
        self.endpoint: str | None = None
        self.session = 0
        self.renew_every_s = 1.0
        self.tracked: dict[tuple[bytes, bytes], bytes] = {}
        self.refs: dict[tuple[bytes, bytes], str] = {}

    def opened(self, endpoint: str, response: presence_pb2.PresenceOpenResponse) -> None:
        self.endpoint, self.session = endpoint, response.session
        self.renew_every_s = response.ttl_ms / 3000

    def lost(self) -> tuple[str | None, int]:
        """Forgets the session; (endpoint, session) to close if it still can."""
        gone, self.endpoint, self.session = (self.endpoint, self.session), None, 0
        return gone

    def order(self, endpoints: list[str], failed: str | None) -> list[str]:
        """Where to open the session: every endpoint, the one that failed last."""
        if failed in endpoints:
            return [e for e in endpoints if e != failed] + [failed]
        return endpoints

    def open_request(self) -> presence_pb2.PresenceOpenRequest:
        return presence_pb2.PresenceOpenRequest(ttl_ms=self.ttl_ms)

    def track_request(self, topic: bytes, key: bytes, meta: bytes = b"") -> presence_pb2.PresenceTrackRequest:
        return presence_pb2.PresenceTrackRequest(session=self.session, topic=topic, key=key, meta=meta)

    def session_request(self) -> presence_pb2.PresenceSessionRequest:
        return presence_pb2.PresenceSessionRequest(session=self.session)

    def already(self, topic: bytes, key: bytes) -> None:
        if (topic, key) in self.tracked:
            raise errors.FailedPrecondition(f"this client already tracks key {key!r} in topic {topic!r}: "
                                            "update it through its handle")
