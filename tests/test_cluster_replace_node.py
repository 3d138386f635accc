"""Replacing a member whose disk was wiped, with real `tandemkv serve`
processes on 127.0.0.1 (docs/membership.md, "Replacing a failed member").

The procedure: kill the member, delete its data dir, `tandemkv member
remove` it, `tandemkv member add` it again (here under the same name and
addresses, the case an operator with one spare machine meets), and start
it with `serve --join`. While writers keep putting keys, the cluster keeps
its quorum throughout, the new node catches up (from a snapshot: the log
was compacted) and holds every acknowledged key on its own disk.

And what must not happen: a voter started on an empty disk under its old
name, without being removed and added again, forgot its log and its vote.
Had it voted as if nothing happened, it could vote a node that lacks
acknowledged writes into leadership, and those writes would be gone: the
second test builds exactly that interleaving and checks the write
survives, because a member on an empty disk votes for no candidate with
a history until a leader reached it (server/raft/vote_guard.py).
"""

from __future__ import annotations

import os
import time

import pytest

from tandemkv import errors
from tandemkv.client import NO_RETRY, Client, Retry
from tests.support.growing_cluster import SNAPSHOT_ENTRIES, GrowingCluster
from tests.test_cluster_membership import Writers, tandemkv

pytestmark = pytest.mark.skipif(os.environ.get("TANDEMKV_SKIP_CLUSTER") == "1", reason="cluster tests off")

LEADER_TIMEOUT_S = 120.0
CHANGE_TIMEOUT_S = 60.0
# The writers' first few hundred puts (past SNAPSHOT_ENTRIES, so the leader compacts its
# log); seconds on an idle machine, minutes on one with a load average of 80.
WRITES_TIMEOUT_S = 180.0
# How long a member started on a wiped disk may take to log that it refused a vote, or that it caught up.
REFUSAL_TIMEOUT_S = 60.0
# How long a put is tried while only the wiped member and one with a history run (no leader is expected).
NO_QUORUM_TRY_S = 15.0


def test_a_wiped_member_removed_and_added_again_catches_up_and_holds_every_acknowledged_key(tmp_path):
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        leader = cluster.wait_for_leader(LEADER_TIMEOUT_S)
        victim = next(n for n in ("n1", "n2", "n3") if n != leader)
        member = next(m for m in cluster.members if m.name == victim)
        survivors = [n for n in ("n1", "n2", "n3") if n != victim]
        endpoints = ",".join(cluster.endpoint(n) for n in survivors)
        with Writers([cluster.endpoint(n) for n in survivors]) as writers:
            writers.wait_for(SNAPSHOT_ENTRIES + 100, WRITES_TIMEOUT_S)
            cluster.kill(victim)
            cluster.wipe(victim)
            removed = tandemkv("member", "remove", victim, "--endpoints", endpoints)
            assert removed.returncode == 0, removed.stderr
            # Two voters of two: the cluster still commits.
            during = len(writers.acknowledged)
            writers.wait_for(during + 50, CHANGE_TIMEOUT_S)
            added = tandemkv("member", "add", victim, "--raft", member.raft_address, "--client",
                             member.client_address, "--endpoints", endpoints)
            assert added.returncode == 0, added.stderr
            cluster._write_config(member, peers=(), join=cluster.endpoint(survivors[0]))
            cluster.restart(victim)
            cluster.wait_for_members(["n1", "n2", "n3"], ["n1", "n2", "n3"], CHANGE_TIMEOUT_S)
            writers.wait_for(len(writers.acknowledged) + 50, CHANGE_TIMEOUT_S)
        assert not writers.failures, f"puts never acknowledged: {writers.failures[:5]}"
        cluster.wait_caught_up(victim, CHANGE_TIMEOUT_S)
        # Its own disk, read without asking anyone else (a stale read is a local read).
        with Client([cluster.endpoint(victim)], retry=NO_RETRY) as client:
            held = {kv.key.decode() for k in range(3) for kv in _all_stale_keys(client, f"w{k}-")}
        lost = sorted(set(writers.acknowledged) - held)
        assert not lost, f"{len(lost)} acknowledged puts missing on the replaced {victim}, e.g. {lost[:5]}"
        log = cluster.log_path(victim).read_text()
        assert "joined through" in log, log[-2000:]


def _all_stale_keys(client: Client, prefix: str):
    start, end = prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
    while True:
        result = client.range(start, end=end, stale=True)
        yield from result
        if not result.more:
            return
        start = result.kvs[-1].key.decode() + "\0"


def test_a_voter_restarted_on_a_wiped_disk_under_its_old_name_cannot_lose_an_acknowledged_write(tmp_path):
    """n3 down; K1 acknowledged by n1 and n2; n2's disk wiped; n1 down.
    n3 (without K1) and the wiped n2 come up. If n2 rejoins, the two of
    them are a quorum: K2 is acknowledged by them, then n1 returns. A
    voter that forgot its log lets a log without K1 win, or n1's log (which
    lacks K2) overwrite entries they applied: either way an acknowledged
    write is lost. n2, on an empty disk, votes for no candidate with a
    history: K2 is never acknowledged and K1 survives on n1."""
    with GrowingCluster(tmp_path, nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        lagging, wiped, keeper = "n3", "n2", "n1"
        # n3 holds a history (it applied the leader's first entries): two
        # members that both hold none can still elect each other (see
        # docs/membership.md, "A wiped disk under the old name").
        cluster.wait_caught_up(lagging, LEADER_TIMEOUT_S)
        cluster.kill(lagging)
        acknowledged = {}
        with Client([cluster.endpoint(keeper), cluster.endpoint(wiped)], retry=Retry(deadline_s=30.0)) as client:
            client.put("k1", "before the wipe")
            acknowledged["k1"] = b"before the wipe"
        cluster.kill(wiped)
        cluster.wipe(wiped)
        cluster.kill(keeper)
        cluster.restart(lagging)
        cluster.restart(wiped)  # its old config: static peers, an empty data dir
        # The wiped n2 votes for no candidate with a history, and n3 has one:
        # the two elect no leader, so nothing is acknowledged without n1.
        with Client([cluster.endpoint(lagging), cluster.endpoint(wiped)],
                    retry=Retry(deadline_s=NO_QUORUM_TRY_S)) as client:
            with pytest.raises((errors.Unavailable, errors.OutcomeUnknown)):
                client.put("k2", "after the wipe")
        assert cluster.processes[wiped].poll() is None, "the wiped member keeps running, without voting"
        assert _log_says(cluster, wiped, "no vote for a candidate with a history", REFUSAL_TIMEOUT_S)
        cluster.restart(keeper)
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        with Client([cluster.endpoint(n) for n in (keeper, wiped, lagging)], retry=Retry(deadline_s=30.0)) as client:
            assert {key: client.get(key) for key in acknowledged} == acknowledged
            assert client.get("k2") is None
        # A leader's entries reach the wiped member: it holds k1 on its own disk
        # and votes again from the next term on.
        assert _log_says(cluster, wiped, "votes again from term", REFUSAL_TIMEOUT_S)
        diverged = [line for n in ("n1", "n2", "n3") for line in cluster.log_path(n).read_text().splitlines()
                    if "truncating already-applied" in line]
        assert not diverged, f"{diverged}; logs in {tmp_path}"


def _log_says(cluster: GrowingCluster, name: str, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in cluster.log_path(name).read_text():
            return True
        time.sleep(0.2)
    raise AssertionError(f"{name}'s log does not say {text!r} within {timeout_s} s; logs in {cluster.root}")
