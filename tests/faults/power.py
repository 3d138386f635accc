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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tandemkv import errors
from tandemkv.client import Client, Retry
from tandemkv.server import settings
from tandemkv.server.config import NodeConfig
from tandemkv.server.storage.crash_marker import BOOT_ID_OVERRIDE_ENV

from .nodes import FAULT_TIMINGS, NodeSet

REPO_ROOT = Path(__file__).resolve().parents[2]
FUSE_DEVICE = Path("/dev/fuse")
POLL_S = 0.05
MOUNT_TIMEOUT_S = 15.0
REAP_TIMEOUT_S = 15.0
LEADER_TIMEOUT_S = 30.0
# One round's writes must reach their target within this.
ROUND_WRITE_TIMEOUT_S = 30.0
# Acknowledged writes per round before the cut: drawn from this range, so
# cuts land at different points of snapshotting and log compaction.
ROUND_ACKS = (60, 160)
WRITER_THREADS = 3
# Every third operation of a writer is a counter increment.
COUNTER_EVERY = 3
COUNTER_NAME = "pl-counter"
CRDT_SET_NAME = "pl-set"
KEY_PREFIX = b"pl/"
WRITE_RETRY = Retry(attempts_max=3, deadline_s=2.0, attempt_timeout_s=1.0,
                    backoff_initial_s=0.05, backoff_max_s=0.3)
READ_RETRY = Retry(attempts_max=20, deadline_s=30.0, attempt_timeout_s=5.0)
RANGE_PAGE_KEYS = 5_000
# Short Raft timings (elections within about a second) and frequent
# snapshots, so cuts also hit snapshot writes and log compaction.
POWER_TIMINGS = dataclasses.replace(FAULT_TIMINGS, snapshot_entries_min=300, snapshot_interval_s=3.0)
CANARY_DURABLE = b"durable canary\n"
CANARY_UNSYNCED = b"never synced\n"


def fuse_unavailable_reason() -> str | None:
    """Why no lossyfs mount can be made here, or None. Only a missing
    /dev/fuse counts; a failed mount is checked by `LossyMount.mount`."""
    if not FUSE_DEVICE.exists():
        return f"{FUSE_DEVICE} is absent: this kernel or container offers no FUSE"
    return None


class MountNotPermitted(RuntimeError):
    """The kernel refused the mount (no privilege for FUSE here)."""


def _mounted(mountpoint: Path) -> bool:
    target = str(mountpoint)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            field = line.split(" ")[4]
            if re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field) == target:
                return True
    return False


