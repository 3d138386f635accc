"""`tandemkv serve`: runs one node in this process, the `Node` and its
gRPC server on `client_address`, until SIGTERM or SIGINT.

A node whose client address is beyond loopback refuses to start (exit
status 2, saying what to pass) unless its stored state has auth enabled,
or client certificates are required (tls_client_auth), or
`--insecure-allow-unauthenticated` says to serve it open anyway: an open
port reachable from the network lets anyone read and write everything.
With `--root-password-file` it starts instead, holds its client port
closed until auth is enabled (the leader enables it: auth_bootstrap.py),
and /readyz says why meanwhile.

Signals: SIGTERM or SIGINT stops the node, SIGUSR1 logs every thread's
stack (see stop_signals.py). Order matters: the node is built and started
in the main thread (its Raft tick thread dies with the thread that created
it); on a stop signal the gRPC server stops first (calls in flight get a
grace period), then the node.
"""

from __future__ import annotations

import argparse
import faulthandler
import ipaddress
import logging
import os
import signal
import sys
import threading
import traceback

from tandemkv.server.observe import logs, tracing
from tandemkv.server.process import auth_bootstrap, discovery, join, settings
from tandemkv.server.process.stop_signals import StopSignals

# The longest the main thread sleeps between looks at the stop flag; a
# signal wakes it at once (stop_signals.py), so this is only a backstop.
STOP_POLL_S = 1.0
# How often a node holding its client port closed for the auth bootstrap looks again.
BOOTSTRAP_POLL_S = 0.25
# Exit status of a node that was removed from the cluster (its data dir says so).
EXIT_REMOVED = 3
# Exit status of a setting to fix (and of an open client port beyond loopback).
EXIT_SETTINGS = 2

log = logging.getLogger("tandemkv.serve")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run one node",
        description="Run one TandemKV node. Every setting can come from the TOML file "
                    "(--config), a TANDEMKV_* environment variable, or a flag; a flag "
                    "beats the environment, which beats the file.",
    )
    settings.add_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs the node until SIGTERM/SIGINT, then exits the process."""
    try:
        values = settings.gather(args, os.environ)
        # TLS on the client port: its files are read and checked now (server/security/).
        tls = _client_port_tls(values)
        # DNS discovery fills `peers`, asking again (with backoff) until DNS lists this node and
        # discovery_expect members; each failed answer is one line on stderr (docs/discovery.md).
        values = discovery.peers_at_start(values, report=lambda line: print(
            f"tandemkv serve: {line}", file=sys.stderr, flush=True))
        # --join: the member set from a running member, this node added to it (join.py).
        values = join.members_at_join(values, report=lambda line: print(
            f"tandemkv serve: {line}", file=sys.stderr, flush=True))
        config = settings.node_config(values)
        # Re-resolves DNS while the node runs and hands each change to a callback (None: static peers).
        poller = discovery.poller_for(values, config.members)
        tracer = _rpc_tracer(values.get("tracing", False))
        root_password = (auth_bootstrap.read_root_password(values["root_password_file"])
                         if values.get("root_password_file") else None)
    except ValueError as error:
        print(f"tandemkv serve: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    # One event per line, tagged with the node's name (and term, request id): server/observe/logs.py.
    logs.configure(str(values.get("log_level", "INFO")), values.get("log_format", "text"), config.name, sys.stderr)
    # A fatal signal (a crash in a C extension) leaves every thread's Python
    # stack in the log instead of nothing.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    # `kill -USR1 <pid>` logs every thread's stack and goes on: what an
    # operator needs to see where a node that looks stuck waits. (Done in
    # Python by the main thread: faulthandler's dump of running threads can
    # read a frame as it is freed and crash the process.)
    stop = StopSignals({signal.SIGUSR1: _log_thread_stacks})
    code = serve(config, stop, poller, tls=tls, http_address=values.get("http_address", ""), tracer=tracer,
                 allow_unauthenticated=values.get("insecure_allow_unauthenticated", False),
                 root_password=root_password)
    # An RPC handler still blocked inside the stopped node must not keep the
    # process alive: everything is stopped and flushed, so leave at once.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _tls_words(tls) -> str:
    if tls is None:
        return ", plaintext"
    return ", TLS" + (" with client certificates required" if tls.tls.client_auth else "")


def _client_port_tls(values: dict):
    """The client port's reloading TLS credentials (None: plaintext); member
    channels of this process follow the same files. Imported here: only
    `serve` needs `cryptography`."""
    from tandemkv.server.security import member_channels, server_tls

    tls = server_tls.from_settings(values)
    member_channels.use_tls(tls)
    return None if tls is None else server_tls.ReloadingCredentials(tls)


def _observe_port(node, http_address: str):
    """The node's HTTP port for metrics, health and the dashboard (None: off)."""
    if not http_address:
        return None
    from tandemkv.server.observe.http import ObservePort

    return ObservePort(node, http_address)


def _rpc_tracer(enabled: bool):
    """Spans for every RPC (server/observe/tracing.py), or None; ValueError
    when asked for without OpenTelemetry installed."""
    if not enabled:
        return None
    missing = tracing.tracing_missing()
    if missing:
        raise ValueError(f"setting tracing: {missing}")
    return tracing.RpcTracer()


