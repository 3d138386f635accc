"""`tandemkv up` gives every node an observability port: cluster.json
lists each node's http_address, `up` prints each node's dashboard URL, and
each port answers /livez and /readyz (200 once the cluster has its leader)
and serves /metrics. `serve` refuses a bad address or log format, and a
taken HTTP port, with one line and no traceback."""

from __future__ import annotations

import socket

import pytest

from tests.support.local_up import UpProcess, free_base_port, tandemkv
from tests.support.observed import get, wait_for_status
from tests.support.ports import free_ports

READY_S = 60.0


def test_up_gives_every_node_a_port_with_health_metrics_and_its_dashboard(tmp_path):
    with UpProcess(tmp_path, "--base-port", str(free_base_port(3))) as up:
        cluster = up.wait_ready()
        addresses = [node["http_address"] for node in cluster["nodes"]]
        assert len(set(addresses)) == 3 and all(address.startswith("127.0.0.1:") for address in addresses)
        for address in addresses:
            assert get(f"http://{address}/livez") == (200, "ok\n")
            wait_for_status(f"http://{address}/readyz", 200, READY_S)
            status, text = get(f"http://{address}/metrics")
            assert status == 200 and "tandemkv_raft_term " in text
        printed = up.output.read_text()
        assert all(f"dashboard http://{address}/dashboard" in printed for address in addresses), printed
    assert up.process.returncode == 0


def serve(tmp_path, *flags: str):
    raft_port, client_port = free_ports(2)
    return tandemkv(tmp_path, "serve", "--name", "n1", "--data-dir", str(tmp_path / "n1"),
                    "--raft-address", f"127.0.0.1:{raft_port}", "--client-address", f"127.0.0.1:{client_port}",
                    *flags)


@pytest.mark.parametrize("flags, code, says", [
    (("--http-address", "nowhere"), 2, "setting http_address (--http-address / TANDEMKV_HTTP_ADDRESS): "
                                       "http_address must be 'host:port'"),
    (("--log-format", "yaml"), 2, "setting log_format (--log-format / TANDEMKV_LOG_FORMAT): must be one of text, json"),
])
def test_serve_refuses_a_bad_observability_setting_in_one_line(tmp_path, flags, code, says):
    result = serve(tmp_path, *flags)
    assert result.returncode == code and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_serve_with_its_http_port_taken_stops_at_once_saying_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = serve(tmp_path, "--http-address", address)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on http_address {address}" in result.stderr and "is the port in use?" in result.stderr
    assert "Traceback" not in result.stderr
