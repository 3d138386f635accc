"""`tandemkv up` gives every node an observability port: cluster.json
lists each node's http_address, `up` prints each node's dashboard URL, and
each port answers /livez and /readyz (200 once the cluster has its leader)
and serves /metrics."""

from __future__ import annotations

from tests.support.local_up import UpProcess, free_base_port
from tests.support.observed import get, wait_for_status

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
