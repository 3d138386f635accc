"""`ObservePort`: a node's HTTP port for operators (`serve --http-address`):

- `/metrics`   Prometheus text format (metrics.py, one registry per node);
- `/livez`     200 while the process serves HTTP at all;
- `/readyz`    200, or 503 with the reason: no leader, no quorum, behind,
               stopping (readiness.py);
- `/dashboard` a page that polls `/api/cluster` every second (dashboard.html,
               cluster_view.py).

A Starlette app served by uvicorn's `Server.serve()` as a task on the
node's event loop (the loop the gRPC server and the pub/sub and presence
planes share): no thread of its own. The socket is bound by `bind()` before
the node starts, so a port in use is an error at start-up, not a task that
dies later. At most OBSERVE_HTTP_CONNECTIONS_MAX connections at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from importlib import resources
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tandemkv import limits
from tandemkv.server.observe.address import parse_http_address
from tandemkv.server.observe.cluster_view import ClusterView
from tandemkv.server.observe.metrics import NodeMetrics
from tandemkv.server.observe.readiness import not_ready_reason
from tandemkv.server.observe.sampler import Sampler

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ObservePort:
    """Metrics, health and the dashboard of one node. Build it before the
    gRPC server (its `rpc_observer` goes to `build_server`), `bind()` it,
    `start()` it after the node started, `stop()` it before the node stops."""

    def __init__(self, node: Any, address: str) -> None:
        self.node = node
        self.address = address
        self._host, self._port = parse_http_address(address)
        self._streams_open: Callable[[], dict[str, int]] = dict
        self.metrics = NodeMetrics(node, lambda: self._streams_open())
        self.sampler = Sampler(node, self.metrics)
        self.stopping = False
        # Set while `serve` holds the client port closed on purpose (auth bootstrap): /readyz says why.
        self.not_serving_reason: str | None = None
        self.view = ClusterView(node, self.sampler, lambda: self.stopping)
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._task: asyncio.Task | None = None
        self.port = 0

    @property
    def rpc_observer(self):
        """The gRPC dispatcher's hook: counts every call (metrics.RpcMetrics)."""
        return self.metrics.rpcs.call_started

    def follow_server(self, streams_open: Callable[[], dict[str, int]]) -> None:
        """Streams open on the gRPC server, by lane, for the metrics."""
        self._streams_open = streams_open

    def bind(self) -> int:
        """Binds the port (OSError if taken); returns the port bound."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except OSError as error:
            sock.close()
            raise OSError(f"cannot listen on http_address {self.address}: {error.strerror}; "
                          "is the port in use?") from None
        sock.set_inheritable(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        return self.port

    def start(self) -> None:
        """Serves on the node's event loop (after `node.start()`)."""
        if self._socket is None:
            self.bind()
        hook = getattr(self.node, "observe_raft", None)
        if hook is not None:
            hook(self.metrics.raft.proposed, self.metrics.raft.flushed)
        self.node.event_loop().run(self._start())

    async def _start(self) -> None:
        import uvicorn

        self.sampler.start()
        # uvicorn's start and stop lines speak of a "server process"; this is one task of the node's.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        config = uvicorn.Config(self.app(), log_config=None, access_log=False, lifespan="off",
                                limit_concurrency=limits.OBSERVE_HTTP_CONNECTIONS_MAX,
                                timeout_graceful_shutdown=limits.OBSERVE_HTTP_STOP_WAIT_MS / 1000)
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[self._socket]))
        self._task.add_done_callback(_log_if_failed)

    def stop(self) -> None:
        """/readyz says stopping from now on; the server closes its connections."""
        self.stopping = True
        loop = getattr(self.node, "loop", None)
        if loop is None or loop.closed:
            return
        loop.run(self._stop(), limits.OBSERVE_HTTP_STOP_WAIT_MS / 1000 + 1)

    async def _stop(self) -> None:
        await self.sampler.stop()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), limits.OBSERVE_HTTP_STOP_WAIT_MS / 1000)
            except TimeoutError:
                self._task.cancel()
        await self.view.close()
        if self._socket is not None:
            self._socket.close()

    # -- the app --
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/", lambda request: RedirectResponse("/dashboard")),
            Route("/metrics", self._metrics),
            Route("/livez", self._livez),
            Route("/readyz", self._readyz),
            Route("/dashboard", self._dashboard),
            Route("/api/cluster", self._cluster),
        ])

    async def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def _livez(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def _readyz(self, request: Request) -> Response:
        try:
            status = self.node.status()
        except Exception:  # noqa: BLE001 - a node that cannot say is stopping
            status = None
        reason = (None if self.stopping else self.not_serving_reason) or not_ready_reason(status, self.stopping)
        if reason is None:
            return PlainTextResponse("ok\n")
        return PlainTextResponse(f"not ready: {reason}\n", status_code=503)

    async def _dashboard(self, request: Request) -> Response:
        return HTMLResponse(_dashboard_html())

    async def _cluster(self, request: Request) -> Response:
        return JSONResponse(await self.view.current(), headers={"Cache-Control": "no-store"})


def _dashboard_html() -> str:
    return resources.files("tandemkv.server.observe").joinpath("dashboard.html").read_text(encoding="utf-8")


def _log_if_failed(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the HTTP server of the observability port stopped: %s", task.exception())