class LossyMount:
    """One lossyfs daemon over `backing`, mounted at `mountpoint`."""

    def __init__(self, backing: Path, mountpoint: Path, log_path: Path):
        self.backing = Path(backing).resolve()
        self.mountpoint = Path(mountpoint).resolve()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)

    def mount(self) -> None:
        assert self.process is None and not _mounted(self.mountpoint), f"{self.mountpoint} is mounted"
        # Started from the caller's thread: --die-with-parent follows that thread.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.lossyfs", "--die-with-parent", "--commands-on-stdin",
                 str(self.backing), str(self.mountpoint)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not _mounted(self.mountpoint):
            if self.process.poll() is not None:
                self._mount_failed()
            if time.monotonic() > deadline:
                self.kill()
                self.cut()
                raise AssertionError(f"lossyfs did not mount {self.mountpoint} within {MOUNT_TIMEOUT_S} s; "
                                     f"log: {self.log_path}")
            time.sleep(POLL_S)

    def _mount_failed(self) -> None:
        self.process = None
        log = self.log_path.read_text(errors="replace")[-2000:]
        if "Operation not permitted" in log or "Permission denied" in log:
            raise MountNotPermitted(f"mounting FUSE is not permitted here: {log.strip()}")
        raise AssertionError(f"lossyfs exited before mounting {self.mountpoint}:\n{log}")

    def stats(self) -> dict:
        return json.loads((self.mountpoint / ".lossyfs-stats").read_bytes())

    def start_cut(self, keep: float, seed: int) -> None:
        """The power cut: SIGKILL the daemon (keep 0: every unsynced change
        lost), or ask it to write back each unsynced page with probability
        `keep` first (a torn cut; it then kills itself). Finish with `cut`."""
        self.report_path.unlink(missing_ok=True)
        if self.process is None or self.process.poll() is not None:
            return
        if keep == 0:
            self.process.send_signal(signal.SIGKILL)
            return
        command = {"cut": {"seed": seed, "keep": keep, "report": str(self.report_path)}}
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()

    def power_cycle(self, keep: float = 0.0, seed: int = 0) -> dict | None:
        """Cut (see start_cut), unmount, mount afresh; returns the cut's report."""
        self.start_cut(keep, seed)
        self.cut()
        report = self.cut_report()
        self.mount()
        return report

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    @property
    def report_path(self) -> Path:
        return self.log_path.with_suffix(".cut.json")

    def cut_report(self) -> dict | None:
        """The last torn cut's report (None after a plain SIGKILL)."""
        return json.loads(self.report_path.read_text()) if self.report_path.exists() else None

    def cut(self) -> None:
        """Waits for the daemon to die (SIGKILL if it was not cut) and takes
        the mount down."""
        if self.process is not None:
            try:
                self.process.wait(timeout=REAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=REAP_TIMEOUT_S)
                raise AssertionError(f"lossyfs on {self.mountpoint} did not finish its cut; "
                                     f"log: {self.log_path}") from None
            finally:
                self.process.stdin.close()
                self.process = None
        # auto_unmount usually beats us to it; then fusermount3 just fails.
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while _mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.mountpoint} is still mounted after {MOUNT_TIMEOUT_S} s")
            time.sleep(POLL_S)


class PowerNodeSet(NodeSet):
    """The faults harness's nodes on 127.0.0.1, each with its data
    directory at `data_root/<name>/data` and POWER_TIMINGS."""

    def _write_config(self, node) -> None:
        config = NodeConfig(
            name=node.name, data_dir=self.data_root / node.name / "data", raft_address=node.member.raft_address,
            client_address=node.member.client_address,
            peers=tuple(other.member for other in self.nodes if other is not node),
            timings=POWER_TIMINGS, map_size_bytes=256 << 20,
        )
        self.config_path(node.name).write_text(settings.to_toml(config, None))


class Writers:
    """Client threads writing unique keys and counter increments (the
    strong plane) and adding unique members to a CRDT set (the available
    plane), recording every outcome: acknowledged, or attempted with an
    unknown outcome."""

    def __init__(self, endpoints: list[str], threads: int = WRITER_THREADS):
        self.client = Client(endpoints, retry=WRITE_RETRY)
        self.lock = threading.Lock()
        self.acked_keys: dict[bytes, bytes] = {}
        self.attempted_keys: set[bytes] = set()
        self.counter_acked = 0
        self.counter_attempted = 0
        self.members_acked: set[bytes] = set()
        self.members_attempted: set[bytes] = set()
        self.acks = 0
        self.errors: dict[str, int] = {}
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), name=f"writer-{k}", daemon=True)
                        for k in range(threads)]
        self.threads.append(threading.Thread(target=self._run_crdt, name="crdt-writer", daemon=True))

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(WRITE_RETRY.deadline_s + 10.0)
        self.client.close()
        assert not any(t.is_alive() for t in self.threads), "writer threads did not stop"

    def _run(self, thread: int) -> None:
        try:
            for seq in range(1 << 62):
                if self.stop.is_set():
                    return
                if seq % COUNTER_EVERY == COUNTER_EVERY - 1:
                    self._increment()
                else:
                    self._put(thread, seq)
        except BaseException as failure:  # noqa: BLE001 (reported by check_alive)
            self.failure = failure

    def _run_crdt(self) -> None:
        try:
            crdt_set = self.client.crdt.set(CRDT_SET_NAME)
            for seq in range(1 << 62):
                if self.stop.is_set():
                    return
                member = f"member {seq:09d}".encode()
                with self.lock:
                    self.members_attempted.add(member)
                if self._attempt(lambda: crdt_set.add(member)):
                    with self.lock:
                        self.members_acked.add(member)
                        self.acks += 1
        except BaseException as failure:  # noqa: BLE001 (reported by check_alive)
            self.failure = failure

    def _put(self, thread: int, seq: int) -> None:
        key = KEY_PREFIX + f"{thread}/{seq:09d}".encode()
        value = f"value {thread}:{seq}".encode()
        with self.lock:
            self.attempted_keys.add(key)
        if self._attempt(lambda: self.client.put(key, value)):
            with self.lock:
                self.acked_keys[key] = value
                self.acks += 1

    def _increment(self) -> None:
        with self.lock:
            self.counter_attempted += 1
        if self._attempt(lambda: self.client.counter(COUNTER_NAME).incr(1)):
            with self.lock:
                self.counter_acked += 1
                self.acks += 1

    def _attempt(self, write) -> bool:
        """True if the write was acknowledged; any error leaves its outcome
        unknown (even `Unavailable`: see docs/faults.md, Findings)."""
        try:
            write()
            return True
        except errors.TandemKVError as error:
            with self.lock:
                kind = type(error).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
            return False

    def check_alive(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"a writer thread failed: {self.failure!r}") from self.failure

    def wait_for_acks(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acks < count:
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.acks} of {count} writes acknowledged within {timeout_s} s")
            time.sleep(POLL_S)


