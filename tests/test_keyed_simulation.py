"""Seeded simulation: keyed tables on three replicas converge once faults heal.

Method: three KeyedSync nodes on a virtual clock (tests/support/
keyed_network.py), joined by a network that drops, duplicates and delays
(so reorders) frames and cuts partitions that come and go, all drawn from
one seed. While partitions change, random writes and key removals hit
five keyed tables (one per removable kind, and a PN counter) on random
nodes, over keys that share prefixes. Then the partitions heal and writes
stop; drops, duplicates and reordering go on. Within ROUNDS_AFTER_HEAL_MAX
rounds every replica must hold equal tables, and each table must equal the
join of every delta the writes returned (worked out from the deltas alone:
no write lost, nothing removed comes back). A second run squeezes every
bound (frames of 2 KiB and a few keys, steps of a few keys, a two-key push
outbox, digest frames of four parents) so that the budgets, the random choice of
differing nodes and dropped pushes are all exercised.

A failure prints its seed; `SEED=<n> pytest tests/test_keyed_simulation.py`
replays exactly that run."""

from __future__ import annotations

import os
import random

import pytest

from tandemkv.server.available.crdt.keyed import KeyedTable
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_sync import KeyedSyncConfig
from tests.support.keyed_network import Faults, KeyedNetwork

NODES = ("n1", "n2", "n3")
TABLES = {"profiles": TableKind.AW_LWW_MAP, "rooms": TableKind.OR_SET, "hits": TableKind.PN_COUNTER,
          "status": TableKind.LWW_REGISTER, "drafts": TableKind.MV_REGISTER}
ROUND_MS = 1_000
WRITE_PHASE_MS = 30_000
ROUNDS_AFTER_HEAL_MAX = 15
FAULTS = Faults(drop=0.15, duplicate=0.05, latency_ms_min=1, latency_ms_max=1_500)


def _seeds(default: range) -> list[int]:
    replay = os.environ.get("SEED")
    return [int(replay)] if replay else list(default)


class Run:
    def __init__(self, seed: int, config: KeyedSyncConfig, keys: int) -> None:
        self.seed = seed
        self.network = KeyedNetwork(NODES, TABLES, seed, FAULTS, config)
        self.rng = random.Random(seed * 7 + 1)
        self.keys = [b"user:%d" % number for number in range(keys)] + [b"", b"user:"]
        self.oracle = {table: KeyedTable(kind) for table, kind in TABLES.items()}

    def fail(self, what: str) -> str:
        return f"seed {self.seed}: {what}; replay with SEED={self.seed} pytest tests/test_keyed_simulation.py"

    def write(self) -> None:
        node = self.network.nodes[self.rng.choice(NODES)]
        now_ms = self.network.now_ms
        table = self.rng.choice(sorted(TABLES))
        key = self.rng.choice(self.keys)
        value = b"v%d" % self.rng.randint(0, 9)
        if table != "hits" and self.rng.random() < 0.15:
            delta = node.remove(now_ms, table, key)
        elif table == "profiles":
            delta = node.mutate(now_ms, table, key, "put", self.rng.choice([b"name", b"city"]), value)
        elif table == "rooms":
            delta = node.mutate(now_ms, table, key, self.rng.choice(["add", "add", "remove"]), value)
        elif table == "hits":
            delta = node.mutate(now_ms, table, key, self.rng.choice(["increment", "decrement"]),
                                self.rng.randint(1, 5))
        else:
            delta = node.mutate(now_ms, table, key, "assign", value)
        self.oracle[table].merge(delta)

    def shake(self) -> None:
        if self.rng.random() < 0.7:
            side = set(self.rng.sample(NODES, self.rng.randint(1, len(NODES) - 1)))
            self.network.groups = [side, set(NODES) - side]
        else:
            self.network.groups = []

    def run(self) -> "Run":
        network = self.network
        while network.now_ms < WRITE_PHASE_MS:
            self.shake()
            end_ms = network.now_ms + self.rng.randint(1_000, 5_000)
            while network.now_ms < end_ms:
                for _ in range(self.rng.randint(0, 6)):
                    self.write()
                network.run_until(network.now_ms + ROUND_MS // 2)
        network.groups = []
        rounds = network.rounds_to_converge(ROUNDS_AFTER_HEAL_MAX)
        assert rounds is not None, self.fail(f"not converged {ROUNDS_AFTER_HEAL_MAX} rounds after the heal")
        return self

    def check(self) -> None:
        for table, expected in self.oracle.items():
            assert len(expected) > 0, self.fail(f"no write reached {table}: the run tests nothing")
            for name, node in self.network.nodes.items():
                held = node.table(table)
                assert held == expected, self.fail(f"{name}'s {table} is not the join of every delta")
                for key in self.keys:
                    assert held.read(key) == expected.read(key)


@pytest.mark.parametrize("seed", _seeds(range(8)))
def test_keyed_replicas_converge_to_the_join_of_every_delta_after_faults_heal(seed):
    run = Run(seed, KeyedSyncConfig(round_interval_ms=ROUND_MS), keys=40).run()
    run.check()
    assert run.network.traffic.largest_frame_bytes <= run.network.config.frame_bytes_max


@pytest.mark.parametrize("seed", _seeds(range(100, 104)))
def test_convergence_holds_when_every_frame_step_and_outbox_bound_is_tiny(seed):
    config = KeyedSyncConfig(round_interval_ms=ROUND_MS, frame_bytes_max=2_048, frame_keys_max=4,
                             step_keys_max=6, frame_digests_max=64, push_keys_max=2, digest_fanout=16,
                             digest_depth=2)
    run = Run(seed, config, keys=120).run()
    run.check()
    traffic = run.network.traffic
    assert traffic.most_keys_in_a_frame <= 4 and traffic.most_digests_in_a_frame <= 64
    assert traffic.largest_frame_bytes <= 2_048
    dropped = sum(table.pushes_dropped for node in run.network.nodes.values()
                  for table in node.status().tables.values())
    assert dropped > 0, run.fail("no push was dropped: the run missed the repair of dropped pushes")
