"""Power loss: a 3-node cluster whose data directories live on lossyfs
mounts (see lossyfs.py), cut again and again while clients write.

    python -m tests.faults.power --cuts 100 --seed 7 --out /tmp/power

Each node gets its own mount, `ROOT/disks/nX`, over its own backing
directory, `ROOT/backing/nX` (the node's disk), with its data directory
inside at `disks/nX/data`. A cut SIGKILLs every node and every lossyfs
daemon at once, then the mounts are taken down and mounted afresh (an
empty page cache) over the same backing directories, and the nodes start
again under a new `TANDEMKV_BOOT_ID`, so each one treats the stop as a
machine crash and rebuilds its state from its snapshot and Raft log.

What a cut keeps of what a node had not fsynced: nothing (the daemon is
SIGKILLed), or, in a torn cut, a random part (the daemon first writes back
each unsynced page with a probability drawn per node and cut, then kills
itself). The first cut keeps nothing on every node, the second is torn on
every node, later ones are a third nothing, two thirds torn.

Client threads write all the while: puts of unique keys `pl/<thread>/<n>`
and increments of one counter (the SDK's request ids make retries
exactly-once) through Raft, and adds of unique members to one CRDT set.
After every restart the cluster must hold every write acknowledged so far:
each acknowledged key with its value, no key never attempted,
acknowledged <= counter <= attempted increments, and every acknowledged
member on at least one node (the one that took it fsyncs it before
answering) and no member never attempted. A cluster that does not come
back (no leader, no acknowledged writes) fails the cut.

Two canaries per mount show that cuts really lose data: a file made
durable before each round is overwritten without fsync, and a new file is
written without any sync, just before the cut; after a cut that keeps
nothing, the old content must be back and the new file empty or gone (its
name alone may survive: the nodes' fsyncs commit namespace operations, see
lossyfs.py).

Exit status: 0 every check passed, 1 a check failed, 2 the experiment
could not run (FUSE unavailable or not permitted, no leader at the start).

Modules: power_mounts.py (the lossyfs mounts), power_rig.py (nodes,
canaries, the cut of everything at once), power_workload.py (writers and
the check), and this one (the rounds, the result, the CLI).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import sys
import time
from pathlib import Path

from .power_mounts import MountNotPermitted, fuse_unavailable_reason
from .power_rig import PowerLossRig
from .power_workload import Writers, verify

LEADER_TIMEOUT_S = 30.0
# One round's writes must reach their target within this.
ROUND_WRITE_TIMEOUT_S = 30.0
# Acknowledged writes per round before the cut: drawn from this range, so
# cuts land at different points of snapshotting and log compaction.
ROUND_ACKS = (60, 160)


@dataclasses.dataclass
class CutRecord:
    """One cut: what each node's disk lost, and the check after it."""

    round: int
    acks_before_cut: int
    keep: dict[str, float]  # probability that an unsynced page survived
    bytes_lost: dict[str, int]
    pages_kept: dict[str, int]
    namespace_ops_lost: dict[str, int]
    canaries_ok: bool
    acked_keys_verified: int
    counter: tuple[int, int, int]  # acknowledged, value, attempted
    acked_members_verified: int
    restart_s: float
    ok: bool
    detail: str


@dataclasses.dataclass
class PowerLossResult:
    seed: int
    cuts: list[CutRecord]
    failures: list[str]
    crash_recoveries: dict[str, int]
    writer_errors: dict[str, int]
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> dict:
        return {"ok": self.ok, "seed": self.seed, "cuts": len(self.cuts), "wall_s": round(self.wall_s, 1),
                "failures": self.failures, "crash_recoveries": self.crash_recoveries,
                "writer_errors": self.writer_errors,
                "acked_keys_verified_last": self.cuts[-1].acked_keys_verified if self.cuts else 0,
                "acked_members_verified_last": self.cuts[-1].acked_members_verified if self.cuts else 0,
                "bytes_lost_total": sum(sum(c.bytes_lost.values()) for c in self.cuts),
                "rounds": [dataclasses.asdict(c) for c in self.cuts]}


