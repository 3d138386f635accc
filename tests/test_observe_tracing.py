"""OpenTelemetry spans for the RPCs a node serves (server/observe/tracing.py),
caught by the SDK's in-memory span exporter.

Method: one embedded node whose gRPC server is built with an `RpcTracer`
on a tracer provider of the test's own (the global one is left alone);
calls are made on a raw channel, one carrying W3C trace context in its
metadata as an instrumented client would. The node and server are stopped
at the end.
"""

from __future__ import annotations

import time

import grpc
import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs the otel extra (pip install -e '.[dev]')")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from tandemkv.server import Member, Node, NodeConfig  # noqa: E402
from tandemkv.server.api import build_server  # noqa: E402
from tandemkv.server.observe.tracing import RpcTracer  # noqa: E402
from tandemkv.v1 import kv_pb2, kv_pb2_grpc  # noqa: E402
from tests.support.ports import free_ports  # noqa: E402
from tests.test_embedded_node import FAST, READY_S  # noqa: E402

CALL_TIMEOUT_S = 10.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    raft_port, client_port = free_ports(2)
    member = Member("t1", f"127.0.0.1:{raft_port}", f"127.0.0.1:{client_port}")
    node = Node(NodeConfig(name="t1", data_dir=tmp_path_factory.mktemp("traced") / "t1",
                           raft_address=member.raft_address, client_address=member.client_address,
                           peers=(member,), timings=FAST))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = build_server(node, member.client_address, observer=RpcTracer(provider).call_started)
    node.start()
    server.start()
    try:
        node.wait_ready(READY_S)
        with grpc.insecure_channel(member.client_address) as channel:
            yield kv_pb2_grpc.KVStub(channel), exporter
    finally:
        server.stop()
        node.stop()


def spans_named(exporter, name: str) -> list:
    """The finished spans named `name`, once there is one: a span ends in the
    call's done callback, which may run after the client has its answer."""
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        found = [span for span in exporter.get_finished_spans() if span.name == name]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_a_put_carrying_trace_context_is_a_server_span_in_that_trace_with_its_request(traced):
    kv, exporter = traced
    exporter.clear()
    request_id = bytes(range(16))
    kv.Put(kv_pb2.PutRequest(key=b"traced-key", value=b"v", request_id=request_id), timeout=CALL_TIMEOUT_S,
           metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"),))
    (span,) = spans_named(exporter, "tandemkv.v1.KV/Put")
    assert span.kind == SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes["rpc.system"] == "grpc" and span.attributes["rpc.method"] == "Put"
    assert span.attributes["tandemkv.request_id"] == request_id.hex()
    assert span.attributes["tandemkv.key"] == "traced-key"
    assert span.attributes["tandemkv.outcome"] == "OK" and span.attributes["rpc.grpc.status_code"] == 0
    assert span.status.status_code != StatusCode.ERROR


def test_a_refused_call_is_an_error_span_naming_its_status(traced):
    kv, exporter = traced
    exporter.clear()
    with pytest.raises(grpc.RpcError) as refused:
        kv.Get(kv_pb2.GetRequest(key=b""), timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (span,) = spans_named(exporter, "tandemkv.v1.KV/Get")
    assert span.parent is None  # no trace context came with it: a root span
    assert span.attributes["tandemkv.outcome"] == "INVALID_ARGUMENT"
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert span.status.status_code == StatusCode.ERROR
