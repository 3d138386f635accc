"""Runs `tandemkv up` as a subprocess for tests: on free ports, in a given
directory, with every wait bounded and every process stopped afterwards."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tandemkv.server.process.local_cluster import HTTP_PORT_OFFSET, RAFT_PORT_OFFSET

TANDEMKV = [sys.executable, "-m", "tandemkv.server.cli"]
PORT_SEARCH_ATTEMPTS_MAX = 50
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def free_base_port(nodes: int) -> int:
    """A base port whose client and Raft ports are all free right now."""
    for _ in range(PORT_SEARCH_ATTEMPTS_MAX):
        base = random.randrange(20_000, 40_000)
        ports = [base + offset + k for offset in (0, RAFT_PORT_OFFSET, HTTP_PORT_OFFSET) for k in range(nodes)]
        if all(_bindable(port) for port in ports):
            return base
    raise AssertionError("no free port range found")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class UpProcess:
    """`tandemkv up` running in `cwd`; output in `cwd/up.out`."""

    def __init__(self, cwd: Path, *args: str):
        self.cwd = Path(cwd)
        self.output = self.cwd / "up.out"
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen([*TANDEMKV, "up", *args], cwd=cwd, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, data_dir: str = "tandemkv-data") -> dict:
        """cluster.json once `up` wrote it with its own pid."""
        path = self.cwd / data_dir / "cluster.json"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"tandemkv up exited: {self.output.read_text()}"
            if path.exists():
                document = json.loads(path.read_text())
                if document.get("supervisor_pid") == self.process.pid:
                    return document
            time.sleep(0.1)
        raise AssertionError(f"tandemkv up not ready in {READY_TIMEOUT_S} s: {self.output.read_text()}")

    def stop(self) -> int:
        """SIGTERM (as Ctrl-C would); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            raise AssertionError("tandemkv up did not stop on SIGTERM") from None

    def __enter__(self) -> UpProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


def tandemkv(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TANDEMKV, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
