"""Learners with real `tandemkv serve` processes on 127.0.0.1, through the
CLI and the SDK (blocking and asyncio).

A 3-voter cluster gets a fourth member with `tandemkv member add
--learner`, started with `serve --join`: it catches up, serves a stale read
of a key written through it (the write is forwarded to the leader), and
`member list` shows it as a learner. `member promote` exits 5 for a voter
and for a name that is not a member, then 0 for the learner once it
caught up; the SDKs list the roles and refuse a second promotion. The
Cluster service's new RPC is among those the fuzz tier sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import grpc
import pytest

from tandemkv import errors
from tandemkv.client import NO_RETRY, AsyncClient, Client, Retry
from tandemkv.v1 import cluster_pb2, cluster_pb2_grpc
from tests.support.fuzz import rpc_methods
from tests.support.growing_cluster import GrowingCluster

pytestmark = pytest.mark.skipif(os.environ.get("TANDEMKV_SKIP_CLUSTER") == "1", reason="cluster tests off")

LEADER_TIMEOUT_S = 60.0
CHANGE_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0
EXIT_REFUSED = 5


def tandemkv(*words: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tandemkv.server.cli", *words], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)


def roles(listing: dict) -> dict[str, str]:
    return {m["name"]: m["role"] for m in listing["members"]}


def test_member_promote_is_an_rpc_the_fuzz_tier_sends():
    assert "/tandemkv.v1.Cluster/MemberPromote" in [rpc.path for rpc in rpc_methods()]


def test_a_learner_added_from_the_cli_joins_serves_stale_reads_and_is_promoted_once_caught_up(tmp_path):
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        endpoints = ",".join(cluster.endpoints)
        n4 = cluster.prepare("n4")
        added = tandemkv("member", "add", "n4", "--raft", n4.raft_address, "--client", n4.client_address,
                         "--learner", "--endpoints", endpoints, "--output", "json")
        assert added.returncode == 0, added.stderr
        assert roles(json.loads(added.stdout)) == {"n1": "voter", "n2": "voter", "n3": "voter",
                                                   "n4": "learner"}
        cluster.restart("n4")  # serve --join finds itself in the set, as a learner
        cluster.wait_caught_up("n4", CHANGE_TIMEOUT_S)
        with Client([cluster.endpoint("n4")], retry=Retry(deadline_s=CHANGE_TIMEOUT_S)) as client:
            client.put("via-learner", "yes")  # forwarded to the leader
            assert client.get("via-learner") == b"yes"  # linearizable: its barrier goes through the leader
        cluster.wait_caught_up("n4", CHANGE_TIMEOUT_S)
        with Client([cluster.endpoint("n4")], retry=NO_RETRY) as client:
            assert client.get("via-learner", stale=True) == b"yes"
        assert _voters_in_status(cluster.endpoint("n1")) == {"n1": True, "n2": True, "n3": True, "n4": False}
        listed = tandemkv("member", "list", "--endpoints", cluster.endpoint("n4"))
        assert listed.returncode == 0, listed.stderr
        assert any(line.split()[0] == "n4" and line.split()[-1] == "learner"
                   for line in listed.stdout.splitlines()), listed.stdout

        voter = tandemkv("member", "promote", "n1", "--endpoints", endpoints)
        assert voter.returncode == EXIT_REFUSED and "voter already" in voter.stderr, voter.stderr
        stranger = tandemkv("member", "promote", "n9", "--endpoints", endpoints)
        assert stranger.returncode == EXIT_REFUSED and "not a member" in stranger.stderr, stranger.stderr
        promoted = _promote_from_cli(endpoints, "n4")
        assert set(roles(json.loads(promoted.stdout)).values()) == {"voter"}
        assert all(_voters_in_status(cluster.endpoint("n4")).values())

        with Client(cluster.endpoints, retry=Retry(deadline_s=CHANGE_TIMEOUT_S)) as client:
            listing = client.members.list()
            assert [(m.name, m.role) for m in listing.members] == [
                ("n1", "voter"), ("n2", "voter"), ("n3", "voter"), ("n4", "voter")]
            with pytest.raises(errors.FailedPrecondition, match="voter already"):
                client.members.promote("n4")
        asyncio.run(_async_sdk(cluster.endpoints))


def _voters_in_status(endpoint: str) -> dict[str, bool]:
    """Each member's `voter` as Cluster.Status on `endpoint` reports it."""
    with grpc.insecure_channel(endpoint) as channel:
        status = cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=10)
    return {m.name: m.voter for m in status.members}


async def _async_sdk(endpoints: list[str]) -> None:
    async with AsyncClient(endpoints, retry=Retry(deadline_s=CHANGE_TIMEOUT_S)) as client:
        listing = await client.members.list()
        assert all(m.voter for m in listing.members) and len(listing.members) == 4
        with pytest.raises(errors.FailedPrecondition, match="not a member"):
            await client.members.promote("n9")


def _promote_from_cli(endpoints: str, name: str) -> subprocess.CompletedProcess:
    """`member promote NAME`, again while it exits 5 saying the learner is
    behind or away (it may be reconnecting), until CHANGE_TIMEOUT_S."""
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while True:
        result = tandemkv("member", "promote", name, "--endpoints", endpoints, "--output", "json")
        if result.returncode == 0:
            return result
        assert result.returncode == EXIT_REFUSED and f"learner {name}" in result.stderr, result.stderr
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.2)
