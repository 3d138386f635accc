"""What the SDK puts on the wire for auth and tracing, seen by a minimal
gRPC server on 127.0.0.1 that records each call's metadata: the token
from `Authenticate` on every later call (blocking and asyncio clients),
nothing on `Authenticate` itself, no interceptor (and no metadata) for a
client without credentials or tracing, and the W3C `traceparent` of the
caller's span when tracing is configured."""

from __future__ import annotations

import asyncio
import time
from concurrent import futures

import grpc
import pytest

from tandemkv.client import AsyncClient, Client
from tandemkv.v1 import auth_pb2, cluster_pb2, kv_pb2

SERVER_THREADS = 4


class Recorder:
    """A server answering Cluster.Status (itself the leader), Auth.Authenticate
    and KV.Get; `seen` is (method, metadata) per call."""

    def __init__(self):
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(SERVER_THREADS))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"
        handlers = {
            "/tandemkv.v1.Cluster/Status": (cluster_pb2.StatusRequest, lambda r: cluster_pb2.StatusResponse(
                leader_client_address=self.endpoint)),
            "/tandemkv.v1.Auth/Authenticate": (auth_pb2.AuthenticateRequest, lambda r: auth_pb2.AuthenticateResponse(
                token=f"token-of-{r.user}", expires_at_ms=int(time.time() * 1000) + 600_000)),
            "/tandemkv.v1.KV/Get": (kv_pb2.GetRequest, lambda r: kv_pb2.GetResponse(found=False)),
        }
        self.server.add_generic_rpc_handlers([_Handlers(self, handlers)])
        self.server.start()

    def methods_with(self, key: str) -> list[tuple[str, str | None]]:
        return [(method, metadata.get(key)) for method, metadata in self.seen]


class _Handlers(grpc.GenericRpcHandler):
    def __init__(self, recorder: Recorder, handlers):
        self.recorder, self.handlers = recorder, handlers

    def service(self, details):
        found = self.handlers.get(details.method)
        if found is None:
            return None
        request_type, answer = found

        def handle(request, context):
            self.recorder.seen.append((details.method, dict(context.invocation_metadata())))
            return answer(request)
        return grpc.unary_unary_rpc_method_handler(handle, request_type.FromString,
                                                   lambda response: response.SerializeToString())


@pytest.fixture
def recorder():
    server = Recorder()
    try:
        yield server
    finally:
        server.server.stop(0)


def test_the_blocking_client_sends_its_token_on_every_call_but_authenticate(recorder, monkeypatch):
    for name in ("TANDEMKV_USER", "TANDEMKV_PASSWORD", "TANDEMKV_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with Client([recorder.endpoint], user="app", password="pw") as client:
        assert client.get("k") is None and client.get("k", stale=True) is None
    calls = [(m, t) for m, t in recorder.methods_with("authorization") if not m.endswith("/Status")]
    assert calls == [("/tandemkv.v1.Auth/Authenticate", None), ("/tandemkv.v1.KV/Get", "Bearer token-of-app"),
                     ("/tandemkv.v1.KV/Get", "Bearer token-of-app")]


def test_the_async_client_sends_its_token_on_every_call(recorder, monkeypatch):
    for name in ("TANDEMKV_USER", "TANDEMKV_PASSWORD", "TANDEMKV_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    async def scenario():
        async with AsyncClient([recorder.endpoint], user="app", password="pw") as client:
            await asyncio.gather(*(client.get("k", stale=True) for _ in range(5)))
    asyncio.run(scenario())
    sent = recorder.methods_with("authorization")
    assert sent.count(("/tandemkv.v1.Auth/Authenticate", None)) == 1
    assert {token for method, token in sent if method == "/tandemkv.v1.KV/Get"} == {"Bearer token-of-app"}


def test_a_client_without_credentials_or_tracing_has_no_interceptor(recorder, monkeypatch):
    for name in ("TANDEMKV_USER", "TANDEMKV_PASSWORD", "TANDEMKV_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("tandemkv.client._sync.tracing_configured", lambda: False)
    with Client([recorder.endpoint]) as client:
        assert client._channel_factory.interceptors == []
        client.get("k")
    assert all(token is None for _, token in recorder.methods_with("authorization"))


def test_a_call_in_a_span_carries_its_traceparent(recorder, monkeypatch):
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    monkeypatch.setattr("tandemkv.client._sync.tracing_configured", lambda: True)
    tracer = sdk_trace.TracerProvider().get_tracer("test")
    with Client([recorder.endpoint], token="t") as client:
        with tracer.start_as_current_span("caller") as span:
            client.get("k", stale=True)
    trace_id = format(span.get_span_context().trace_id, "032x")
    (method, traceparent), = [(m, t) for m, t in recorder.methods_with("traceparent") if m.endswith("/Get")]
    assert traceparent is not None and traceparent.split("-")[1] == trace_id
    assert dict(recorder.seen[-1][1])["authorization"] == "Bearer t"
