"""A backup taken during writes, restored into a new cluster.

Method: a 3-node cluster of `tandemkv serve` processes takes puts of
distinct keys from two writer threads, each acknowledged put's revision
recorded. Once some are acknowledged, `tandemkv snapshot save` runs (the
real command, in a subprocess); the writers go on until more are
acknowledged after it returned. Every member of a NEW 3-node cluster (new
ports, new data dirs) is seeded with `tandemkv snapshot restore` from the
file, and the new cluster is started. Then: every key acknowledged at or
below the backup's revision is there, with that revision; none
acknowledged above it is; no key there was created above it. A CRDT
counter written before the backup comes along, and increments on two
restored members add up (each issues dots under its own replica id). New
writes get revisions above the backup's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tandemkv import errors
from tandemkv.client import Client
from tests.support.cluster import ServeCluster

LEADER_TIMEOUT_S = 60.0
# Acknowledged puts to wait for before the backup, and after it.
WRITES_BEFORE = 50
WRITES_AFTER = 50
# Bounds of the writers: puts each, and the whole run.
WRITER_PUTS_MAX = 20_000
RUN_S_MAX = 120.0
POLL_S = 0.05
CLI = [sys.executable, "-m", "tandemkv.server.cli"]


class Writers:
    """Threads putting distinct keys; `acknowledged` maps key -> revision."""

    def __init__(self, endpoints: list[str], count: int = 2):
        self.acknowledged: dict[bytes, int] = {}
        self.unknown: set[bytes] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(endpoints, n), daemon=True)
                         for n in range(count)]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(RUN_S_MAX)

    def _run(self, endpoints: list[str], writer: int) -> None:
        with Client(endpoints) as client:
            for i in range(WRITER_PUTS_MAX):
                if self._stop.is_set():
                    return
                key = b"w/%d/%06d" % (writer, i)
                try:
                    revision = client.put(key, b"x").revision
                except errors.TandemKVError:
                    with self._lock:
                        self.unknown.add(key)
                    continue
                with self._lock:
                    self.acknowledged[key] = revision

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + RUN_S_MAX
        while self.count() < count:
            assert time.monotonic() < deadline, f"only {self.count()} puts acknowledged in {RUN_S_MAX} s"
            assert any(t.is_alive() for t in self._threads), "the writers stopped early"
            time.sleep(POLL_S)


def restore_member(backup_path, cluster: ServeCluster, name: str) -> dict:
    member = next(m for m in cluster.members if m.name == name)
    peers = ";".join(f"{m.name}={m.raft_address},{m.client_address}" for m in cluster.members if m.name != name)
    done = subprocess.run([*CLI, "snapshot", "restore", str(backup_path), "--data-dir", str(cluster.root / name),
                           "--name", name, "--raft", member.raft_address, "--client", member.client_address,
                           "--peers", peers, "--json"], capture_output=True, text=True, timeout=RUN_S_MAX)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def every_key(client: Client, start: bytes, end: bytes) -> dict:
    """Every key in [start, end), page by page."""
    found = {}
    for _ in range(WRITER_PUTS_MAX):
        page = client.range(start, end=end)
        found.update((kv.key, kv) for kv in page)
        if not page.more:
            return found
        start = max(found) + b"\x00"
    raise AssertionError("more pages than keys")


def wait_for_value(endpoint: str, read, wanted, timeout_s: float = RUN_S_MAX):
    deadline = time.monotonic() + timeout_s
    with Client([endpoint]) as client:
        while (value := read(client)) != wanted:
            assert time.monotonic() < deadline, f"{endpoint}: {value!r}, not {wanted!r}, after {timeout_s} s"
            time.sleep(POLL_S)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """(backup path, `snapshot save`'s JSON, the writers) of a cluster that
    was written to during the backup."""
    root = tmp_path_factory.mktemp("source")
    backup_path = root / "cluster.tkv"
    with ServeCluster(root, nodes=3) as source:
        leader = source.wait_for_leader(LEADER_TIMEOUT_S)
        with Client([source.endpoint(leader)]) as client:
            client.crdt.counter("visits").incr(7)  # on the leader, whose store the backup copies
        with Writers(source.endpoints) as writers:
            writers.wait_for(WRITES_BEFORE)
            saved = subprocess.run([*CLI, "snapshot", "save", str(backup_path), "--json",
                                    "--endpoints", ",".join(source.endpoints)],
                                   capture_output=True, text=True, timeout=RUN_S_MAX)
            assert saved.returncode == 0, saved.stderr
            writers.wait_for(writers.count() + WRITES_AFTER)
    return backup_path, json.loads(saved.stdout), writers


@pytest.fixture(scope="module")
def restored(backed_up, tmp_path_factory):
    backup_path, _, _ = backed_up
    target = ServeCluster(tmp_path_factory.mktemp("target"), nodes=3)
    answers = [restore_member(backup_path, target, m.name) for m in target.members]
    with target:
        target.wait_for_leader(LEADER_TIMEOUT_S)
        yield target, answers


def test_the_backup_was_taken_while_writes_went_on(backed_up):
    _, saved, writers = backed_up
    revisions = sorted(writers.acknowledged.values())
    assert revisions[0] < saved["revision"] < revisions[-1]
    assert saved["key_count"] >= WRITES_BEFORE and not list(backed_up[0].parent.glob("*.part"))


def test_every_member_is_restored_at_the_backups_revision(backed_up, restored):
    _, answers = restored
    assert {a["revision"] for a in answers} == {backed_up[1]["revision"]}


def test_writes_acknowledged_up_to_the_revision_are_there_and_none_after(backed_up, restored):
    _, saved, writers = backed_up
    target, _ = restored
    revision = saved["revision"]
    with Client(target.endpoints) as client:
        found = every_key(client, b"w/", b"w0")
    before = {k: r for k, r in writers.acknowledged.items() if r <= revision}
    after = {k: r for k, r in writers.acknowledged.items() if r > revision}
    assert before and after
    missing = sorted(k for k in before if k not in found)
    assert not missing, f"{len(missing)} keys acknowledged at or below {revision} are missing: {missing[:5]}"
    assert all(found[k].mod_revision == r for k, r in before.items())
    leaked = sorted(k for k in after if k in found)
    assert not leaked, f"{len(leaked)} keys acknowledged above {revision} are there: {leaked[:5]}"
    assert max(kv.create_revision for kv in found.values()) <= revision
    assert set(found) <= set(before) | writers.unknown


def test_the_crdt_tables_come_along_and_each_member_counts_under_its_own_id(restored):
    target, _ = restored
    first, second = target.endpoints[:2]
    for endpoint in target.endpoints:
        wait_for_value(endpoint, lambda c: c.crdt.counter("visits").get(), 7)
    for endpoint in (first, second):
        with Client([endpoint]) as client:
            client.crdt.counter("visits").incr(1)
    for endpoint in target.endpoints:
        wait_for_value(endpoint, lambda c: c.crdt.counter("visits").get(), 9)


def test_the_new_cluster_writes_above_the_backups_revision(backed_up, restored):
    target, _ = restored
    with Client(target.endpoints) as client:
        assert client.put("after-restore", "1").revision > backed_up[1]["revision"]
        assert client.get("after-restore") == b"1"
