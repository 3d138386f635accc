"""`Client`: the blocking SDK, a thin shell around the core (`_core`): the
core decides every call (endpoint, request, retry, wait); this shell
sends on one gRPC channel per endpoint and sleeps."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any, Iterable

import grpc

from tandemkv import limits
from tandemkv.client import _coordination_ops as cops
from tandemkv.client import _core as core
from tandemkv.client import _operations as ops
from tandemkv.client._auth import Auth
from tandemkv.client._auth_core import resolve_credentials
from tandemkv.client._auth_session import AuthSession, sync_interceptors, tracing_configured
from tandemkv.client._claims import Election, Lock, Registry
from tandemkv.client._crdt import CrdtTables
from tandemkv.client._jobs import Jobs
from tandemkv.client._leases import Lease, lease_id
from tandemkv.client._members import Members
from tandemkv.client._maintenance import Maintenance
from tandemkv.client._pipeline import batchable
from tandemkv.client._presence import Presence
from tandemkv.client._pubsub import PubSub
from tandemkv.client._pipeline_drivers import ThreadPipeline
from tandemkv.client._recipes import Counter, Txn
from tandemkv.client._watch import Watcher
from tandemkv.client._watch_mux import WatchStreams
from tandemkv.client._results import BytesLike, ClusterStatus, KeyValue, PutResult, RangeResult
from tandemkv.client._retry import Retry
from tandemkv.client._stubs import StubCache
from tandemkv.client._routing import LocalEndpoints, Router, resolve_endpoints
from tandemkv.client._tls import ChannelFactory, TLSConfig, resolve_tls
from tandemkv.errors import TandemKVError
from tandemkv.v1 import batch_pb2_grpc, crdt_pb2_grpc, maintenance_pb2_grpc, presence_pb2_grpc, pubsub_pb2_grpc
from tandemkv.v1 import auth_pb2_grpc, jobs_pb2_grpc
from tandemkv.v1 import (
    cluster_pb2_grpc, coordination_pb2_grpc, counter_pb2_grpc, kv_pb2_grpc, lease_pb2_grpc, watch_pb2_grpc,
)

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
    ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
)
STUBS = {"KV": kv_pb2_grpc.KVStub, "Counter": counter_pb2_grpc.CounterStub,
         "Cluster": cluster_pb2_grpc.ClusterStub, "Lease": lease_pb2_grpc.LeaseStub,
         "Registry": coordination_pb2_grpc.RegistryStub, "Lock": coordination_pb2_grpc.LockStub,
         "Election": coordination_pb2_grpc.ElectionStub, "Watch": watch_pb2_grpc.WatchStub}
STUBS["Crdt"] = crdt_pb2_grpc.CrdtStub
STUBS["Batch"] = batch_pb2_grpc.BatchStub
STUBS["PubSub"] = pubsub_pb2_grpc.PubSubStub
STUBS["Presence"] = presence_pb2_grpc.PresenceStub
STUBS["Maintenance"] = maintenance_pb2_grpc.MaintenanceStub
STUBS["Jobs"] = jobs_pb2_grpc.JobsStub
STUBS["Auth"] = auth_pb2_grpc.AuthStub


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

    `pipeline` (on by default): calls made at the same time from several
    threads coalesce into batched calls (`Batch.Call`) while earlier ones
    are in flight; a call that is alone goes at once as its own RPC. Each
    call keeps its request id, retries and exception. `pipeline=False`
    sends one RPC per call.

    `tls`: a `TLSConfig` (the CA that signed the nodes' certificates, and
    a client certificate and key for nodes that require one); by default
    `$TANDEMKV_CA`, `$TANDEMKV_CERT`, `$TANDEMKV_KEY`, else what `tandemkv
    up --tls` wrote into cluster.json, else plaintext; `tls=False` forces
    plaintext, `tls=True` TLS with the system's roots.

    `user` and `password`, or `token` (default: `$TANDEMKV_TOKEN`, else
    `$TANDEMKV_USER`/`$TANDEMKV_PASSWORD`): credentials for a cluster with
    auth enabled; tokens are fetched and renewed by the client
    (client/_auth_core.py, docs/security.md). Calls carry the current
    OpenTelemetry span's `traceparent` when a tracer provider is set.

    Example::

        from tandemkv.client import Client

        with Client("127.0.0.1:7400,127.0.0.1:7401,127.0.0.1:7402") as client:
            client.put("greeting", "hello")
            assert client.get("greeting") == b"hello"
    """

    def __init__(self, endpoints: Iterable[str] | str | None = None, *, retry: Retry | None = None,
                 pipeline: bool = True, tls: TLSConfig | bool | None = None, user: str | None = None,
                 password: str | None = None, token: str | None = None):
        self.retry = retry or Retry()
        self._router = Router(resolve_endpoints(endpoints))
        # TLS as passed, else from TANDEMKV_CA/_CERT/_KEY or `tandemkv up --tls` (client/_tls.py).
        self.tls = resolve_tls(tls, endpoints)
        # Credentials as passed, else from TANDEMKV_TOKEN or _USER/_PASSWORD (client/_auth_core.py).
        self.credentials = resolve_credentials(user, password, token)
        self._auth_session = None if self.credentials is None else AuthSession(
            self.credentials, lambda operation: self._call(operation, self.retry))
        self._channel_factory = ChannelFactory(self.tls, sync_interceptors(self._auth_session,
                                                                           tracing_configured()))
        self._local = LocalEndpoints(self._router.endpoints)
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs = StubCache(STUBS)  # one stub per (service, channel): building one per call is dear
        # Concurrent calls coalesce into Batch.Call (see `_pipeline`); off: one RPC per call.
        self._pipeline = ThreadPipeline(self.stub, self._send_plain) if pipeline else None

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if "presence" in self.__dict__:
            self.presence.close()  # its entries leave now rather than at their TTL
        if self._pipeline is not None:
            self._pipeline.close()
        self._watch_streams().close()
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        self._stubs.clear()
        for channel in channels:
            channel.close()

    # -- KV ---------------------------------------------------------------
    def put(self, key: BytesLike, value: BytesLike, *, prev_kv: bool = False,
            request_id: bytes | None = None, lease: Lease | int = 0) -> PutResult:
        """Sets `key` to `value`. Returns the revision that applied it (and
        the previous `KeyValue` if `prev_kv=True` and the key existed).
        `request_id`: only to finish a write that raised `OutcomeUnknown`
        (pass its `request_id`); every write gets a fresh one otherwise.
        `lease`: attach the key to a lease (a `Lease` or its id); the key is
        deleted when the lease expires or is revoked."""
        return self.run(ops.put(key, value, prev_kv, request_id, lease_id(lease)))

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

    # -- leases, registry, locks, elections, watches -------------------------
    def lease(self, ttl_s: float) -> Lease:
        """Grants a lease of `ttl_s` seconds; see `Lease`. As a context
        manager it is renewed in the background and revoked on exit."""
        return Lease(self, self.run(cops.lease_grant(ttl_s)), ttl_s)

    def leases(self, *, stale: bool = False) -> list[cops.LeaseInfo]:
        """Every lease that exists, in id order (a page per LEASE_LIST_MAX)."""
        return self._run_plan(cops.every_lease(stale))

    @property
    def registry(self) -> Registry:
        """The cluster-wide name registry; see `Registry`."""
        return Registry(self)

    def lock(self, name: BytesLike, ttl: float = 10.0, wait: float | None = 30.0) -> Lock:
        """A lock for a `with` block, yielding its fencing token; see `Lock`."""
        return Lock(self, name, ttl, wait)

    def election(self, name: BytesLike) -> Election:
        """The leader election `name`; see `Election`."""
        return Election(self, name)

    def watch(self, key_or_prefix: BytesLike, *, prefix: bool = False, start_revision: int = 0,
              prev_kv: bool = False, resync: bool = True) -> Watcher:
        """An iterator of `WatchEvent`s for the one key `key_or_prefix` (or
        every key starting with it, `prefix=True`, as `tandemkv watch
        --prefix` and etcd's `--prefix`), in revision order.

        Semantics: from `start_revision` on (0: changes after now); a node
        failure or a lost connection is survived by resuming on another
        node from the revision after the last event delivered: no gaps, no
        duplicates. A start older than the retained history
        (WATCH_HISTORY_REVISIONS_MAX revisions) raises `Compacted` with
        `compact_revision`: re-read the range, then watch from
        `compact_revision + 1`. `close()` it (or use `with`) to stop;
        `next_revision` is where a new watch should resume.

        Every watch of this client shares one Watch.Watches stream per node
        (opened with the first watch, closed with the last). Each buffers
        up to WATCH_CLIENT_BUFFER_EVENTS_MAX events (and
        WATCH_CLIENT_BUFFER_BYTES_MAX bytes) its reader has not taken, so a
        slow reader never holds up the others. When a reader falls that far
        behind, its watch overflows: with `resync=True` (the default) it is
        cancelled and, once the reader has taken half of its buffer,
        created again from the first revision it did not buffer (the node
        reads those from its history): every event still arrives, in order,
        and `overflows` counts these resyncs (`Compacted` if the history
        moved past it meanwhile). With `resync=False` the iterator raises
        `WatchOverflow` after the buffered events: every event before its
        `revision` was delivered; re-read, then watch again.

        Example::

            with client.watch("jobs/", prefix=True, start_revision=first) as events:
                for event in events:
                    print(event.type, event.key, event.value, event.revision)
        """
        return Watcher(self, key_or_prefix, prefix, start_revision, prev_kv, resync)

    def _watch_streams(self) -> WatchStreams:
        """The multiplexer of this client's watches (made by the first watch)."""
        with self._lock:
            streams = self.__dict__.get("_watch_mux")
            if streams is None:
                streams = self.__dict__["_watch_mux"] = WatchStreams(self)
            return streams

    @cached_property
    def crdt(self) -> CrdtTables:
        """The CRDT tables (available-mode, gossip-replicated); see `CrdtTables`."""
        return CrdtTables(self)

    @cached_property
    def pubsub(self) -> PubSub:
        """Best-effort pub/sub (no Raft, works without a quorum); see `PubSub`."""
        return PubSub(self)

    @cached_property
    def presence(self) -> Presence:
        """Presence: track who is here, list and watch (no Raft); see `Presence`."""
        return Presence(self)

    @cached_property
    def jobs(self) -> Jobs:
        """The durable job queue: enqueue, claim under a lease, complete, fail; see `Jobs`."""
        return Jobs(self)

    @cached_property
    def auth(self) -> Auth:
        """Users, roles, enable/disable/status; see `Auth` (client/_auth.py)."""
        return Auth(self)

    @cached_property
    def maintenance(self) -> Maintenance:
        """Operator calls: `snapshot(path)` writes a backup; see `Maintenance`."""
        return Maintenance(self)

    # -- cluster ----------------------------------------------------------
    @cached_property
    def members(self) -> Members:
        """Cluster membership: list, add, remove; see `Members`."""
        return Members(self)

    def status(self) -> ClusterStatus:
        """Every node's view (role, term, commit and applied index, and its
        gossip view: which peers it hears, rejected frames): the configured
        endpoints plus every member they report."""
        return self._run_plan(core.cluster_status(self._router.endpoints))

    def leader(self) -> str | None:
        """The leader's endpoint, asking the cluster if not known yet."""
        if self._router.leader is None:
            self._run_plan(core.find_leader(self._router, core.STATUS_TIMEOUT_S_MAX))
        return self._router.leader

    # -- the shell: sends, sleeps; the core (`_core`) decides ----------------
    def run(self, operation: ops.Operation, *, retry: Retry | None = None) -> Any:
        """Sends `operation` with routing and retries (`retry`, else the
        client's); returns its decoded answer or raises a `tandemkv.errors`
        exception."""
        return self._call(operation, retry or self.retry)

    def _call(self, operation: ops.Operation, retry: Retry) -> Any:
        """The one place every unary operation of this client passes
        (recipes' steps included; only leader lookups and status calls,
        which are no operations of the user's, go around it). Each arrives
        whole: its request with its request id, its own `retry`, its
        decoder; its plan (`core.unary`) decides each attempt, and `_send`
        hands a batchable attempt to the pipeline, which may carry it in
        one `Batch.Call` with other callers' attempts and still gives each
        its own answer or error, so retries and exceptions stay its own."""
        attempts = core.attempts_for(operation, retry, self._router, self._local)
        return self._run_plan(core.unary(operation, attempts))

    def _run_plan(self, plan: core.Plan) -> Any:
        """Drives a plan of the core: does what each action says and hands
        the plan the outcome (a failure is thrown in); returns what the plan
        returns."""
        walk = core.Walk(plan)
        while (action := walk.next()) is not None:
            if isinstance(action, core.Sleep):
                action.retry.sleep(action.seconds)
                continue
            try:
                walk.outcome = self._perform(action)
            except (grpc.RpcError, TandemKVError) as error:
                walk.failure = error
        return walk.result

    def _perform(self, action: core.Send | core.Call | core.Invoke | core.Renew) -> Any:
        if isinstance(action, core.Send):
            if self._auth_session is not None and action.operation.service != "Auth":
                self._auth_session.refresh_if_due()  # here, in the caller's thread (client/_auth_session.py)
            return self._send(action.endpoint, action.operation, action.timeout_s)
        if isinstance(action, core.Renew):  # a new token, then the call once more
            return self._auth_session is not None and self._auth_session.renew_after_refusal()
        if isinstance(action, core.Call):
            return self._call(action.operation, action.retry or self.retry)
        return action.function()

    def stub(self, service: str, endpoint: str) -> Any:
        """The generated stub of `service` on `endpoint`'s channel (one per
        service and channel, `_stubs.StubCache`)."""
        return self._stubs.get(service, self._channel(endpoint))

    def _send(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        """One attempt: through the pipeline when `Batch.Call` carries it."""
        if self._pipeline is not None and batchable(operation):
            return self._pipeline.send(endpoint, operation, timeout_s)
        return self._send_plain(endpoint, operation, timeout_s)

    def _send_plain(self, endpoint: str, operation: ops.Operation, timeout_s: float) -> Any:
        method = getattr(self.stub(operation.service, endpoint), operation.method)
        if not operation.stream:
            return method(operation.request, timeout=timeout_s)
        call = method(iter([operation.request]), timeout=timeout_s)
        try:
            return next(call)
        finally:
            call.cancel()

    def _channel(self, endpoint: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = self._channel_factory.open(endpoint, CHANNEL_OPTIONS)
                self._channels[endpoint] = channel
            return channel
