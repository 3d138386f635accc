"""The Raft port against a hostile length header, on real `tandemkv serve`
processes: a frame declaring 2**31 - 1 bytes, followed by junk, sent again
and again for a few seconds to the leader and then to a follower.

Each time the node must drop the connection before it took the junk (the
sending socket's buffer is kept small, so the junk can only be sent if the
node reads it), its RSS must stay within a bound, the leader must keep its
term (no election), and writes must go on succeeding. Before the Raft port
bounded frames, the node read every byte of junk into one buffer, grew by
hundreds of MB and its tick thread fell behind.

Also: a frame of legitimate size is still read (a peer's real traffic is
covered by every cluster test; test_embedded_node installs a snapshot)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from tandemkv import limits
from tandemkv.client import NO_RETRY, Client, Retry
from tests.support.cluster import ServeCluster, rss_bytes

LEADER_TIMEOUT_S = 60
HOSTILE_LENGTH = 2**31 - 1
# Junk sent after each hostile header: more than the node's receive buffer
# (1 MiB, doubled by the kernel) and our small send buffer hold, so all of
# it goes through only if the node reads it.
JUNK_BYTES_PER_CONNECTION = 4 << 20
JUNK_PIECE_BYTES = 64 << 10
SEND_BUFFER_BYTES = 64 << 10
ATTACK_S = 4.0
# Connections held open at once (an unbounded node buffers all their junk),
# and in all.
CONNECTIONS_OPEN_MAX = 64
CONNECTIONS_TOTAL_MAX = 2000
# Longest one blocked send or one wait for the node's close may take.
SOCKET_TIMEOUT_S = 30.0
RSS_GROWTH_BYTES_MAX = 50 << 20
WRITE_TIMEOUT_S = 10.0



def send_hostile_frame(address: str, sock: socket.socket) -> bool:
    """Sends the hostile header and junk on `sock` (left open, as an
    attacker would); True if the node closed the connection before it took
    all the junk."""
    host, port = address.rsplit(":", 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    sock.settimeout(SOCKET_TIMEOUT_S)
    sock.connect((host, int(port)))
    junk = bytes(range(256)) * (JUNK_PIECE_BYTES // 256)
    try:
        sock.sendall(struct.pack("i", HOSTILE_LENGTH))
        for _ in range(JUNK_BYTES_PER_CONNECTION // JUNK_PIECE_BYTES):
            sock.sendall(junk)
    except (BrokenPipeError, ConnectionResetError):
        return True
    except socket.timeout:
        return False
    return False


class Writer(threading.Thread):
    """Puts one key after another until stopped; counts what failed."""

    def __init__(self, endpoints: list[str]):
        super().__init__(daemon=True)
        self.endpoints = endpoints
        self.stop = threading.Event()
        self.succeeded = 0
        self.failures: list[str] = []

    def run(self) -> None:
        with Client(self.endpoints, retry=Retry(deadline_s=WRITE_TIMEOUT_S)) as client:
            while not self.stop.is_set():
                try:
                    client.put(f"during/{self.succeeded}", b"v")
                    self.succeeded += 1
                except Exception as error:  # noqa: BLE001 (every failure is the finding)
                    self.failures.append(repr(error))


def attack(cluster: ServeCluster, target: str) -> dict:
    """Hostile frames to `target`'s Raft port for ATTACK_S while a
    writer writes; what was seen."""
    address = next(m.raft_address for m in cluster.members if m.name == target)
    pid = cluster.processes[target].pid
    rss_before = rss_bytes(pid)
    writer = Writer(cluster.endpoints)
    writer.start()
    refused, sent, rss_max, sockets = 0, 0, rss_before, []
    deadline = time.monotonic() + ATTACK_S
    try:
        while time.monotonic() < deadline and sent < CONNECTIONS_TOTAL_MAX:
            if len(sockets) == CONNECTIONS_OPEN_MAX:
                sockets.pop(0).close()
            sockets.append(socket.socket())
            refused += send_hostile_frame(address, sockets[-1])
            sent += 1
            rss_max = max(rss_max, rss_bytes(pid))
    finally:
        for sock in sockets:
            sock.close()
        writer.stop.set()
        writer.join(WRITE_TIMEOUT_S * 2)
    return {"sent": sent, "refused": refused, "rss_before": rss_before, "rss_max": rss_max,
            "writes": writer.succeeded, "write_failures": writer.failures}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("raftport")) as started:
        started.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
        yield started


def _leader_and_term(client: Client) -> tuple[str, int]:
    status = client.status()
    return status.leader, status.term


@pytest.mark.parametrize("target_role", ["leader", "follower"])
def test_a_hostile_frame_length_is_refused_unread_and_the_cluster_keeps_its_leader(cluster, target_role):
    leader = cluster.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
    target = leader if target_role == "leader" else next(
        m.name for m in cluster.members if m.name != leader)
    with Client(cluster.endpoints, retry=NO_RETRY) as client:
        leader_before, term_before = _leader_and_term(client)
        seen = attack(cluster, target)
        leader_after, term_after = _leader_and_term(client)
        client.put(b"after", b"ok")
    print(f"{target_role} {target}: {seen['sent']} hostile frames, RSS "
          f"{seen['rss_before'] >> 20} -> max {seen['rss_max'] >> 20} MiB, {seen['writes']} writes")
    assert seen["sent"] > 0 and seen["refused"] == seen["sent"], seen
    assert seen["rss_max"] - seen["rss_before"] <= RSS_GROWTH_BYTES_MAX, seen
    assert seen["write_failures"] == [] and seen["writes"] > 0, seen
    assert (leader_after, term_after) == (leader_before, term_before)
    assert all(cluster.processes[m.name].poll() is None for m in cluster.members)


def test_a_frame_within_the_limit_is_read_until_it_is_whole(cluster):
    # A junk frame of legitimate size: the node reads all of it (our send
    # completes), then drops the connection because it does not decrypt.
    leader = cluster.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
    host, port = next(m.raft_address for m in cluster.members if m.name == leader).rsplit(":", 1)
    length = min(limits.RAFT_FRAME_BYTES_MAX, 2 * JUNK_BYTES_PER_CONNECTION)
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        sock.sendall(struct.pack("i", length) + b"\x00" * length)
        assert sock.recv(1) == b""  # read whole, refused as undecryptable, closed
