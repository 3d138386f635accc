"""Benchmark of keyed CRDT tables, the pure core (no sockets, no LMDB).

One table of per-user profiles (AW_LWW_MAP, one field per user, as the
README's `client.crdt.map("profile:ann")` pattern becomes one key per user):

1. Writes on one node (`KeyedSync.mutate`: the key's state, its bucket
   digests and the push outbox): new keys/s up to --keys, then updates/s of
   random existing keys; resident memory per key once they are in.
2. Digests: comparing two tables (the roots), a digest step (one frame of
   KEYED_SYNC_FRAME_DIGESTS_MAX digests against ours), and rebuilding the
   digests from scratch, as a node loading its table from storage would.
3. Reads: a key, and a prefix-scan page of 100 keys.
4. Convergence after a partition: three replicas holding --keys keys on a
   simulated network (tests/support/keyed_network.py, 1 s rounds, 1-20 ms
   latency, no loss); one replica is cut off while --diverged keys change
   (half on each side: updates, new keys, removals), pushes to the other
   side lost; then healed. Rounds until every replica holds equal tables,
   the frames and bytes the repair cost, the largest frame, and the full
   state's size beside them.

    timeout 1800 python -m benchmarks.keyed_tables [--keys 1000000] [--diverged 10000]

Rates and times are CPU time of this process (`time.process_time`), so
other load on the machine does not change them. Writes run at physical time
0 (the hybrid clock counts on), so the simulated replicas, whose clocks
start at 0, never see a stamp past the clock drift bound.

Prints markdown rows.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from pathlib import Path

from tandemkv.server.available.crdt.hlc import HybridClock, MemoryHighWaterMark
from tandemkv.server.available.crdt.kinds import TableKind
from tandemkv.server.available.gossip.keyed_digest import BucketDigests, pack_digests
from tandemkv.server.available.gossip.keyed_exchange import descend
from tandemkv.server.available.gossip.keyed_sync import KeyedSync
from tests.support.keyed_network import SECRET, KeyedNetwork

TABLE = "profiles"
NODES = ("n1", "n2", "n3")
ROUNDS_MAX = 60
UPDATES = 100_000


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def user_key(number: int) -> bytes:
    return b"profile:%07d" % number


def row(what: str, value: str) -> None:
    print(f"| {what} | {value} |", flush=True)


def writes_and_memory(keys: int) -> KeyedSync:
    gc.collect()
    before = rss_bytes()
    sync = KeyedSync("n1", SECRET, random.Random(1), HybridClock(MemoryHighWaterMark()), 0)
    sync.set_members(["n1"])
    sync.create_table(TABLE, TableKind.AW_LWW_MAP)
    start = time.process_time()
    for number in range(keys):
        sync.mutate(0, TABLE, user_key(number), "put", b"name", b"user %d" % number)
        if number % 10_000 == 0:
            sync.flush()
    elapsed = time.process_time() - start
    sync.flush()
    sync.take_changed()
    gc.collect()
    row(f"new keys/s (to {keys:,} keys)", f"{keys / elapsed:,.0f}")
    row("resident memory per key (state, order, digests)", f"{(rss_bytes() - before) / keys:,.0f} bytes")
    rng = random.Random(2)
    start = time.process_time()
    for step in range(UPDATES):
        sync.mutate(0, TABLE, user_key(rng.randrange(keys)), "put", b"city", b"Oslo")
    row(f"updates/s of existing keys ({UPDATES:,})", f"{UPDATES / (time.process_time() - start):,.0f}")
    sync.flush()
    sync.take_changed()
    return sync


def digests_and_reads(sync: KeyedSync, keys: int) -> None:
    table = sync.table(TABLE)
    start = time.process_time()
    fresh = BucketDigests()
    for key, data in table.items_encoded():
        fresh.change(key, None, data)
    row(f"digests rebuilt from {keys:,} keys", f"{time.process_time() - start:.2f} s")
    ours = sync._replicas[TABLE].digests  # the live tree, for the step below
    assert fresh.root() == ours.root()
    start = time.process_time()
    for _ in range(1_000):
        assert fresh.root() == ours.root()
    row("compare two tables (roots)", f"{(time.process_time() - start) * 1e6 / 1_000:.2f} µs")
    parents = tuple(range(256))
    theirs = [digest ^ 1 for parent in parents for digest in ours.children(ours.depth - 1, parent)]
    pack_digests(theirs)
    start = time.process_time()
    differing = descend(ours, ours.depth, parents, theirs, 256, random.Random(3))
    row("one digest step: 4,096 bucket digests against ours",
        f"{(time.process_time() - start) * 1e3:.1f} ms ({len(differing.listed):,} differ)")
    rng = random.Random(4)
    start = time.process_time()
    for _ in range(10_000):
        table.read(user_key(rng.randrange(keys)))
    row("read one key", f"{(time.process_time() - start) * 1e6 / 10_000:.1f} µs")
    start = time.process_time()
    for _ in range(100):
        page = table.scan(b"profile:%04d" % rng.randrange(keys // 1_000), limit=100)
    assert len(page.entries) == 100
    row("scan a prefix, one page of 100", f"{(time.process_time() - start) * 1e3 / 100:.2f} ms")


def convergence(source: KeyedSync, keys: int, diverged: int) -> None:
    network = KeyedNetwork(NODES, {TABLE: TableKind.AW_LWW_MAP}, seed=5)
    entries = list(source.table(TABLE).items_encoded())
    start = time.process_time()
    for node in network.nodes.values():
        node.drop_table(TABLE)
        node.create_table(TABLE, TableKind.AW_LWW_MAP, entries)
    row("load a replica from stored keys (state and digests)",
        f"{(time.process_time() - start) / len(NODES):.1f} s")
    del entries
    full_bytes = sum(len(key) + len(data) for key, data in source.table(TABLE).items_encoded())
    network.groups = [{"n1", "n2"}, {"n3"}]
    rng = random.Random(6)
    half = diverged // 2
    for number in rng.sample(range(keys), half):
        network.nodes["n1"].mutate(network.now_ms, TABLE, user_key(number), "put", b"city", b"Bergen")
    for number in range(keys, keys + half // 2):
        network.nodes["n3"].mutate(network.now_ms, TABLE, user_key(number), "put", b"name", b"new")
    for number in rng.sample(range(keys), half - half // 2):
        network.nodes["n3"].remove(network.now_ms, TABLE, user_key(number))
    network.run_until(network.now_ms + 2 * network.config.round_interval_ms)
    network.groups = []
    frames, sent = network.traffic.frames, network.traffic.bytes
    start = time.process_time()
    rounds = network.rounds_to_converge(ROUNDS_MAX)
    elapsed = time.process_time() - start
    row(f"rounds to converge after {diverged:,} keys diverged in {keys:,}",
        "not within %d" % ROUNDS_MAX if rounds is None else f"{rounds}")
    row("repair traffic", f"{network.traffic.frames - frames:,} frames, "
        f"{(network.traffic.bytes - sent) / 2**20:.1f} MiB (the full state is {full_bytes / 2**20:.1f} MiB)")
    row("largest frame", f"{network.traffic.largest_frame_bytes:,} bytes, "
        f"{network.traffic.most_keys_in_a_frame} keys, {network.traffic.most_digests_in_a_frame} digests")
    row("CPU time of the repair (3 replicas, one process)", f"{elapsed:.1f} s")
    rejected = {reason: count for node in network.nodes.values()
                for reason, count in node.status().rejected.items()}
    row("frames rejected", str(rejected or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--diverged", type=int, default=10_000)
    args = parser.parse_args()
    print("| keyed tables, pure core | |\n|---|---|")
    sync = writes_and_memory(args.keys)
    digests_and_reads(sync, args.keys)
    convergence(sync, args.keys, args.diverged)


if __name__ == "__main__":
    main()
