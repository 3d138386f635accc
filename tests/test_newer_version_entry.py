"""A committed entry written by a newer version stops the node that cannot
apply it, through the real Raft replica, and keeps it stopped across
restarts (it never skips the entry, never answers it with an error).

Method: a single-node embedded cluster in a child process (its exit would
end pytest's own), which commits a write, then an entry with a command
format version from the future."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tandemkv.server.raft.replica import EXIT_STORAGE_FAILURE
from tests.support.ports import free_ports

CHILD_TIMEOUT_S = 60.0
CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tandemkv.server import Node, NodeConfig
    from tandemkv.v1 import raft_pb2

    data_dir, port, submit_newer = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "newer"
    node = Node(NodeConfig(name="solo", data_dir=data_dir, raft_address=f"127.0.0.1:{port}"))
    node.start()
    node.wait_ready(30)
    if submit_newer:
        assert node.incr(b"before").value == 1
        newer = raft_pb2.Command(format_version=99, ts_ms=1).SerializeToString()
        node._replica.submit(newer).result(timeout=30)
    print("still running", flush=True)
    node.stop()
""")


def _run(data_dir, port: int, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(data_dir), str(port), mode],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)


def test_an_entry_from_a_newer_version_stops_the_node_and_keeps_it_stopped(tmp_path):
    port = free_ports(1)[0]
    first = _run(tmp_path / "solo", port, "newer")
    assert first.returncode == EXIT_STORAGE_FAILURE, first.stderr[-2000:]
    assert "command format version 99" in first.stderr and "upgrade this node" in first.stderr
    assert "still running" not in first.stdout
    again = _run(tmp_path / "solo", port, "restart")  # the entry is committed: it meets it again
    assert again.returncode == EXIT_STORAGE_FAILURE, again.stderr[-2000:]
    assert "upgrade this node" in again.stderr