def _http_host(address: str) -> str:
    host = address.rpartition(":")[0]
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def beyond_loopback(address: str) -> bool:
    """Whether clients beyond this machine may reach `address` ('host:port'):
    any address but a loopback one (127.0.0.0/8, ::1, localhost)."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return True


def open_port_refusal(config, auth_enabled: bool, tls, allow_unauthenticated: bool) -> str | None:
    """Why this node must not serve its client port as it is, or None."""
    if allow_unauthenticated or auth_enabled or not beyond_loopback(config.client_address):
        return None
    if tls is not None and tls.tls.client_auth:
        return None
    return (f"client address {config.client_address} is beyond loopback, and neither is auth enabled in this "
            "node's state nor are client certificates required: anyone who reaches it could read and write "
            "everything. Give root's password in a file (--root-password-file FILE, mode 0400: the leader enables "
            "auth at the first start), or enable auth by hand (serve on 127.0.0.1 first, then `tandemkv user add "
            "root`, `tandemkv user grant-role root root`, `tandemkv auth enable`), or require client certificates (--tls-client-auth "
            "with --tls-ca), or pass --insecure-allow-unauthenticated (TANDEMKV_INSECURE_ALLOW_UNAUTHENTICATED=true, "
            "TOML insecure_allow_unauthenticated = true) to serve it open anyway")


def _start_observe(observe, server, config, http_address: str) -> None:
    observe.follow_server(lambda: {lane: server.admission.open_count(lane) for lane in ("streams", "peers")})
    observe.start()
    print(f"tandemkv: node {config.name} metrics, health and dashboard on "
          f"http://{_http_host(http_address)}:{observe.port}/", flush=True)


def _await_auth(config, bootstrap: auth_bootstrap.AuthBootstrap, stop: StopSignals) -> int | None:
    """Takes the bootstrap's steps until auth is enabled (None: serve now);
    0 when told to stop first; EXIT_SETTINGS when the store is not the
    bootstrap's to change (auth was set up by hand, or disabled later)."""
    print(f"tandemkv: node {config.name} waits for auth to be enabled (root_password_file); its client "
          f"address {config.client_address} opens once it is", flush=True)
    while True:
        step = bootstrap.step()
        if step == auth_bootstrap.DONE:
            return None
        if step == auth_bootstrap.LEAVE_ALONE:
            revision = bootstrap.revision()
            print(f"tandemkv serve: client address {config.client_address} is beyond loopback and auth is not "
                  f"enabled, and the auth store was changed by hand (auth revision {revision}): "
                  "root_password_file bootstraps a cluster whose auth was never set up, never one an operator "
                  "changed or disabled. Enable auth (`tandemkv auth enable --user root` through a member on "
                  "loopback), or pass --insecure-allow-unauthenticated to serve it open anyway",
                  file=sys.stderr, flush=True)
            return EXIT_SETTINGS
        if stop.wait(BOOTSTRAP_POLL_S):
            return 0


def _log_thread_stacks() -> None:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    stacks = [f"thread {names.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame))
              for ident, frame in sys._current_frames().items()]
    log.warning("stacks of %d threads (SIGUSR1):\n%s", len(stacks), "\n".join(stacks))


def serve(config, stop: StopSignals, poller: discovery.DiscoveryPoller | None = None, *, tls=None,
          http_address: str = "", tracer=None, allow_unauthenticated: bool = False,
          root_password: str | None = None) -> int:
    # Imported here, not at the top: every `tandemkv` command imports this
    # module to build its parser, and only `serve` needs the node,
    # pysyncobj, LMDB and the gRPC server (tests/test_purity.py).
    from tandemkv.server import Node
    from tandemkv.server.api import build_server

    node = Node(config)
    observe = _observe_port(node, http_address)
    try:
        if observe is not None:
            observe.bind()
        server = build_server(node, config.client_address, tls=tls, observer=tracing.combined(
            observe.rpc_observer if observe is not None else None, tracer.call_started if tracer is not None else None))
    except OSError as error:
        print(f"tandemkv serve: {error}", file=sys.stderr)
        return 1
    node.start()
    if node.removed_reason() is not None:
        # Its stored member set says so: it must not rejoin silently.
        print(f"tandemkv serve: {node.removed_reason()}", file=sys.stderr, flush=True)
        server.stop()
        node.stop()
        return EXIT_REMOVED
    bootstrap = auth_bootstrap.AuthBootstrap(node, root_password) if root_password else None
    refusal = open_port_refusal(config, node.auth.enabled(), tls, allow_unauthenticated)
    if refusal is not None and bootstrap is None:
        print(f"tandemkv serve: {refusal}", file=sys.stderr, flush=True)
        server.stop()
        node.stop()
        return EXIT_SETTINGS
    bootstrapping = bootstrap is not None
    try:
        if refusal is not None:
            # Beyond loopback with auth not on yet: clients are served once the bootstrap enabled it,
            # and /readyz says so meanwhile.
            if observe is not None:
                observe.not_serving_reason = bootstrap.waiting_reason()
                _start_observe(observe, server, config, http_address)
            code = _await_auth(config, bootstrap, stop)
            if code is not None:
                if observe is not None:
                    observe.stop()
                server.stop()
                return code
            bootstrapping = False
            if observe is not None:
                observe.not_serving_reason = None
        server.start()
        if observe is not None and refusal is None:
            _start_observe(observe, server, config, http_address)
        if poller is not None:
            poller.start()
        print(f"tandemkv: node {config.name} serving clients on {config.client_address} "
              f"(raft {config.raft_address}, data {config.data_dir}){_tls_words(tls)}", flush=True)
        while not stop.wait(STOP_POLL_S):
            if bootstrapping:  # on loopback, or opened anyway: the bootstrap runs beside the clients
                bootstrapping = bootstrap.step() not in (auth_bootstrap.DONE, auth_bootstrap.LEAVE_ALONE)
        log.info("stopping: gRPC first, then the node")
        if poller is not None:
            poller.stop()
        if observe is not None:
            observe.stop()  # /readyz says stopping before the gRPC port closes
        server.stop()
    finally:
        node.stop()
    log.info("node %s stopped", config.name)
    return 0
