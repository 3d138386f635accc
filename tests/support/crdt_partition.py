"""The CRDT partition scenario: cut one node off a real 3-node cluster,
write on both sides (on the cut-off node, which has no Raft quorum, too),
heal, and time how long until every node reads the same values.

Runs in a network namespace of its own (it re-starts itself under
`unshare --net`, see tests/faults/network.py): each node has its own
loopback address and iptables DROP rules cut node-to-node traffic, Raft and
gossip alike, while this process (the client) still reaches every node.

    python -m tests.support.crdt_partition --out /tmp/crdt-partition

Prints one JSON line: {"ok": ..., "converged_s": ..., ...}. Exit status:
0 converged within the bound, 1 a check failed, 77 no namespace here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.faults.network import Network, NetworkUnavailable, enter_own_namespace
from tests.faults.nodes import NodeSet
from tests.support import crdt_nodes
from tandemkv.v1 import crdt_pb2

EXIT_OK, EXIT_FAILED, EXIT_SKIPPED = 0, 1, 77
LEADER_TIMEOUT_S = 60.0
TABLE_TIMEOUT_S = 20.0
# The bound the issue sets: five gossip rounds (1 s each) after the heal.
GOSSIP_INTERVAL_S = 1.0
CONVERGE_ROUNDS_MAX = 5
# How long the minority side must report no quorum before it is written to.
QUORUM_LOSS_TIMEOUT_S = 15.0
# Time the partition is kept after the writes, so both sides gossip into
# the cut and mark each other suspect.
PARTITION_HOLD_S = 4.0


def expected_values() -> dict[str, Any]:
    return {"views": 1 + 2 + 30, "online": [b"ann", b"cy"],
            "profile": {b"k1": b"majority", b"k3": b"minority"}}


def run(out: Path) -> dict[str, Any]:
    network = Network.open(3)
    nodes = NodeSet(out / "cluster", isolated=True, separate_groups=True)
    try:
        nodes.start_all()
        leader = nodes.wait_for_leader(LEADER_TIMEOUT_S)
        return scenario(nodes, network, leader)
    finally:
        nodes.stop_all()


def scenario(nodes: NodeSet, network: Network, leader: str) -> dict[str, Any]:
    endpoints = {node.name: node.member.client_address for node in nodes.nodes}
    first = endpoints[leader]
    for name, crdt_type in (("views", crdt_pb2.PN_COUNTER), ("online", crdt_pb2.OR_SET),
                            ("profile", crdt_pb2.AW_LWW_MAP)):
        crdt_nodes.create_table(first, name, crdt_type, TABLE_TIMEOUT_S)
    # One add, seen everywhere before the cut, so the remove below sees it
    # (a remove takes away only the adds it has seen: add wins).
    crdt_nodes.update_when_known(endpoints["n1"], "online", TABLE_TIMEOUT_S, add=b"bob")
    crdt_nodes.wait_until_all_read(endpoints, {"online": [b"bob"]}, TABLE_TIMEOUT_S)
    network.isolate_groups([[0, 1], [2]])
    lost_quorum = wait_without_quorum(endpoints["n3"])
    write_majority(endpoints["n1"], endpoints["n2"])
    write_minority(endpoints["n3"])
    split = crdt_nodes.read_all(endpoints, list(expected_values()))
    time.sleep(PARTITION_HOLD_S)  # the partition lasts a while: not a condition wait
    network.heal()
    bound_s = CONVERGE_ROUNDS_MAX * GOSSIP_INTERVAL_S
    converged_s = crdt_nodes.wait_until_all_read(endpoints, expected_values(), bound_s)
    return {"ok": True, "converged_s": round(converged_s, 3), "bound_s": bound_s,
            "leader": leader, "minority_lost_quorum": lost_quorum,
            "diverged_during_partition": split["n1"] != split["n3"]}


def wait_without_quorum(endpoint: str) -> bool:
    """Waits until the cut-off node reports no quorum; returns whether it did."""
    from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc
    import grpc
    deadline = time.monotonic() + QUORUM_LOSS_TIMEOUT_S
    with grpc.insecure_channel(endpoint) as channel:
        stub = cluster_pb2_grpc.ClusterStub(channel)
        while time.monotonic() < deadline:
            if not stub.Status(cluster_pb2.StatusRequest(), timeout=2).has_quorum:
                return True
            time.sleep(crdt_nodes.POLL_S)
    return False


def write_majority(n1: str, n2: str) -> None:
    crdt_nodes.update(n1, "views", increment=1)
    crdt_nodes.update(n2, "views", increment=2)
    crdt_nodes.update(n1, "online", add=b"ann")
    crdt_nodes.update(n2, "online", remove=b"bob")
    crdt_nodes.update(n1, "profile", put=(b"k1", b"majority"))


def write_minority(n3: str) -> None:
    crdt_nodes.update(n3, "views", increment=30)
    crdt_nodes.update(n3, "online", add=b"cy")
    crdt_nodes.update(n3, "profile", put=(b"k3", b"minority"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    enter_own_namespace([sys.executable, "-m", "tests.support.crdt_partition", *sys.argv[1:]])
    try:
        summary = run(args.out)
    except NetworkUnavailable as error:
        print(json.dumps({"ok": False, "skipped": str(error)}))
        return EXIT_SKIPPED
    except AssertionError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return EXIT_FAILED
    print(json.dumps(summary))
    ok = summary["minority_lost_quorum"] and summary["diverged_during_partition"]
    return EXIT_OK if ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
