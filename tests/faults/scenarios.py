"""Targeted fault scenarios with measured outcomes, for the CI tier.

- `leader-kill`: kill -9 the leader, then measure how long until the
  surviving nodes agree on a new leader and a write through the SDK
  succeeds; repeated `--rounds` times (the killed node restarts between).
- `minority`: cut one node off (a follower, then the leader) and send
  linearizable reads and writes straight to it over gRPC, each with a
  deadline, while a majority client writes new values. Every request to
  the cut-off node must end within its deadline plus a small slack, and no
  read may return a value older than a write acknowledged before the read
  began; the whole history is also run through the linearizability checker.

    python -m tests.faults.scenarios minority --out /tmp/minority

Each scenario writes `<out>/<scenario>.json` and exits 0; the assertions
live in tests/test_faults_cluster.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from tandemkv import errors, limits
from tandemkv.client import Client, Retry
from tandemkv.v1 import kv_pb2, kv_pb2_grpc

from .history import History
from .linearizability import check_linearizable
from .models import REGISTER
from .network import Network, NetworkUnavailable, bring_loopback_up, enter_own_namespace, in_own_namespace
from .nodes import NodeSet

STARTUP_LEADER_TIMEOUT_S = 60.0
# A write after a leader kill is tried for this long before the round gives up.
FAILOVER_GIVE_UP_S = 20.0
FAILOVER_RETRY = Retry(attempts_max=2, deadline_s=0.6, attempt_timeout_s=0.3, backoff_initial_s=0.02)
MAJORITY_RETRY = Retry(attempts_max=30, deadline_s=15.0, attempt_timeout_s=1.0, backoff_max_s=0.2)
# Deadline of each request sent to a cut-off node, and how late it may end:
# what is caught is a request held until a connection or election timeout
# (seconds more); a process starved of CPU (load 20-30 on two cores) was
# seen to end one 0.8 s late.
MINORITY_DEADLINE_S = 1.0
MINORITY_SLACK_S = 1.0
# How long each cut lasts while requests go to the cut-off node.
MINORITY_CUT_S = 4.0
# Pause between two requests to the cut-off node.
MINORITY_REQUEST_GAP_S = 0.05
KEY = "minority/register"


def leader_kill(nodes: NodeSet, rounds: int) -> dict[str, Any]:
    results = []
    for round_index in range(rounds):
        old = nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
        survivors = [n for n in nodes.nodes if n.name != old]
        nodes.kill(old)
        killed_at = time.monotonic()
        write_s = _first_write_s(survivors, killed_at, round_index)
        new = nodes.leader([n.name for n in survivors])
        results.append({"old_leader": old, "new_leader": new, "write_after_kill_s": write_s})
        nodes.start(old)
    return {"rounds": results}


def _first_write_s(survivors: list, killed_at: float, round_index: int) -> float | None:
    """Seconds from the kill to the first acknowledged write, or None."""
    endpoints = [n.member.client_address for n in survivors]
    with Client(endpoints, retry=FAILOVER_RETRY) as client:
        while time.monotonic() - killed_at < FAILOVER_GIVE_UP_S:
            try:
                client.put(f"failover/{round_index}", "written")
            except (errors.Unavailable, errors.OutcomeUnknown):
                continue
            return round(time.monotonic() - killed_at, 3)
    return None


def minority(nodes: NodeSet, network: Network) -> dict[str, Any]:
    history = History()
    with Client(nodes.endpoints, retry=MAJORITY_RETRY) as client:
        _majority_write(client, history, "initial")
    leader = nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
    follower = next(n.name for n in nodes.nodes if n.name != leader)
    cases = [_cut_off(nodes, network, history, follower, "follower")]
    network.heal()
    cases.append(_cut_off(nodes, network, history, nodes.wait_for_leader(30.0), "leader"))
    network.heal()
    check = check_linearizable(history.operations(), REGISTER)
    return {"cases": cases, "linearizability": check.verdict, "explanation": check.describe(),
            "operations": len(history.operations())}


def _cut_off(nodes: NodeSet, network: Network, history: History, name: str, role: str) -> dict[str, Any]:
    """Cuts `name` off; probes it while a client of the majority writes."""
    node = nodes.node(name)
    others = [n for n in nodes.nodes if n.name != name]
    acked: list[tuple[float, str]] = []
    network.isolate_groups([[node.index], [n.index for n in others]])
    cut_at = time.monotonic()
    with Client([n.member.client_address for n in others], retry=MAJORITY_RETRY) as client:
        writer = threading.Thread(target=_majority_writes, args=(client, history, acked, cut_at, role))
        writer.start()
        requests = _probe_minority(node.member.client_address, history, cut_at)
        writer.join()
    stale = [r for r in requests if r["kind"] == "read" and r["ok"] and _is_stale(r, acked)]
    return {"node": name, "role": role, "requests": len(requests),
            "succeeded": sum(r["ok"] for r in requests), "codes": _codes(requests),
            "late": [r for r in requests if r["elapsed_s"] > MINORITY_DEADLINE_S + MINORITY_SLACK_S],
            "stale": stale, "majority_writes_acked": len(acked)}


def _majority_write(client: Client, history: History, value: str) -> bool:
    handle = history.invoke("majority", KEY, "write", value)
    try:
        client.put(KEY, value)
    except errors.OutcomeUnknown:
        history.unknown(handle)
        return False
    except errors.Unavailable:
        history.unknown(handle)  # a broken connection may hide an applied write
        return False
    history.ok(handle)
    return True


def _majority_writes(client: Client, history: History, acked: list[tuple[float, str]], cut_at: float,
                     role: str) -> None:
    for sequence in range(1_000):
        if time.monotonic() - cut_at >= MINORITY_CUT_S:
            return
        value = f"majority-{role}-{sequence}"
        if _majority_write(client, history, value):
            acked.append((time.monotonic(), value))


def _probe_minority(endpoint: str, history: History, cut_at: float) -> list[dict[str, Any]]:
    requests = []
    with grpc.insecure_channel(endpoint) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        for sequence in range(1_000):
            if time.monotonic() - cut_at >= MINORITY_CUT_S:
                break
            kind = "read" if sequence % 2 == 0 else "write"
            requests.append(_one_request(stub, kind, f"minority-{endpoint}-{sequence}", history))
            time.sleep(MINORITY_REQUEST_GAP_S)
    return requests


def _one_request(stub: Any, kind: str, value: str, history: History) -> dict[str, Any]:
    handle = history.invoke("minority", KEY, kind, None if kind == "read" else value)
    started = time.monotonic()
    try:
        if kind == "read":
            response = stub.Get(kv_pb2.GetRequest(key=KEY.encode(), consistency=kv_pb2.LINEARIZABLE),
                                timeout=MINORITY_DEADLINE_S)
            output = response.kv.value.decode() if response.found else None
        else:
            stub.Put(kv_pb2.PutRequest(key=KEY.encode(), value=value.encode(), request_id=os.urandom(limits.REQUEST_ID_BYTES)),
                     timeout=MINORITY_DEADLINE_S)
            output = None
    except grpc.RpcError as error:
        if kind == "write":
            history.unknown(handle)  # it may still apply once the cut heals
        else:
            history.fail(handle)
        return {"kind": kind, "ok": False, "code": error.code().name, "started": started,
                "elapsed_s": round(time.monotonic() - started, 3)}
    history.ok(handle, output)
    return {"kind": kind, "ok": True, "value": output, "code": "OK", "started": started,
            "elapsed_s": round(time.monotonic() - started, 3)}


def _is_stale(request: dict[str, Any], acked: list[tuple[float, str]]) -> bool:
    """A read is stale if it returned something other than the last value
    acknowledged before it started (later values are fine: concurrent)."""
    before = [value for at, value in acked if at < request["started"]]
    if not before:
        return False
    later = [value for at, value in acked if at >= request["started"]]
    return request["value"] not in [before[-1], *later]


def _codes(requests: list[dict[str, Any]]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for request in requests:
        codes[f"{request['kind']}:{request['code']}"] = codes.get(f"{request['kind']}:{request['code']}", 0) + 1
    return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.scenarios")
    parser.add_argument("scenario", choices=["leader-kill", "minority"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3, help="leader-kill rounds")
    args = parser.parse_args(argv)
    enter_own_namespace([sys.executable, "-m", "tests.faults.scenarios", *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    network, note = None, "shared network namespace: nodes on 127.0.0.1 free ports"
    if in_own_namespace():
        bring_loopback_up()
        note = "private network namespace"
    if args.scenario == "minority":
        try:
            network, note = Network.open(3), "iptables partitions in a private network namespace"
        except NetworkUnavailable as error:
            note = f"NETWORK FAULTS UNAVAILABLE: {error}"
    nodes = NodeSet(args.out / "cluster", isolated=in_own_namespace(), separate_groups=network is not None)
    result: dict[str, Any] = {"scenario": args.scenario, "network": note}
    started = time.monotonic()
    try:
        if args.scenario == "leader-kill" or network is not None:
            nodes.start_all()
            nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
            result.update(leader_kill(nodes, args.rounds) if args.scenario == "leader-kill" else minority(nodes, network))
    finally:
        nodes.stop_all()
    result["wall_s"] = round(time.monotonic() - started, 1)
    (args.out / f"{args.scenario}.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
