"""The `tandemkv` command through subprocesses: `up` starts, stops and
resumes a local cluster with its data; single nodes stop and restart from
cluster.json; `down` stops everything; client commands print one line and
the documented exit code for every expected error; `status` shows each
node's gossip view. Also, in-process: the settings precedence of `serve`
(flag > env > file), and `status` output against a fake node."""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from tandemkv.client import NO_RETRY, Client
from tandemkv.server.cli import client as cli_client
from tandemkv.server.process import local_cluster, settings
from tandemkv.server.node.config import Member, NodeConfig
from tests.support.fake_node import FakeGossipPlane
from tests.test_file_modes import loose_paths
from tests.support.local_up import TANDEMKV, UpProcess, free_base_port, pid_alive, tandemkv

STOP_TIMEOUT_S = 30.0


def wait_dead(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive after {timeout_s} s")


def wait_ready(endpoint: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    with Client([endpoint], retry=NO_RETRY) as client:
        while time.monotonic() < deadline:
            node = client.status().nodes[0]
            if node.ready and node.leader:
                return
            time.sleep(0.1)
    raise AssertionError(f"{endpoint} not ready after {timeout_s} s")


def test_up_stops_and_resumes_with_the_data_kept(tmp_path):
    base_port = str(free_base_port(3))
    with UpProcess(tmp_path, "--base-port", base_port) as up:
        cluster = up.wait_ready()
        assert [n["name"] for n in cluster["nodes"]] == ["n1", "n2", "n3"]
        assert tandemkv(tmp_path, "kv", "put", "kept", "across-restarts").returncode == 0
        assert tandemkv(tmp_path, "counter", "incr", "restarts").stdout.strip() == "1"
    assert up.process.returncode == 0
    assert not any(pid_alive(n["pid"]) for n in cluster["nodes"])
    secret = tmp_path / "tandemkv-data" / "cluster.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert loose_paths(tmp_path / "tandemkv-data") == [], "configs, logs and data are the owner's alone"
    first_secret = secret.read_text()

    with UpProcess(tmp_path) as up:
        up.wait_ready()
        assert tandemkv(tmp_path, "kv", "get", "kept").stdout.strip() == "across-restarts"
        assert tandemkv(tmp_path, "counter", "incr", "restarts").stdout.strip() == "2"
    assert secret.read_text() == first_secret


def test_one_node_stops_and_restarts_from_cluster_json_and_down_stops_all(tmp_path):
    with UpProcess(tmp_path, "--base-port", str(free_base_port(3))) as up:
        cluster = up.wait_ready()
        node = cluster["nodes"][0]
        os.kill(node["pid"], signal.SIGTERM)
        wait_dead(node["pid"])
        assert tandemkv(tmp_path, "kv", "put", "while-n1-down", "yes").returncode == 0
        restarted = subprocess.Popen([*TANDEMKV, "serve", "--config", node["config"]],
                                     stdout=open(tmp_path / "n1-restarted.log", "wb"), stderr=subprocess.STDOUT)
        try:
            wait_ready(node["client_address"])
            direct = ["--endpoints", node["client_address"], "--timeout", "60"]
            assert tandemkv(tmp_path, "kv", "get", "while-n1-down", *direct).stdout.strip() == "yes"
            restarted.send_signal(signal.SIGUSR1)  # logs its threads' stacks, keeps serving
            log_path = tmp_path / "n1-restarted.log"
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while "(SIGUSR1)" not in log_path.read_text(errors="replace"):
                assert time.monotonic() < deadline, "no stacks logged after SIGUSR1"
                time.sleep(0.05)
            assert "_autoTickThread" in log_path.read_text(errors="replace"), "the Raft tick thread's stack"
            assert tandemkv(tmp_path, "kv", "get", "while-n1-down", *direct).stdout.strip() == "yes"
        finally:
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout=STOP_TIMEOUT_S) == 0
        down = tandemkv(tmp_path, "down")
        assert down.returncode == 0 and down.stderr == "", down.stderr  # nothing needed SIGKILL
        assert up.process.wait(timeout=STOP_TIMEOUT_S) == 0
    assert not any(pid_alive(n["pid"]) for n in cluster["nodes"])


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    with UpProcess(cwd, "--base-port", str(free_base_port(3))) as up:
        up.wait_ready()
        yield cwd


@pytest.mark.parametrize("args,code,stdout,stderr", [
    (("kv", "get", "never-set"), 1, "", "tandemkv: key 'never-set' not found"),
    (("kv", "put", "", "v"), 2, "", "KEY_SIZE_BYTES_MAX"),
    (("kv", "put", "k" * 600, "v"), 2, "", "KEY_SIZE_BYTES_MAX"),
    (("counter", "cas", "cli-cas", "7", "8"), 1, "", "not changed: the counter is not 7"),
    (("counter", "incr", "cli-n", "x"), 2, "", "invalid int value"),
    (("kv", "get", "k", "--endpoints", "127.0.0.1:1", "--timeout", "1"), 3, "", "is the cluster running?"),
])
def test_client_commands_exit_with_the_documented_code_and_one_line(running, args, code, stdout, stderr):
    result = tandemkv(running, *args)
    assert result.returncode == code
    assert result.stdout.strip() == stdout
    assert stderr in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == (1 if code else 0)


def test_client_commands_speak_json(running):
    assert json.loads(tandemkv(running, "kv", "put", "j", "1", "--output", "json").stdout)["revision"] > 0
    got = json.loads(tandemkv(running, "kv", "get", "j", "--output", "json").stdout)
    assert (got["key"], got["value"], got["version"]) == ("j", "1", 1)
    assert json.loads(tandemkv(running, "counter", "incr", "jc", "3", "--output", "json").stdout) == {"value": 3}
    status = json.loads(tandemkv(running, "status", "--output", "json").stdout)
    assert status["leader"] and len(status["nodes"]) == 3
    assert {n["applied_index"] > 0 for n in status["nodes"]} == {True}
    for node in status["nodes"]:
        peers = [peer["name"] for peer in node["gossip"]["peers"]]
        assert peers == sorted({"n1", "n2", "n3"} - {node["name"]})


def test_status_text_lists_every_node_with_term_indexes_and_gossip(running):
    lines = tandemkv(running, "status").stdout.splitlines()
    assert lines[0].startswith("leader: n") and "COMMIT" in lines[1] and "APPLIED" in lines[1]
    rows = [line for line in lines[2:] if not line.startswith("gossip ")]
    assert sorted(line.split()[0] for line in rows) == ["n1", "n2", "n3"]
    assert "GOSSIP" in lines[1] and all("/2 alive" in row for row in rows)


def status_output(endpoint: str, output: str, capsys) -> tuple[int, str]:
    args = argparse.Namespace(endpoints=endpoint, output=output, timeout=5.0)
    code = cli_client.run(args, cli_client.cmd_status)
    return code, capsys.readouterr().out


def test_status_shows_gossip_peers_not_alive_and_rejections(fake_server, fake_node, capsys):
    fake_node.available = FakeGossipPlane()
    code, text = status_output(fake_server, "text", capsys)
    lines = text.splitlines()
    assert code == 0 and lines[1].split()[-2:] == ["GOSSIP", "LEADER"]
    assert lines[2].split()[-3:] == ["1/3", "alive", "fake"]
    assert lines[3:] == ["gossip fake: n3 suspect (4 rounds silent); n4 dead (12 rounds silent); "
                         "rejected bad_mac=2 clock_drift=1"]
    code, text = status_output(fake_server, "json", capsys)
    gossip = json.loads(text)["nodes"][0]["gossip"]
    assert (gossip["round"], gossip["rejected"]) == (12, {"bad_mac": 2, "clock_drift": 1})
    assert [(p["name"], p["state"], p["rounds_silent"]) for p in gossip["peers"]] == [
        ("n2", "alive", 0), ("n3", "suspect", 4), ("n4", "dead", 12)]


def test_status_without_a_gossip_view_shows_a_dash_and_null(fake_server, capsys):
    code, text = status_output(fake_server, "text", capsys)
    assert code == 0 and text.splitlines()[2].split()[-2:] == ["-", "fake"] and len(text.splitlines()) == 3
    code, text = status_output(fake_server, "json", capsys)
    assert json.loads(text)["nodes"][0]["gossip"] is None


def test_endpoints_come_from_the_environment_before_cluster_json(running, tmp_path):
    endpoints = json.loads((running / "tandemkv-data" / "cluster.json").read_text())["nodes"][0]["client_address"]
    assert tandemkv(tmp_path, "counter", "get", "env", env={"TANDEMKV_ENDPOINTS": endpoints}).returncode == 0
    missing = tandemkv(tmp_path, "counter", "get", "env", env={"TANDEMKV_ENDPOINTS": ""})
    assert missing.returncode == 2 and "tandemkv up" in missing.stderr


def test_serve_settings_take_flag_over_env_over_file(tmp_path):
    config = NodeConfig(name="file", data_dir=tmp_path / "d", raft_address="127.0.0.1:7001",
                        client_address="127.0.0.1:8001", peers=(Member("n2", "127.0.0.1:7002", "127.0.0.1:8002"),))
    path = tmp_path / "node.toml"
    path.write_text(settings.to_toml(config, None))
    parser = argparse.ArgumentParser()
    settings.add_flags(parser)
    args = parser.parse_args(["--config", str(path), "--name", "flag"])
    environ = {"TANDEMKV_NAME": "env", "TANDEMKV_CLIENT_ADDRESS": "127.0.0.1:9001",
               "TANDEMKV_ELECTION_TIMEOUT_MAX_S": "4.5"}
    loaded = settings.node_config(settings.gather(args, environ))
    assert (loaded.name, loaded.client_address, loaded.raft_address) == ("flag", "127.0.0.1:9001", "127.0.0.1:7001")
    assert loaded.timings.election_timeout_max_s == 4.5 and loaded.peers == config.peers
    assert loaded.data_dir == tmp_path / "d"


def test_serve_refuses_a_bad_configuration_in_one_line(tmp_path):
    result = tandemkv(tmp_path, "serve", "--name", "n1", "--raft-address", "nowhere")
    assert result.returncode == 2
    assert "missing settings" in result.stderr and "--data-dir" in result.stderr
    bad_peer = tandemkv(tmp_path, "serve", "--peers", "oops")
    assert bad_peer.returncode == 2 and "peer 'oops'" in bad_peer.stderr


def test_down_kills_a_process_that_ignores_sigterm_and_says_so(tmp_path, monkeypatch, capsys):
    # A stand-in for a stuck node: its command line names tandemkv, it ignores SIGTERM.
    stuck = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                              "time.sleep(600)", "tandemkv-stuck-node"], stdout=subprocess.PIPE, text=True)
    try:
        assert stuck.stdout.readline().strip() == "ready"
        (tmp_path / local_cluster.CLUSTER_FILE).write_text(json.dumps(
            {"supervisor_pid": None, "nodes": [{"name": "n1", "pid": stuck.pid}]}))
        monkeypatch.setattr(local_cluster, "STOP_TIMEOUT_S", 0.5)
        code = local_cluster.run_down(argparse.Namespace(data_dir=tmp_path))
        assert stuck.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL
        assert code == 0
        assert f"processes [{stuck.pid}] ignored SIGTERM" in capsys.readouterr().err
    finally:
        stuck.kill()
        stuck.wait()