@dataclasses.dataclass
class Verdict:
    """One check of the cluster against everything acknowledged so far."""

    acked_keys: int
    counter_acked: int
    counter_value: int
    counter_attempted: int
    lost_keys: list[bytes]
    wrong_values: list[bytes]
    never_attempted: list[bytes]
    members_acked: int
    lost_members: list[bytes]
    members_never_attempted: list[bytes]

    @property
    def ok(self) -> bool:
        return (not self.lost_keys and not self.wrong_values and not self.never_attempted
                and self.counter_acked <= self.counter_value <= self.counter_attempted
                and not self.lost_members and not self.members_never_attempted)

    def describe(self) -> str:
        return (f"{len(self.lost_keys)} acknowledged keys lost (e.g. {self.lost_keys[:5]}), "
                f"{len(self.wrong_values)} with a wrong value (e.g. {self.wrong_values[:5]}), "
                f"{len(self.never_attempted)} never attempted (e.g. {self.never_attempted[:5]}); counter "
                f"{self.counter_value}, acknowledged {self.counter_acked}, attempted {self.counter_attempted}; "
                f"CRDT set: {len(self.lost_members)} acknowledged members on no node (e.g. "
                f"{self.lost_members[:5]}), {len(self.members_never_attempted)} never attempted")


def read_all(client: Client, prefix: bytes) -> dict[bytes, bytes]:
    """Every key under `prefix` with its value (linearizable, in pages)."""
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    found: dict[bytes, bytes] = {}
    start = prefix
    for _ in range(10_000):
        page = client.range(start, end=end, limit=RANGE_PAGE_KEYS)
        found.update((kv.key, kv.value) for kv in page)
        if not page.more:
            return found
        start = page[-1].key + b"\x00"
    raise AssertionError("range paging did not end")


def verify(writers: Writers, endpoints: list[str]) -> Verdict:
    # What was acknowledged before the reads start must be in what they see;
    # what they see must have been attempted before they ended.
    # A CRDT update is durable on the node that took it before it is
    # acknowledged, so each must be on at least one node.
    with writers.lock:
        acked_keys = dict(writers.acked_keys)
        counter_acked = writers.counter_acked
        members_acked = set(writers.members_acked)
    with Client(endpoints, retry=READ_RETRY) as client:
        present = read_all(client, KEY_PREFIX)
        counter_value = client.counter(COUNTER_NAME).get()
    members: set[bytes] = set()
    for endpoint in endpoints:
        with Client([endpoint], retry=READ_RETRY) as client:
            members.update(client.crdt.set(CRDT_SET_NAME).members())
    with writers.lock:
        attempted_keys = set(writers.attempted_keys)
        counter_attempted = writers.counter_attempted
        members_attempted = set(writers.members_attempted)
    return Verdict(
        acked_keys=len(acked_keys), counter_acked=counter_acked, counter_value=counter_value,
        counter_attempted=counter_attempted,
        lost_keys=sorted(k for k in acked_keys if k not in present),
        wrong_values=sorted(k for k, v in acked_keys.items() if k in present and present[k] != v),
        never_attempted=sorted(k for k in present if k not in attempted_keys),
        members_acked=len(members_acked),
        lost_members=sorted(members_acked - members),
        members_never_attempted=sorted(members - members_attempted),
    )


