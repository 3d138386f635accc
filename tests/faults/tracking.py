"""`TrackingClient`: the SDK's `Client`, noting per thread whether an
attempt of the current write broke at the transport after it may have
been sent (the workloads record such a write as unknown, not failed).

The workers share one pipelining client (the runner makes it), as an
application's threads would: their concurrent operations coalesce into
`Batch.Call`s. That note stays per operation, because the
pipeline hands each operation its own outcome in the thread that sent it:
`Client._send` runs in the caller's thread for every attempt, and when the
pipeline carries the attempt in a batch, `ThreadPipeline.send` returns that
operation's result or raises its own error there (a batch that broke at the
transport raises the transport's error in every member's thread; a batched
operation the server refused, its own error; one the pipeline never sent,
its "not sent" UNAVAILABLE). So `TrackingClient` watches `_send` and keeps
"maybe sent" per thread.
"""

from __future__ import annotations

import threading
from typing import Any

import grpc

from tandemkv.client import Client, Retry
from tandemkv.errors import ERROR_METADATA_KEY

# Server UNAVAILABLE messages start with this; other UNAVAILABLEs come from the transport.
SERVER_MESSAGE_PREFIX = "node "
# Transport failures that prove the request never left the client.
NOT_SENT_MARKERS = ("failed to connect", "connection refused")


class TrackingClient(Client):
    """A `Client` that remembers, per thread, whether an attempt of the
    current write broke at the transport after it may have been sent.
    Several threads may share it (pipelining on, the default): each
    thread's `begin_call` / `write_maybe_sent` see only its own attempts."""

    def __init__(self, endpoints: list[str], retry: Retry):
        super().__init__(endpoints, retry=retry)
        assert callable(getattr(Client, "_send", None)), "the SDK's _send hook changed"
        self._calls = threading.local()

    def begin_call(self) -> None:
        self._calls.maybe_sent = False

    def write_maybe_sent(self) -> bool:
        return getattr(self._calls, "maybe_sent", False)

    def pipeline_counts(self) -> dict[str, int]:
        """What the pipeline sent: RPCs, batched calls among them and the
        operations those carried (zeros with the pipeline off)."""
        pipeline = self._pipeline
        counts = pipeline.coalescer.counts if pipeline is not None else None
        return {name: getattr(counts, name, 0) for name in ("rpcs", "batches", "batched_ops")}

    def _send(self, endpoint: str, operation: Any, timeout_s: float) -> Any:
        # One attempt, in the calling thread, whether it goes alone or in a batch.
        try:
            return super()._send(endpoint, operation, timeout_s)
        except grpc.RpcError as error:
            if operation.write and _transport_failure_after_send(error):
                self._calls.maybe_sent = True
            raise

    def stub(self, service: str, endpoint: str) -> Any:
        # CRDT updates do not go through `_send`: watch them at the stub.
        plain_stub = super().stub(service, endpoint)
        return _TrackedCrdtStub(plain_stub, self._calls) if service == "Crdt" else plain_stub


class _TrackedCrdtStub:
    """A Crdt stub whose Update notes a transport failure after sending."""

    def __init__(self, stub: Any, calls: threading.local):
        self._stub = stub
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        if name != "Update":
            return method

        def update(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except grpc.RpcError as error:
                if _transport_failure_after_send(error):
                    self._calls.maybe_sent = True
                raise
        return update


def _transport_failure_after_send(error: grpc.RpcError) -> bool:
    """An UNAVAILABLE the transport made after the request may have left:
    not one TandemKV stated (the server's errors, and the pipeline's "not
    sent", carry the error metadata), and not a failure to connect."""
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = error.details() or ""
    if details.startswith(SERVER_MESSAGE_PREFIX) or _stated_by_tandemkv(error):
        return False
    return not any(marker in details.lower() for marker in NOT_SENT_MARKERS)


def _stated_by_tandemkv(error: grpc.RpcError) -> bool:
    try:
        metadata = error.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - a broken call has no metadata
        return False
    return any(key == ERROR_METADATA_KEY for key, _ in metadata)
