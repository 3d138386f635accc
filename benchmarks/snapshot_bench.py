"""Backup and restore times at 10^5 and 10^6 keys (`tandemkv snapshot
save|status|restore`, docs/backup.md).

    python -m benchmarks.snapshot_bench [--keys 100000,1000000] [--value-bytes 100] [--out benchmarks/results]

Per key count, on a 3-node cluster of `tandemkv serve` processes on
127.0.0.1 (fsync on, default settings):

1. load: the keys written through Txn calls of TXN_OPS_MAX puts each,
   LOAD_IN_FLIGHT calls at once (keys/s shown; not the point here);
2. save: `Client.maintenance.snapshot(path)` from the leader, timed from
   the call to the renamed, fsynced file (read barrier, LMDB copy into the
   node's temporary file, the node's own check of it, the stream, the
   client's check); the file's size and MB/s. Then a second backup read
   off the stub without writing it, split into the node's part (to the
   first chunk) and the stream's (first chunk to last); then a third
   through the SDK again ("again": the state's pages now in memory, as
   for any backup but the first after a start or a load);
3. status: `read_backup` (the whole file hashed, headers checked);
4. restore: `backup_files.restore` once per member of a new 3-node
   cluster (check, copy of each image, Raft snapshot and log written);
5. start: the restored cluster's processes started until every member
   agrees on a leader, and a linearizable get of the last key loaded.

Also the source leader's RSS after the save. The machine's load average is
printed with the results: others' work on the machine shows in every
figure. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.clusters import START_TIMEOUT_S, TandemCluster, _Uninterrupted, free_ports
from tandemkv import limits
from tandemkv.client import Client, Retry

KEY_COUNTS_DEFAULT = (100_000, 1_000_000)
VALUE_BYTES_DEFAULT = 100
# Txn calls in flight while loading.
LOAD_IN_FLIGHT = 16
RPC_TIMEOUT_S = 60.0


def key(index: int) -> bytes:
    return b"bench/%08d" % index


async def load(endpoints: list[str], count: int, value_bytes: int) -> float:
    """Writes `count` keys through the SDK's transactions (retried, with
    their request ids, across leader changes); returns keys/s."""
    from tandemkv.client import AsyncClient, Op

    value = os.urandom(value_bytes)
    batches = iter(range(0, count, limits.TXN_OPS_MAX))
    began = time.perf_counter()
    async with AsyncClient(endpoints, retry=Retry(deadline_s=RPC_TIMEOUT_S)) as client:

        async def worker() -> None:
            for first in batches:
                puts = [Op.put(key(i), value) for i in range(first, min(first + limits.TXN_OPS_MAX, count))]
                await client.txn().on_success(*puts).commit()
        await asyncio.gather(*(worker() for _ in range(LOAD_IN_FLIGHT)))
    return count / (time.perf_counter() - began)


def stream_phases(endpoint: str) -> dict:
    """A second backup read straight off the stub, to the first chunk
    (read barrier, the node's copy and its check of it) and to the last
    (the stream alone, nothing written or hashed here)."""
    import grpc

    from tandemkv.v1 import maintenance_pb2, maintenance_pb2_grpc

    with grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", 8 << 20)]) as channel:
        stub = maintenance_pb2_grpc.MaintenanceStub(channel)
        began = time.perf_counter()
        first = None
        for _chunk in stub.Snapshot(maintenance_pb2.SnapshotRequest(), timeout=RPC_TIMEOUT_S * 10):
            first = first or time.perf_counter()
        ended = time.perf_counter()
    return {"node_copy_s": round(first - began, 3), "stream_s": round(ended - first, 3)}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def restored_cluster(backup_path: Path, root: Path) -> tuple[list[float], object]:
    """Restores a new 3-node cluster under `root`; (seconds per member, LocalCluster not started)."""
    from tandemkv.server.node.config import Member, NodeConfig
    from tandemkv.server.process import backup_files, settings
    from tandemkv.server.process.local_cluster import LocalCluster

    ports = free_ports(6)
    members = [Member(f"r{k + 1}", f"127.0.0.1:{ports[2 * k]}", f"127.0.0.1:{ports[2 * k + 1]}") for k in range(3)]
    seconds, paths = [], []
    for member in members:
        peers = tuple(m for m in members if m != member)
        began = time.perf_counter()
        backup_files.restore(backup_path, root / member.name, member, peers)
        seconds.append(time.perf_counter() - began)
        config = NodeConfig(name=member.name, data_dir=Path(member.name), raft_address=member.raft_address,
                            client_address=member.client_address, peers=peers)
        path = root / f"{member.name}.toml"
        path.write_text(settings.to_toml(config, None))
        paths.append(path)
    return seconds, LocalCluster(root, paths)


def measure(count: int, value_bytes: int) -> dict:
    from tandemkv.server.process import backup_files

    point: dict = {"keys": count, "value_bytes": value_bytes}
    work = Path(tempfile.mkdtemp(prefix="tkv-snapshot-bench-"))
    try:
        backup_path = work / "cluster.tkv"
        with TandemCluster(3) as source:
            endpoints = [c.client_address for c in source.cluster.configs.values()]
            point["load_keys_per_s"] = round(asyncio.run(load(endpoints, count, value_bytes)))
            with Client(endpoints) as client:
                began = time.perf_counter()
                info = client.maintenance.snapshot(backup_path)
                point["save_s"] = round(time.perf_counter() - began, 3)
                point["source_leader_rss_mib"] = round(rss_bytes(source.leader_pid) / 2**20, 1)
                point.update(stream_phases(info.endpoint))
                began = time.perf_counter()
                client.maintenance.snapshot(work / "again.tkv")
                point["save_again_s"] = round(time.perf_counter() - began, 3)
        point.update(revision=info.revision, key_count=info.key_count, file_mib=round(info.file_bytes / 2**20, 1),
                     save_mib_per_s=round(info.file_bytes / 2**20 / point["save_s"], 1))
        began = time.perf_counter()
        backup_files.status(backup_path)
        point["status_s"] = round(time.perf_counter() - began, 3)
        restore_root = work / "restored"
        restore_root.mkdir()
        seconds, cluster = restored_cluster(backup_path, restore_root)
        point["restore_s_per_member"] = round(sum(seconds) / len(seconds), 3)
        began = time.perf_counter()
        cluster.start()
        try:
            leader = cluster.wait_for_leader(START_TIMEOUT_S, _Uninterrupted())
            endpoint = cluster.configs[leader].client_address
            point["start_to_leader_s"] = round(time.perf_counter() - began, 3)
            with Client([endpoint]) as client:
                assert client.get(key(count - 1)) is not None, "the last key loaded is restored"
                point["start_to_first_read_s"] = round(time.perf_counter() - began, 3)
                assert client.put(b"after", b"restore").revision > info.revision
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return point


def table(points: list[dict], load: str) -> str:
    lines = [f"machine load average before the run: {load}", "",
             "| keys | file | save (first) | save MB/s | node's copy, stream | save again | status | "
             "restore (per member) | start to leader | start to first read | load keys/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in points:
        lines.append(f"| {p['keys']:,} | {p['file_mib']} MiB | {p['save_s']} s | {p['save_mib_per_s']} | "
                     f"{p['node_copy_s']} s, {p['stream_s']} s | {p['save_again_s']} s | {p['status_s']} s | {p['restore_s_per_member']} s | {p['start_to_leader_s']} s | "
                     f"{p['start_to_first_read_s']} s | {p['load_keys_per_s']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", default=",".join(map(str, KEY_COUNTS_DEFAULT)))
    parser.add_argument("--value-bytes", type=int, default=VALUE_BYTES_DEFAULT)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    points = []
    for count in (int(word) for word in args.keys.split(",")):
        points.append(measure(count, args.value_bytes))
        print(json.dumps(points[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"load_average_before": load_before, "cpus": os.cpu_count(), "points": points,
                "load_average_after": " ".join(f"{v:.2f}" for v in os.getloadavg())}
    (args.out / "snapshot.json").write_text(json.dumps(document, indent=2) + "\n")
    print(table(points, f"{load_before} (after: {document['load_average_after']}; {os.cpu_count()} CPUs)"))


if __name__ == "__main__":
    main()