class Canary:
    """Files on one mount that show what a cut dropped."""

    def __init__(self, mountpoint: Path):
        self.durable = mountpoint / "canary"
        self.fresh = mountpoint / "canary-unsynced"

    def plant(self) -> None:
        """After every mount: the durable file with its known content, the
        fresh one absent, all synced."""
        with open(self.durable, "wb") as out:
            out.write(CANARY_DURABLE)
            out.flush()
            os.fsync(out.fileno())
        self.fresh.unlink(missing_ok=True)
        _fsync_directory(self.durable.parent)

    def dirty(self, round_number: int) -> None:
        """Just before a cut: changes that no sync covers."""
        with open(self.durable, "r+b") as out:
            out.write(f"unsynced overwrite before cut {round_number}\n".encode())
        self.fresh.write_bytes(CANARY_UNSYNCED)

    def dropped(self) -> bool:
        """After a cut that kept nothing unsynced: were both changes lost?
        The new file's name may survive (any fsync on the mount, a node's
        for one, commits namespace operations), but not its content. (After
        a torn cut either may be kept, in part: its page without its new
        size or the other way round.)"""
        fresh = self.fresh.read_bytes() if self.fresh.exists() else b""
        return self.durable.read_bytes() == CANARY_DURABLE and fresh == b""


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class PowerLossRig:
    """Mounts, nodes and canaries under `root`; `close()` stops every
    process and takes every mount down, whatever state it is in."""

    def __init__(self, root: Path, node_count: int = 3):
        self.root = Path(root)
        disks = self.root / "disks"
        self.nodes = PowerNodeSet(self.root / "cluster", node_count, isolated=False, separate_groups=False,
                                  data_root=disks)
        self.mounts = {node.name: LossyMount(self.root / "backing" / node.name, disks / node.name,
                                             self.root / f"lossyfs-{node.name}.log")
                       for node in self.nodes.nodes}
        self.canaries = {name: Canary(mount.mountpoint) for name, mount in self.mounts.items()}

    @property
    def endpoints(self) -> list[str]:
        return self.nodes.endpoints

    def mount_all(self) -> None:
        for mount in self.mounts.values():
            mount.mount()

    def start_nodes(self, boot_id: str) -> None:
        """Starts every node as after a boot with id `boot_id`."""
        for node in self.nodes.nodes:
            self.nodes.start(node.name, env={BOOT_ID_OVERRIDE_ENV: boot_id})

    def power_cut(self, keep: dict[str, float], rng: random.Random) -> dict[str, dict | None]:
        """Every node and every disk at once (nodes first, so none sees its
        disk fail), then reap and unmount. Returns each torn cut's report."""
        live = [n.process for n in self.nodes.nodes if n.process is not None and n.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGKILL)
        for node in self.nodes.nodes:
            node.killed = True
        for name, mount in self.mounts.items():
            mount.start_cut(keep[name], rng.randrange(1 << 31))
        for process in live:
            process.wait(timeout=REAP_TIMEOUT_S)
        for mount in self.mounts.values():
            mount.cut()
        return {name: mount.cut_report() for name, mount in self.mounts.items()}

    def close(self) -> None:
        try:
            self.nodes.stop_all()
        finally:
            for mount in self.mounts.values():
                mount.kill()
                mount.cut()

    def crash_recoveries(self) -> dict[str, int]:
        """How often each node's log says it rebuilt after a machine crash."""
        return {node.name: self.nodes.log_path(node.name).read_text(errors="replace").count(
            "machine crash detected") for node in self.nodes.nodes}


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
