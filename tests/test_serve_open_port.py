"""`tandemkv serve` refuses a client port beyond loopback that nobody
guards: neither auth enabled in the node's stored state nor client
certificates required, unless --insecure-allow-unauthenticated (or its
environment variable) says to serve it open anyway. The documented
bootstrap (start on loopback, add root, grant it the root role, enable
auth) lets the same node start on every address afterwards.

Method: the decision as a table (`open_port_refusal`), then real `serve`
processes of one node on free ports: the exit status and the message,
the flag, and the bootstrap through the Auth service over raw gRPC.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from tandemkv.client import NO_RETRY, Client
from tandemkv.server.process.serve import EXIT_SETTINGS, beyond_loopback, open_port_refusal
from tandemkv.v1 import auth_pb2, auth_pb2_grpc
from tests.support.ports import free_ports

RUN_TIMEOUT_S = 60
SERVING_LINE = "serving clients on"


@pytest.mark.parametrize("address, beyond", [
    ("127.0.0.1:7400", False), ("127.8.0.2:1", False), ("[::1]:7400", False), ("localhost:7400", False),
    ("0.0.0.0:7400", True), ("[::]:7400", True), ("10.0.0.5:7400", True), ("node1.example:7400", True),
])
def test_what_is_beyond_loopback(address, beyond):
    assert beyond_loopback(address) is beyond


def test_the_refusal_and_what_lifts_it():
    config = SimpleNamespace(client_address="0.0.0.0:7400")
    refusal = open_port_refusal(config, auth_enabled=False, tls=None, allow_unauthenticated=False)
    assert "--insecure-allow-unauthenticated" in refusal and "tandemkv auth enable" in refusal
    mtls = SimpleNamespace(tls=SimpleNamespace(client_auth=True))
    tls_only = SimpleNamespace(tls=SimpleNamespace(client_auth=False))
    assert open_port_refusal(config, True, None, False) is None
    assert open_port_refusal(config, False, mtls, False) is None
    assert open_port_refusal(config, False, None, True) is None
    assert open_port_refusal(config, False, tls_only, False) is not None
    assert open_port_refusal(SimpleNamespace(client_address="127.0.0.1:1"), False, None, False) is None


def _serve(data_dir: Path, client_address: str, raft_port: int, *flags: str, env: dict | None = None):
    command = [sys.executable, "-m", "tandemkv.server.cli", "serve", "--name", "n1", "--data-dir", str(data_dir),
               "--raft-address", f"127.0.0.1:{raft_port}", "--client-address", client_address, *flags]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _wait_serving(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if SERVING_LINE in line:
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {process.stderr.read()}")
    raise AssertionError(f"serve did not say it serves within {RUN_TIMEOUT_S} s")


def _wait_ready(endpoint: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with Client([endpoint], retry=NO_RETRY) as client:
        while time.monotonic() < deadline:
            node = client.status().nodes[0]
            if node.ready and node.leader and not node.error:
                return
            time.sleep(0.1)
    raise AssertionError(f"the node at {endpoint} had no leader within {RUN_TIMEOUT_S} s")


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=RUN_TIMEOUT_S)


def test_serve_beyond_loopback_exits_2_saying_what_to_pass(tmp_path):
    raft_port, client_port = free_ports(2)
    process = _serve(tmp_path / "n1", f"0.0.0.0:{client_port}", raft_port)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == EXIT_SETTINGS
    assert "beyond loopback" in stderr and "--insecure-allow-unauthenticated" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_flag_or_its_environment_variable_serves_it_open(tmp_path, how):
    raft_port, client_port = free_ports(2)
    flags = ("--insecure-allow-unauthenticated",) if how == "flag" else ()
    env = {"TANDEMKV_INSECURE_ALLOW_UNAUTHENTICATED": "true"} if how == "env" else None
    process = _serve(tmp_path / "n1", f"0.0.0.0:{client_port}", raft_port, *flags, env=env)
    try:
        _wait_serving(process)
    finally:
        assert _stop(process) == 0


def test_after_the_bootstrap_on_loopback_the_node_serves_beyond_it(tmp_path):
    raft_port, client_port = free_ports(2)
    data_dir = tmp_path / "n1"
    process = _serve(data_dir, f"127.0.0.1:{client_port}", raft_port)
    try:
        _wait_serving(process)
        _wait_ready(f"127.0.0.1:{client_port}")
        with grpc.insecure_channel(f"127.0.0.1:{client_port}") as channel:
            stub = auth_pb2_grpc.AuthStub(channel)
            stub.UserAdd(auth_pb2.UserAddRequest(user="root", password="pw"), timeout=RUN_TIMEOUT_S)
            stub.UserGrantRole(auth_pb2.UserRoleRequest(user="root", role="root"), timeout=RUN_TIMEOUT_S)
            stub.AuthEnable(auth_pb2.AuthEnableRequest(), timeout=RUN_TIMEOUT_S)
    finally:
        assert _stop(process) == 0
    process = _serve(data_dir, f"0.0.0.0:{client_port}", raft_port)
    try:
        _wait_serving(process)
        with grpc.insecure_channel(f"127.0.0.1:{client_port}") as channel:
            status = auth_pb2_grpc.AuthStub(channel).AuthStatus(auth_pb2.AuthStatusRequest(), timeout=RUN_TIMEOUT_S)
        assert status.enabled
    finally:
        assert _stop(process) == 0
