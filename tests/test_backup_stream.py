"""Maintenance.Snapshot through the gRPC server and the SDK, against a fake
node that serves a prepared backup file (no Raft): the blocking and the
asyncio client write the same file; a backup damaged on its way, a node
that refuses, and a call beyond BACKUPS_IN_FLIGHT_MAX are each an error
that leaves FILE as it was and no FILE.part behind; a node that refuses
hands over to the next endpoint."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading

import pytest

from tandemkv import errors, limits
from tandemkv.client import AsyncClient, Client
from tandemkv.server.api import build_server
from tandemkv.server.storage import backup
from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong.view import KvRecord
from tests.support.fake_node import FakeNode

TIMEOUT_S = 10.0
KEYS = 6_000  # a few chunks' worth of file
OLD_CONTENT = b"the previous backup"


class BackupNode(FakeNode):
    """A fake node whose backups are copies of `source`, optionally damaged
    after their digest was computed, or refused, or held until `block`."""

    def __init__(self, source: bytes):
        super().__init__()
        self.source = source
        self.damage = False
        self.refuse: errors.TandemKVError | None = None
        self.taking = threading.Semaphore(0)

    def take_backup(self, *, timeout_s):
        self.taking.release()
        if self.block is not None:
            assert self.block.wait(TIMEOUT_S)
        if self.refuse is not None:
            raise self.refuse
        data = bytearray(self.source)
        if self.damage:
            data[len(data) // 2] ^= 0xFF
        backup_file = tempfile.TemporaryFile()
        backup_file.write(data)
        backup_file.flush()
        info = backup._parse_header(bytes(data[backup.PREFIX_BYTES:backup.PREFIX_BYTES + _header_length(data)]),
                                    backup.PREFIX_BYTES + _header_length(data), "served")
        backup_file.seek(0)
        return backup_file, info


def _header_length(data: bytes) -> int:
    return int.from_bytes(data[len(backup.MAGIC):backup.PREFIX_BYTES], "big")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> bytes:
    root = tmp_path_factory.mktemp("stream")
    store = StateStore(root / "state", 1 << 28)
    store.begin_batch()
    view = store.batch_view()
    for i in range(KEYS):
        view.kv_put(b"k%05d" % i, KvRecord(os.urandom(400), 9, 9, 1, 0))
    view.set_last_applied(9)
    store.commit_batch()
    fd = os.open(root / "source.tkv", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        backup.write_backup(fd, store, None, "fake", lambda: 11)
    finally:
        os.close(fd)
        store.close()
    data = (root / "source.tkv").read_bytes()
    assert len(data) > 2 * limits.BACKUP_CHUNK_BYTES
    return data


@pytest.fixture
def served(source):
    servers = []

    def serve() -> tuple[BackupNode, str]:
        node = BackupNode(source)
        server = build_server(node, "127.0.0.1:0", call_threads=4)
        server.start()
        servers.append((node, server))
        return node, f"127.0.0.1:{server.port}"
    yield serve
    for node, server in servers:
        if node.block is not None:
            node.block.set()
        server.stop(grace_s=0)


def test_the_blocking_and_the_asyncio_client_write_the_backup_as_served(served, source, tmp_path):
    _, endpoint = served()
    with Client([endpoint]) as client:
        info = client.maintenance.snapshot(tmp_path / "sync.tkv", endpoint=endpoint)

    async def take():
        async with AsyncClient([endpoint]) as client:
            return await client.maintenance.snapshot(tmp_path / "async.tkv", endpoint=endpoint)
    async_info = asyncio.run(take())
    assert (tmp_path / "sync.tkv").read_bytes() == (tmp_path / "async.tkv").read_bytes() == source
    assert (info.revision, info.applied_index, info.key_count, info.node) == (9, 11, KEYS, "fake")
    assert info.sha256 == async_info.sha256 == source[-32:].hex()
    assert backup.read_backup(tmp_path / "sync.tkv").revision == 9
    assert sorted(os.listdir(tmp_path)) == ["async.tkv", "sync.tkv"]


def test_a_backup_damaged_on_its_way_leaves_the_file_as_it_was(served, tmp_path):
    node, endpoint = served()
    node.damage = True
    target = tmp_path / "backup.tkv"
    target.write_bytes(OLD_CONTENT)
    with Client([endpoint]) as client, pytest.raises(errors.Unavailable, match="SHA-256 does not match"):
        client.maintenance.snapshot(target, endpoint=endpoint)
    assert target.read_bytes() == OLD_CONTENT and os.listdir(tmp_path) == ["backup.tkv"]


def test_a_node_that_refuses_is_an_error_naming_it_and_nothing_is_written(served, tmp_path):
    node, endpoint = served()
    node.refuse = errors.Unavailable("no read barrier confirmed")
    with Client([endpoint]) as client, pytest.raises(errors.Unavailable, match=endpoint):
        client.maintenance.snapshot(tmp_path / "backup.tkv", endpoint=endpoint)
    assert os.listdir(tmp_path) == []


def test_a_node_that_refuses_hands_over_to_the_next_endpoint(served, source, tmp_path):
    refusing, first = served()
    refusing.refuse = errors.Unavailable("no quorum")
    _, second = served()
    with Client([first, second]) as client:
        client._router.learn_leader(first)  # asked first, as a leader would be
        info = client.maintenance.snapshot(tmp_path / "backup.tkv")
    assert info.endpoint == second and (tmp_path / "backup.tkv").read_bytes() == source


def test_backups_beyond_the_limit_are_resource_exhausted(served, tmp_path):
    node, endpoint = served()
    node.block = threading.Event()
    with Client([endpoint]) as client:
        threads = [threading.Thread(target=client.maintenance.snapshot, args=(tmp_path / f"held{i}.tkv",),
                                    kwargs={"endpoint": endpoint}, daemon=True)
                   for i in range(limits.BACKUPS_IN_FLIGHT_MAX)]
        for thread in threads:
            thread.start()
        for _ in threads:
            assert node.taking.acquire(timeout=TIMEOUT_S)
        with pytest.raises(errors.ResourceExhausted, match="BACKUPS_IN_FLIGHT_MAX"):
            client.maintenance.snapshot(tmp_path / "one-more.tkv", endpoint=endpoint)
        node.block.set()
        for thread in threads:
            thread.join(TIMEOUT_S)
    assert sorted(os.listdir(tmp_path)) == [f"held{i}.tkv" for i in range(limits.BACKUPS_IN_FLIGHT_MAX)]
