"""`tandemkv health`: whether every member is reachable and the cluster
has a leader, for scripts.

Exit codes (see main.py for the rest):
  0  healthy: a leader, and every member answers, is caught up with the
     log and knows the leader
  1  degraded: there is a leader, but at least one member is not healthy
     (one line per such member on stderr: unreachable, not caught up, no
     leader known)
  3  no leader (or no member answered): the cluster serves no writes
Each line on stderr names one member and why; stdout carries one line per
member (or JSON with --output json).
"""

from __future__ import annotations

import argparse
import dataclasses

from tandemkv import errors
from tandemkv.client import Client, NodeInfo
from tandemkv.server.cli.client import EXIT_NO, EXIT_OK, EXIT_UNAVAILABLE, Reply, _leaf, fail

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_NO_LEADER = EXIT_OK, EXIT_NO, EXIT_UNAVAILABLE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    _leaf(subparsers, "health", cmd_health,
          "exit 0 if every member answers and there is a leader; 1 degraded, 3 no leader", (),
          read=True)


def cmd_health(client: Client, args) -> Reply:
    status = client.status()
    names = _member_names(client, status.nodes)
    rows, problems = [], []
    for node in status.nodes:
        if names and node.endpoint not in names:
            continue  # an endpoint given on the command line that is no member (or was removed)
        name = node.name or names.get(node.endpoint, "?")
        reason = _problem(node, status.leader)
        rows.append({"name": name, "endpoint": node.endpoint, "healthy": not reason, "reason": reason})
        if reason:
            problems.append(f"{name} ({node.endpoint}): {reason}")
    for name, endpoint in sorted((n, e) for e, n in names.items()
                                 if e not in {node.endpoint for node in status.nodes}):
        rows.append({"name": name, "endpoint": endpoint, "healthy": False, "reason": "not asked"})
        problems.append(f"{name} ({endpoint}): not asked (more members than the status call follows)")
    code = EXIT_HEALTHY if status.leader and not problems else (
        EXIT_DEGRADED if status.leader else EXIT_NO_LEADER)
    for problem in problems:
        fail(code, problem)
    text = "\n".join(f"{r['name']:8} {r['endpoint']:21} {'ok' if r['healthy'] else r['reason']}"
                     for r in rows)
    summary = {EXIT_HEALTHY: "healthy", EXIT_DEGRADED: f"degraded: leader {status.leader}",
               EXIT_NO_LEADER: "no leader: the cluster serves no writes"}[code]
    return Reply(code, {"healthy": code == EXIT_HEALTHY, "leader": status.leader, "members": rows},
                 text, "" if code == EXIT_HEALTHY else summary)


def _problem(node: NodeInfo, leader: str) -> str:
    """Why `node` is not healthy; "" if it is."""
    if node.error:
        return f"unreachable: {node.error}"
    if not node.leader:
        return "knows no leader"
    if not node.ready:
        return "not caught up with the log yet"
    if leader and node.leader != leader:
        return f"follows {node.leader}, the cluster's leader is {leader}"
    return ""


def _member_names(client: Client, nodes: tuple[NodeInfo, ...]) -> dict[str, str]:
    """client endpoint -> member name, from the committed member set of
    any node that answers; empty if none does."""
    for node in nodes:
        if node.error:
            continue
        try:
            given = dataclasses.asdict(client.credentials) if client.credentials else {}
            with Client([node.endpoint], retry=client.retry, tls=client.tls or False, **given) as one:
                return {m.client_address: m.name for m in one.members.list().members}
        except errors.TandemKVError:
            continue
    return {}

