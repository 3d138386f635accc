"""`tandemkv up` and `tandemkv down`: a local cluster of `tandemkv serve`
processes on 127.0.0.1, one per node, all under one data directory.

Layout of the data directory (everything `up` needs to resume):
  cluster.secret   the Raft secret, mode 0600, made once
  nK.toml          node K's settings (`tandemkv serve --config nK.toml`)
  nK/              node K's data;  nK.log  its output
  cluster.json     name, pid, client_address, raft_address, http_address, config per node
  up.lock          held (flock) by the running `up`
Running `up` again on the same directory resumes the same data; while a
cluster of that directory runs (its `up` holds up.lock, or a node listed
in cluster.json is alive), `up` refuses at once and touches nothing. This
module supervises processes; it knows nothing of Raft.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tandemkv import limits
from tandemkv.server.process import local_tls, settings
from tandemkv.server.node.config import Member, NodeConfig
from tandemkv.server.process.stop_signals import StopSignals
from tandemkv.server.storage import disk

DEFAULT_DATA_DIR = Path("tandemkv-data")
DEFAULT_NODES = 3
DEFAULT_BASE_PORT = 7400
# Node K's client port is base + K - 1, its Raft port that plus this.
RAFT_PORT_OFFSET = 100
# ... and its HTTP port (metrics, health, dashboard: docs/observability.md) that plus this.
HTTP_PORT_OFFSET = 300
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.2
SECRET_FILE = "cluster.secret"
CLUSTER_FILE = "cluster.json"
UP_LOCK_FILE = "up.lock"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser("up", help="start a local cluster (Ctrl-C stops it)",
                               description="Start (or resume) a local cluster on 127.0.0.1.")
    up.add_argument("--nodes", type=int, help=f"number of nodes (default {DEFAULT_NODES})")
    up.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                    help=f"where configs and data live (default ./{DEFAULT_DATA_DIR})")
    up.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                    help=f"first client port; Raft ports start {RAFT_PORT_OFFSET} higher, HTTP ports "
                         f"(metrics, dashboard) {HTTP_PORT_OFFSET} higher (default {DEFAULT_BASE_PORT})")
    up.add_argument("--tls", action="store_true",
                    help="TLS with client certificates: make a local CA and certificates under "
                         "DATA_DIR/tls and start the nodes with them (kept for later `up`s)")
    up.set_defaults(run=run_up)
    down = subparsers.add_parser("down", help="stop a cluster started by `tandemkv up`")
    down.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    down.set_defaults(run=run_down)


# Files and directories `up` creates: no access for group or others.
PRIVATE_UMASK = 0o077

def run_up(args: argparse.Namespace) -> int:
    data_dir = args.data_dir.resolve()
    # Configs, logs, cluster.json and the nodes' data are the owner's alone;
    # the nodes this starts inherit the mask.
    os.umask(PRIVATE_UMASK)
    try:
        disk.make_private_dir(data_dir)
        up_lock = hold_up_lock(data_dir)
    except (ValueError, OSError) as error:
        print(f"tandemkv up: {error}", file=sys.stderr)
        return 2
    with up_lock:  # held until every node has stopped
        try:
            configs = existing_configs(data_dir, args.nodes) or new_configs(
                data_dir, args.nodes or DEFAULT_NODES, args.base_port)
            if getattr(args, "tls", False):
                local_tls.enable(data_dir, configs)
        except (ValueError, OSError) as error:
            print(f"tandemkv up: {error}", file=sys.stderr)
            return 2
        return run_cluster(LocalCluster(data_dir, configs))


def run_cluster(cluster: LocalCluster) -> int:
    """Starts the nodes, waits for a leader, supervises until a stop signal."""
    stop = StopSignals()
    try:
        cluster.start()
        leader = cluster.wait_for_leader(START_TIMEOUT_S, stop)
        cluster.write_cluster_file(os.getpid())
        cluster.print_endpoints(leader)
        cluster.supervise(stop)
        return 0
    except RuntimeError as error:
        print(f"tandemkv up: {error}", file=sys.stderr)
        return 3
    finally:
        cluster.stop()
        print("tandemkv up: stopped every node", flush=True)


def hold_up_lock(data_dir: Path):
    """Locks `data_dir` for this `up`, or raises ValueError naming the
    cluster that runs there and how to stop it."""
    lock_file = open(data_dir / UP_LOCK_FILE, "a")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise ValueError(f"a cluster is already running from {data_dir}{describe_running(data_dir)}; "
                         f"stop it with Ctrl-C where it runs or `tandemkv down --data-dir {data_dir}`") from None
    alive = running_nodes(data_dir)
    if alive:
        lock_file.close()
        raise ValueError(f"nodes of {data_dir} are still running without their `tandemkv up` "
                         f"({', '.join(alive)}); stop them with `tandemkv down --data-dir {data_dir}`")
    return lock_file


def _cluster_document(data_dir: Path) -> dict:
    try:
        return json.loads((data_dir / CLUSTER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def running_nodes(data_dir: Path) -> list[str]:
    """'n1 pid 123 on 127.0.0.1:7400' for each node of cluster.json alive."""
    return [f"{node.get('name')} pid {node['pid']} on {node.get('client_address')}"
            for node in _cluster_document(data_dir).get("nodes", [])
            if node.get("pid") and _is_tandemkv(node["pid"])]


def describe_running(data_dir: Path) -> str:
    document = _cluster_document(data_dir)
    pid = document.get("supervisor_pid")
    endpoints = ",".join(str(n.get("client_address")) for n in document.get("nodes", []))
    return f" (tandemkv up pid {pid}, endpoints {endpoints})" if pid else ""


def config_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"{name}.toml"


def existing_configs(data_dir: Path, nodes: int | None) -> list[Path]:
    found = sorted(data_dir.glob("n*.toml"), key=lambda p: int(p.stem[1:]) if p.stem[1:].isdigit() else 0)
    if found and nodes is not None and nodes != len(found):
        raise ValueError(f"{data_dir} holds a {len(found)}-node cluster; run with --nodes "
                         f"{len(found)} or choose a new --data-dir")
    return found


def new_configs(data_dir: Path, nodes: int, base_port: int) -> list[Path]:
    if not 1 <= nodes <= limits.LOCAL_CLUSTER_NODES_MAX:
        raise ValueError(f"--nodes must be 1..{limits.LOCAL_CLUSTER_NODES_MAX}, got {nodes}")
    if not 1024 <= base_port <= 65535 - HTTP_PORT_OFFSET - nodes:
        raise ValueError(f"--base-port must leave room for {nodes} client, Raft and HTTP ports, got {base_port}")
    data_dir.mkdir(parents=True, exist_ok=True)
    write_secret(data_dir / SECRET_FILE)
    members = [Member(f"n{k}", f"127.0.0.1:{base_port + RAFT_PORT_OFFSET + k - 1}",
                      f"127.0.0.1:{base_port + k - 1}") for k in range(1, nodes + 1)]
    paths = []
    for k, member in enumerate(members, 1):
        # Paths in a config file are relative to the file: the directory can move.
        config = NodeConfig(name=member.name, data_dir=Path(member.name),
                            raft_address=member.raft_address, client_address=member.client_address,
                            peers=tuple(m for m in members if m != member))
        path = config_path(data_dir, member.name)
        http_address = f"127.0.0.1:{base_port + HTTP_PORT_OFFSET + k - 1}"
        # A top-level key: before the file's first table.
        path.write_text(f'http_address = "{http_address}"\n' + settings.to_toml(config, Path(SECRET_FILE)))
        paths.append(path)
    return paths


def write_secret(path: Path) -> Path:
    """Creates the cluster secret once (mode 0600); keeps an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return path


