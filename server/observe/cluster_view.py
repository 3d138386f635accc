"""What the dashboard shows, as one JSON document (`/api/cluster`): every
member as this node sees it (its own status, and each other member's
`Cluster.Status` asked over the member channels, OBSERVE_PEER_STATUS_TIMEOUT_MS
each, all at once), this node's operations per second and latency, its
gossip view, CRDT tables, pub/sub and presence counts, the job queues'
counts (jobs by state from this node's replica, a stale read, and the
workers that beat recently per queue), and its readiness.

A view is reused for OBSERVE_CLUSTER_VIEW_REUSE_MS, so many open dashboards
ask the other members no more often than one. Runs on the node's event
loop; holds no thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import grpc.aio

from tandemkv import limits
from tandemkv.server.observe.metrics import JOB_COUNTS
from tandemkv.server.observe.readiness import not_ready_reason
from tandemkv.server.observe.sampler import Sampler
from tandemkv.server.security.member_channels import open_member_channel
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc, jobs_pb2, kv_pb2

_ROLE_NAMES = {cluster_pb2.LEADER: "leader", cluster_pb2.FOLLOWER: "follower", cluster_pb2.CANDIDATE: "candidate"}
# Samples of the rates the page draws (the newest).
SERIES_SAMPLES = 60


class ClusterView:
    def __init__(self, node: Any, sampler: Sampler, stopping: Any) -> None:
        self._node = node
        self._sampler = sampler
        self._stopping = stopping  # () -> bool
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._view: dict | None = None
        self._view_at = float("-inf")

    async def current(self) -> dict:
        now = time.monotonic()
        if self._view is None or now - self._view_at >= limits.OBSERVE_CLUSTER_VIEW_REUSE_MS / 1000:
            self._view = await self._build()
            self._view_at = time.monotonic()
        return self._view

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        await asyncio.gather(*(channel.close() for channel in channels.values()), return_exceptions=True)

    async def _build(self) -> dict:
        try:
            status = self._node.status()
        except Exception:  # noqa: BLE001 - stopping
            status = None
        reason = not_ready_reason(status, self._stopping())
        members = []
        if status is not None:
            others = [m for m in status.members if m.name != status.name]
            answers = await asyncio.gather(*(self._peer_status(m.client_address) for m in others))
            members = [_own(status)] + [_peer(m, answer) for m, answer in zip(others, answers)]
            members.sort(key=lambda m: m["name"])
        samples = list(self._sampler.samples)[-SERIES_SAMPLES:]
        latest = samples[-1] if samples else None
        return {
            "node": getattr(getattr(self._node, "config", None), "name", ""),
            "at_ms": int(time.time() * 1000),
            "ready": {"ok": reason is None, "reason": reason or ""},
            "members": members,
            "rates": {"operations_per_s": latest.operations_per_s if latest else 0.0,
                      "latency_ms_mean": latest.latency_ms_mean if latest else 0.0,
                      "series": [[round(s.at_s, 3), round(s.operations_per_s, 2), round(s.latency_ms_mean, 3)]
                                 for s in samples]},
            "gossip": self._gossip(),
            "pubsub": self._pubsub(),
            "presence": self._presence(),
            "jobs": await self._jobs(),
        }

    async def _peer_status(self, address: str) -> cluster_pb2.StatusResponse | str:
        if not address:
            return "no client address"
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_member_channel(address, ())
        try:
            return await cluster_pb2_grpc.ClusterStub(channel).Status(
                cluster_pb2.StatusRequest(), timeout=limits.OBSERVE_PEER_STATUS_TIMEOUT_MS / 1000)
        except grpc.RpcError as error:
            return f"{error.code().name}: unreachable"

    def _gossip(self) -> dict:
        try:
            plane = self._node.crdt.status()
        except Exception:  # noqa: BLE001 - not running
            return {"running": False, "round": 0, "peers": [], "rejected": {}, "tables": []}
        gossip = plane.gossip
        tables = [{"name": name, "kind": str(table.kind.value), "keys": None}
                  for name, table in gossip.tables.items()]
        if plane.keyed:
            tables += [{"name": name, "kind": f"keyed {table.kind.value}", "keys": table.keys}
                       for name, table in plane.keyed.tables.items()]
        return {"running": True, "round": gossip.round,
                "peers": [{"name": name, "state": str(getattr(p.state, "value", p.state)).lower(),
                           "rounds_silent": p.rounds_silent} for name, p in sorted(gossip.peers.items())],
                "rejected": dict(gossip.rejected), "tables": sorted(tables, key=lambda t: t["name"])}

    def _pubsub(self) -> dict:
        try:
            status = self._node.pubsub.status()
        except Exception:  # noqa: BLE001 - not running
            return {}
        hub = status["hub"]
        return {"subscribers": hub["subscribers"], "subscriptions": hub["subscriptions"],
                "published": hub["published"], "missed_by_slow_subscribers": hub["missed_by_slow_subscribers"],
                "relay_peers": len(status["peers"])}

    async def _jobs(self) -> list[dict]:
        """Per queue: jobs by state (this node's replica, a stale read: no
        Raft round per page view) and the workers that beat recently."""
        try:
            stats = await self._node.query_async(
                jobs_pb2.JobStatsRequest(consistency=kv_pb2.STALE),
                timeout_s=limits.OBSERVE_PEER_STATUS_TIMEOUT_MS / 1000)
            workers = await asyncio.get_running_loop().run_in_executor(
                None, self._node.jobs.board.workers_per_queue)
        except Exception:  # noqa: BLE001 - stopping, or no jobs plane to read
            return []
        queues = {q.queue: {name: getattr(q, name) for name in JOB_COUNTS} for q in stats.queues}
        # The cluster-wide limit on the queue's jobs claimed at once ("-": none).
        limits_by_queue = {q.queue: q.concurrency_max or "-" for q in stats.queues}
        for queue in workers:
            queues.setdefault(queue, dict.fromkeys(JOB_COUNTS, 0))
        return [{"queue": queue.decode(errors="replace"), **counts, "limit": limits_by_queue.get(queue, "-"),
                 "workers": workers.get(queue, (0, 0))[0], "running": workers.get(queue, (0, 0))[1]}
                for queue, counts in sorted(queues.items())]

    def _presence(self) -> dict:
        try:
            status = self._node.presence.status()
        except Exception:  # noqa: BLE001 - not running
            return {}
        engine = status["engine"]
        return {"entries": engine["log"]["entries"], "sessions": engine["log"]["sessions"],
                "watches": status["watches"],
                "known_entries": sum(int(o["entries"]) for o in engine["replica"]["owners"].values())}


def _own(status: Any) -> dict:
    return {"name": status.name, "reachable": True, "error": "", "role": status.role,
            "leader": status.leader or "", "term": status.term, "commit_index": status.commit_index,
            "applied_index": status.applied_index, "ready": status.ready, "has_quorum": status.has_quorum,
            "client_address": next((m.client_address for m in status.members if m.name == status.name), ""),
            "self": True}


def _peer(member: Any, answer: cluster_pb2.StatusResponse | str) -> dict:
    base = {"name": member.name, "client_address": member.client_address, "self": False}
    if isinstance(answer, str):
        return {**base, "reachable": False, "error": answer, "role": "unreachable", "leader": "", "term": 0,
                "commit_index": 0, "applied_index": 0, "ready": False, "has_quorum": False}
    return {**base, "reachable": True, "error": "", "role": _ROLE_NAMES.get(answer.role, "follower"),
            "leader": answer.leader, "term": answer.term, "commit_index": answer.commit_index,
            "applied_index": answer.applied_index, "ready": answer.ready, "has_quorum": answer.has_quorum}
