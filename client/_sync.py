"""`Client`: the blocking SDK. Sends each `Operation` with leader-aware
routing and the `Retry` policy; owns one gRPC channel per endpoint."""

from __future__ import annotations

import threading
from typing import Any, Iterable

import grpc

from tandemkv import limits
from tandemkv.client import _operations as ops
from tandemkv.client._recipes import Counter, Txn
from tandemkv.client._results import BytesLike, ClusterStatus, KeyValue, NodeInfo, PutResult, RangeResult
from tandemkv.client._retry import Attempts, Retry, error_from_rpc
from tandemkv.client._routing import Router, resolve_endpoints
from tandemkv.v1 import cluster_pb2_grpc, counter_pb2_grpc, kv_pb2_grpc

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
    ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
)
STUBS = {"KV": kv_pb2_grpc.KVStub, "Counter": counter_pb2_grpc.CounterStub,
         "Cluster": cluster_pb2_grpc.ClusterStub}
# How long a leader lookup or a status call waits for one node.
STATUS_TIMEOUT_SECONDS_MAX = 2.0
# Nodes one status() call asks (the endpoints and the members they report).
STATUS_NODES_MAX = 64


class Client:
    """A TandemKV client (blocking, thread-safe).

    `endpoints`: 'host:port' strings (a list or one comma-separated
    string); by default `$TANDEMKV_ENDPOINTS`, else the cluster started by
    `tandemkv up` in this directory (`./tandemkv-data/cluster.json`).
    Keys, values and names accept `bytes` or `str` (encoded as UTF-8);
    what comes back is `bytes`.

    Writes and reads go to the leader when it is known (learned from
    `Cluster.Status` and from redirects); on UNAVAILABLE or
    DEADLINE_EXCEEDED the call is retried per `retry`, on another node if
    needed, with the same request id. Errors are `tandemkv.errors`
    exceptions, re-exported from `tandemkv.client`.

    Example::

        from tandemkv.client import Client

        with Client("127.0.0.1:7400,127.0.0.1:7401,127.0.0.1:7402") as client:
            client.put("greeting", "hello")
            assert client.get("greeting") == b"hello"
    """

    def __init__(self, endpoints: Iterable[str] | str | None = None, *, retry: Retry | None = None):
        self.retry = retry or Retry()
        self._router = Router(resolve_endpoints(endpoints))
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    # -- KV ---------------------------------------------------------------
    def put(self, key: BytesLike, value: BytesLike, *, prev_kv: bool = False,
            request_id: bytes | None = None) -> PutResult:
        """Sets `key` to `value`. Returns the revision that applied it (and
        the previous `KeyValue` if `prev_kv=True` and the key existed).
        `request_id`: only to finish a write that raised `OutcomeUnknown`
        (pass its `request_id`); every write gets a fresh one otherwise."""
        return self.run(ops.put(key, value, prev_kv, request_id))

    def get(self, key: BytesLike, *, stale: bool = False) -> bytes | None:
        """The value of `key`, or None if it does not exist. Linearizable;
        `stale=True` reads the answering node's local state (faster, may lag).
        Use `get_kv` for revisions."""
        kv = self.run(ops.get(key, stale))
        return None if kv is None else kv.value

    def get_kv(self, key: BytesLike, *, stale: bool = False) -> KeyValue | None:
        """The `KeyValue` (value and revisions) of `key`, or None."""
        return self.run(ops.get(key, stale))

    def range(self, prefix: BytesLike = b"", *, end: BytesLike | None = None, limit: int = 0,
              keys_only: bool = False, stale: bool = False) -> RangeResult:
        """Keys starting with `prefix` (all keys by default), or the keys in
        [prefix, end) when `end` is given, in key order. At most `limit`
        keys (0: the server's RANGE_KEYS_MAX); `result.more` says if more matched."""
        return self.run(ops.range_(prefix, end, limit, keys_only, stale))

    def delete(self, key: BytesLike, *, prefix: bool = False, request_id: bytes | None = None) -> int:
        """Deletes `key` (or every key starting with it if `prefix=True`);
        returns how many keys were deleted."""
        return self.run(ops.delete(key, prefix, request_id))

    def txn(self) -> Txn:
        """A transaction builder; see `Txn`."""
        return Txn(self)

    def counter(self, name: BytesLike) -> Counter:
        """The counter `name`; see `Counter`."""
        return Counter(self, name)

    # -- cluster ----------------------------------------------------------
    def status(self) -> ClusterStatus:
        """Every node's view (role, term, commit and applied index): the
        configured endpoints plus every member they report."""
        seen: dict[str, NodeInfo] = {}
        pending = list(self._router.endpoints)
        while pending and len(seen) < STATUS_NODES_MAX:
            endpoint = pending.pop(0)
            if endpoint in seen:
                continue
            try:
                response = self._send(endpoint, ops.status(), STATUS_TIMEOUT_SECONDS_MAX)
            except grpc.RpcError as error:
                seen[endpoint] = NodeInfo(endpoint=endpoint, error=error_from_rpc(error, b"").message)
                continue
            seen[endpoint] = ops.node_info(endpoint, response)
            pending.extend(ops.member_endpoints(response))
        return ops.cluster_status(list(seen.values()))

    def leader(self) -> str | None:
        """The leader's endpoint, asking the cluster if not known yet."""
        if self._router.leader is None:
            self._find_leader(STATUS_TIMEOUT_SECONDS_MAX)
        return self._router.leader

    # -- the engine -------------------------------------------------------
    def run(self, operation: ops.Operation) -> Any:
        """Sends `operation` with routing and retries; returns its decoded
        answer or raises a `tandemkv.errors` exception."""
        attempts = Attempts(self.retry, operation.request_id, operation.write)
        while (timeout_s := attempts.timeout_s()) is not None:
            if self._router.leader is None:
                self._find_leader(min(timeout_s, STATUS_TIMEOUT_SECONDS_MAX))
            endpoint = self._router.pick()
            try:
                return operation.decode(self._send(endpoint, operation, timeout_s))
            except grpc.RpcError as rpc_error:
                error = error_from_rpc(rpc_error, operation.request_id)
            with self._lock:
                redirected = self._router.failed(endpoint, error)
            delay_s = attempts.failed(error, redirected)
            if delay_s is None:
                break
            self.retry.sleep(delay_s)
        raise attempts.final_error()

    def _find_leader(self, timeout_s: float) -> None:
        for endpoint in list(self._router.endpoints):
            try:
                response = self._send(endpoint, ops.status(), timeout_s)
            except grpc.RpcError:
                continue
            if response.leader_client_address:
                with self._lock:
                    self._router.learn_leader(response.leader_client_address)
                return

    def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        stub = STUBS[operation.service](self._channel(endpoint))
        return getattr(stub, operation.method)(operation.request, timeout=timeout_s)

    def _channel(self, endpoint: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
                self._channels[endpoint] = channel
            return channel