class LocalCluster:
    """The `tandemkv serve` processes of one data directory."""

    def __init__(self, data_dir: Path, config_paths: list[Path]):
        self.data_dir = data_dir
        self.configs = {path.stem: settings.node_config(settings.from_file(path)) for path in config_paths}
        self.paths = {path.stem: path for path in config_paths}
        # Each node's HTTP port ("" for a config written before `up` gave one).
        self.http_addresses = {path.stem: settings.from_file(path).get("http_address", "") for path in config_paths}
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        for name, path in self.paths.items():
            log_file = open(self.data_dir / f"{name}.log", "ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "tandemkv.server.cli", "serve", "--config", str(path)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log_file.close()

    def wait_for_leader(self, timeout_s: float, stop: StopSignals) -> str:
        from tandemkv.client import NO_RETRY, Client, TLSConfig

        endpoints = [c.client_address for c in self.configs.values()]
        deadline = time.monotonic() + timeout_s
        files = local_tls.client_files(self.data_dir, list(self.paths.values()))
        with Client(endpoints, retry=NO_RETRY, tls=TLSConfig(**files) if files else False) as client:
            while time.monotonic() < deadline and not stop.requested:
                self._check_alive()
                status = client.status()
                if status.leader and all(n.ready for n in status.nodes):
                    return status.leader
                stop.wait(POLL_S)
        raise RuntimeError(f"no leader within {timeout_s:.0f} s (or interrupted); see the logs in {self.data_dir}")

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.data_dir / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                raise RuntimeError(f"node {name} exited with code {process.returncode}:\n  "
                                   + "\n  ".join(tail))

    def write_cluster_file(self, supervisor_pid: int | None) -> None:
        nodes = [{"name": name, "pid": self._pid(name),
                  "client_address": config.client_address, "raft_address": config.raft_address,
                  "http_address": self.http_addresses[name],
                  "config": str(self.paths[name]), "log": str(self.data_dir / f"{name}.log")}
                 for name, config in self.configs.items()]
        document = {"supervisor_pid": supervisor_pid, "nodes": nodes}
        # The SDK and CLI in this directory find their TLS here (client/_tls.py).
        tls_files = local_tls.client_files(self.data_dir, list(self.paths.values()))
        if tls_files:
            document["tls"] = tls_files
        temporary = self.data_dir / (CLUSTER_FILE + ".tmp")
        temporary.write_text(json.dumps(document, indent=2) + "\n")
        temporary.replace(self.data_dir / CLUSTER_FILE)

    def _pid(self, name: str) -> int | None:
        process = self.processes.get(name)
        return process.pid if process is not None and process.poll() is None else None

    def print_endpoints(self, leader: str) -> None:
        print(f"TandemKV local cluster: {len(self.configs)} nodes, data in {self.data_dir}")
        for name, config in self.configs.items():
            http = self.http_addresses[name]
            print(f"  {name}  client {config.client_address}  raft {config.raft_address}  "
                  f"pid {self.processes[name].pid}" + (f"  dashboard http://{http}/dashboard" if http else ""))
        endpoints = ",".join(c.client_address for c in self.configs.values())
        files = local_tls.client_files(self.data_dir, list(self.paths.values()))
        if files:
            print(local_tls.client_words(files))
        print(f"leader: {leader}\nexport TANDEMKV_ENDPOINTS={endpoints}\nPress Ctrl-C to stop.", flush=True)

    def supervise(self, stop: StopSignals) -> None:
        """Waits for a stop signal, reporting nodes that exit meanwhile."""
        reported: set[str] = set()
        while not stop.wait(1.0):
            for name, process in self.processes.items():
                if name not in reported and process.poll() is not None:
                    reported.add(name)
                    print(f"tandemkv up: node {name} exited with code {process.returncode}", flush=True)

    def stop(self) -> None:
        """SIGTERM to every node, then SIGKILL to any still running after
        STOP_TIMEOUT_S."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self.processes:
            self.write_cluster_file(None)


def run_down(args: argparse.Namespace) -> int:
    """Stops the `up` process of a data directory (which stops its nodes),
    or, if it is gone, the node processes listed in cluster.json."""
    path = args.data_dir / CLUSTER_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        print(f"tandemkv down: cannot read {path}: {error}", file=sys.stderr)
        return 2
    pids = [document.get("supervisor_pid")] + [node.get("pid") for node in document["nodes"]]
    signalled = [pid for pid in pids if pid and _signal_if_tandemkv(pid, signal.SIGTERM)]
    # Like `up`'s own stop: SIGTERM, then SIGKILL for what outlives the grace.
    killed = [pid for pid in _wait_dead(signalled) if _signal_if_tandemkv(pid, signal.SIGKILL)]
    if killed:
        print(f"tandemkv down: processes {killed} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s "
              "and were killed; their logs may say why", file=sys.stderr)
    still = _wait_dead(killed)
    if still:
        print(f"tandemkv down: processes {still} still running after SIGKILL", file=sys.stderr)
        return 3
    print(f"tandemkv down: stopped {len(signalled)} processes")
    return 0


def _wait_dead(pids: list[int]) -> list[int]:
    """Waits up to STOP_TIMEOUT_S for `pids` to exit; returns those alive."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(POLL_S)
    return [pid for pid in pids if _alive(pid)]


def _is_tandemkv(pid: int) -> bool:
    try:
        return b"tandemkv" in Path(f"/proc/{pid}/cmdline").read_bytes() and _alive(pid)
    except OSError:
        return False


def _signal_if_tandemkv(pid: int, signum: int) -> bool:
    if not _is_tandemkv(pid):
        return False
    os.kill(pid, signum)
    return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