def run(root: Path, cuts: int, seed: int, log=print) -> PowerLossResult:
    """Powers the cluster on, then `cuts` times: write, cut, restart,
    verify. Stops at the first failed round."""
    rng = random.Random(seed)
    started = time.monotonic()
    rig = PowerLossRig(root)
    records: list[CutRecord] = []
    failures: list[str] = []
    try:
        rig.mount_all()
        for canary in rig.canaries.values():
            canary.plant()
        rig.start_nodes("power-0")
        rig.nodes.wait_for_leader(LEADER_TIMEOUT_S)
        with Writers(rig.endpoints) as writers:
            for round_number in range(1, cuts + 1):
                try:
                    record = _round(rig, writers, round_number, rng)
                except (AssertionError, TimeoutError) as error:  # the cluster did not come back
                    failures.append(f"cut {round_number}: {error}")
                    log(failures[-1])
                    break
                records.append(record)
                log(_describe(record))
                if not record.ok:
                    failures.append(f"cut {round_number}: {record.detail}")
                    break
            writers.check_alive()
            writer_errors = dict(writers.errors)
        recoveries = rig.crash_recoveries()
    finally:
        rig.close()
    return PowerLossResult(seed, records, failures, recoveries, writer_errors, time.monotonic() - started)


def _draw_keep(rng: random.Random, round_number: int) -> float:
    """The probability that one unsynced page survives the cut on one node:
    the first cut loses everything unsynced on every node, the second is
    torn on every node, later ones are a third all-lost, two thirds torn."""
    if round_number == 1 or (round_number > 2 and rng.random() < 1 / 3):
        return 0.0
    return round(rng.uniform(0.1, 0.9), 2)


def _round(rig: PowerLossRig, writers: Writers, round_number: int, rng: random.Random) -> CutRecord:
    acks_at_start = writers.acks
    writers.wait_for_acks(acks_at_start + rng.randint(*ROUND_ACKS), ROUND_WRITE_TIMEOUT_S)
    keep = {name: _draw_keep(rng, round_number) for name in rig.mounts}
    for canary in rig.canaries.values():
        canary.dirty(round_number)
    held = {name: mount.stats() for name, mount in rig.mounts.items()}
    acks_before_cut = writers.acks - acks_at_start
    reports = rig.power_cut(keep, rng)
    cut_at = time.monotonic()
    rig.mount_all()
    canaries_ok = all(canary.dropped() for name, canary in rig.canaries.items() if keep[name] == 0)
    for canary in rig.canaries.values():
        canary.plant()
    rig.start_nodes(f"power-{round_number}")
    rig.nodes.wait_for_leader(LEADER_TIMEOUT_S)
    restart_s = time.monotonic() - cut_at
    crashed = rig.nodes.crashed()
    assert not crashed, f"nodes exited by themselves after the cut: {crashed} ({rig.nodes.describe()})"
    verdict = verify(writers, rig.endpoints)
    # After a plain SIGKILL the daemon reports nothing: what it held just
    # before the cut is what was lost.
    lost = {name: reports[name] or {"bytes_lost": held[name]["unsynced_bytes"], "pages_kept": 0,
                                    "namespace_ops_lost": held[name]["uncommitted_namespace_ops"]}
            for name in rig.mounts}
    return CutRecord(
        round=round_number, acks_before_cut=acks_before_cut, keep=keep,
        bytes_lost={n: r["bytes_lost"] for n, r in lost.items()},
        pages_kept={n: r["pages_kept"] for n, r in lost.items()},
        namespace_ops_lost={n: r["namespace_ops_lost"] for n, r in lost.items()},
        canaries_ok=canaries_ok, acked_keys_verified=verdict.acked_keys,
        counter=(verdict.counter_acked, verdict.counter_value, verdict.counter_attempted),
        acked_members_verified=verdict.members_acked,
        restart_s=round(restart_s, 2), ok=verdict.ok and canaries_ok,
        detail=verdict.describe() if not verdict.ok else (
            "ok" if canaries_ok else "a canary's unsynced change survived a cut that kept nothing"),
    )


def _describe(record: CutRecord) -> str:
    return (f"cut {record.round}: {record.acks_before_cut} acks in the round; keep {record.keep}, "
            f"bytes lost {record.bytes_lost}, pages kept {record.pages_kept}, namespace ops lost "
            f"{record.namespace_ops_lost}; canaries ok: {record.canaries_ok}; restart {record.restart_s} s; "
            f"{record.acked_keys_verified} acknowledged keys, counter {record.counter} and "
            f"{record.acked_members_verified} CRDT members verified: "
            f"{record.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.power", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="logs, backing dirs and summary.json (kept)")
    args = parser.parse_args(argv)
    reason = fuse_unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    out = args.out or Path(f"/tmp/tandemkv-power-{seed}")
    if out.exists():
        shutil.rmtree(out)
    print(f"seed {seed}; logs in {out}", flush=True)
    try:
        result = run(out, args.cuts, seed, log=lambda line: print(line, flush=True))
    except MountNotPermitted as error:
        print(f"cannot run: {error}", file=sys.stderr)
        return 2
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2, default=repr))
    print(json.dumps({k: v for k, v in result.summary().items() if k != "rounds"}, default=repr))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
