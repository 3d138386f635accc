"""CRDT tables through the embedded `Node`'s front door, `node.crdt`, on
three members in this process (127.0.0.1): the catalog goes through Raft
and the creating node knows the table when the call returns; updates on
different nodes converge on every node; bad mutations are refused naming
what to fix; a subscriber sees the value now and after each change; a node
without quorum still takes updates; the docs' example runs as written.

Method: `tests.test_embedded_node.Cluster`; every cross-node check polls
`read` until it matches or a deadline passes (gossip rounds are 1 s)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, NotFound
from tandemkv.server.node.crdt import (Add, Assign, Clear, Decrement, Increment, Put, Remove, RemoveKey,
                                       TableKind)
from tandemkv.v1 import kv_pb2
from tests.support.ports import free_ports
from tests.test_embedded_coordination import wait_until
from tests.test_embedded_node import Cluster

# Five gossip rounds of 1 s plus the first catalog poll.
CONVERGE_TIMEOUT_S = 15.0
DOCS_EXAMPLE_TIMEOUT_S = 120
NODE_API_DOC = Path(__file__).resolve().parents[1] / "docs" / "node-api.md"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("crdt"))
    c.start()
    yield c
    c.stop()


def values_everywhere(cluster, table: str) -> dict[str, object]:
    views = {}
    for name, node in cluster.nodes.items():
        try:
            views[name] = node.crdt.read(table).value
        except NotFound:
            views[name] = None
    return views


def wait_converged(cluster, table: str, expected) -> None:
    wait_until(lambda: all(v == expected for v in values_everywhere(cluster, table).values()),
               CONVERGE_TIMEOUT_S, f"{table} == {expected!r} on every node "
               f"(last: {values_everywhere(cluster, table)})")


def test_a_created_table_is_known_on_its_node_when_create_returns(cluster):
    a, _, _ = cluster.nodes.values()
    response = a.crdt.create_table("hits", TableKind.PN_COUNTER)
    assert response.created and response.table.name == "hits"
    assert a.crdt.update("hits", Increment(2)) == "n0"  # no wait: the catalog is followed
    again = a.crdt.create_table("hits", "pn_counter")
    assert not again.created
    with pytest.raises(FailedPrecondition, match="PN_COUNTER"):
        a.crdt.create_table("hits", TableKind.OR_SET)
    listed = a.crdt.list_tables(consistency=kv_pb2.LINEARIZABLE).tables
    assert [t.name for t in listed if t.name == "hits"] == ["hits"]


def test_updates_on_every_node_converge_on_every_node(cluster):
    a, b, c = cluster.nodes.values()
    a.crdt.create_table("views", TableKind.PN_COUNTER)
    b.crdt.create_table("online", TableKind.OR_SET)
    c.crdt.create_table("profile", TableKind.AW_LWW_MAP)
    c.crdt.create_table("motto", TableKind.MV_REGISTER)
    for index, (name, node) in enumerate(cluster.nodes.items(), start=1):
        for table in ("views", "online", "profile"):  # each node learns the tables by its poll
            wait_until(lambda: _known(node, table), CONVERGE_TIMEOUT_S, f"{table} on {name}")
        node.crdt.update("views", Increment(10 * index))
        node.crdt.update("online", Add(name.encode()))
        node.crdt.update("profile", Put(name.encode(), b"seen"))
    b.crdt.update("views", Decrement(5))
    a.crdt.update("online", Remove(b"n0"))
    c.crdt.update("profile", RemoveKey(b"n2"))
    c.crdt.update("motto", Assign(b"carpe diem"))
    wait_converged(cluster, "views", 55)
    wait_converged(cluster, "online", [b"n1", b"n2"])
    wait_converged(cluster, "profile", {b"n0": b"seen", b"n1": b"seen"})
    wait_converged(cluster, "motto", [b"carpe diem"])
    c.crdt.update("motto", Clear())
    wait_converged(cluster, "motto", [])
    page = a.crdt.scan("online", prefix=b"n", limit=1)
    assert page.entries == [(b"n1", b"")] and page.more


def _known(node, table: str) -> bool:
    try:
        node.crdt.read(table)
    except NotFound:
        return False
    return True


@pytest.mark.parametrize("table, make, error, words", [
    ("views", lambda: Add(b"x"), FailedPrecondition, "takes increment or decrement, not add"),
    ("grow", lambda: Decrement(1), FailedPrecondition, "only grows"),
    ("views", lambda: Increment(-1), InvalidArgument, "use Decrement"),
    ("views", lambda: Add(b"x" * (limits.CRDT_VALUE_BYTES_MAX + 1)), InvalidArgument, "set member"),
    ("views", lambda: Add("text"), InvalidArgument, "must be bytes"),
    ("ghost", lambda: Increment(1), NotFound, "'ghost'"),
    ("", lambda: Increment(1), InvalidArgument, "CRDT_TABLE_NAME_BYTES_MAX"),
])
def test_a_bad_update_is_refused_saying_what_to_fix(cluster, table, make, error, words):
    a = cluster.nodes["n0"]
    a.crdt.create_table("views", TableKind.PN_COUNTER)
    a.crdt.create_table("grow", TableKind.G_COUNTER)
    before = a.crdt.read("views").value
    with pytest.raises(error, match=re.escape(words)):
        a.crdt.update(table, make())
    assert a.crdt.read("views").value == before


def test_a_subscriber_sees_the_value_now_and_after_each_change(cluster):
    a, b, _ = cluster.nodes.values()
    a.crdt.create_table("ticks", TableKind.G_COUNTER)
    wait_until(lambda: _known(b, "ticks"), CONVERGE_TIMEOUT_S, "ticks on n1")
    stop = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        for value in b.crdt.subscribe("ticks", stop):
            seen.append(value.value)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    wait_until(lambda: seen[-1:] == [0], CONVERGE_TIMEOUT_S, "the value now")
    b.crdt.update("ticks", Increment(3))
    wait_until(lambda: seen[-1:] == [3], CONVERGE_TIMEOUT_S, "the value after an update here")
    a.crdt.update("ticks", Increment(4))
    wait_until(lambda: seen[-1:] == [7], CONVERGE_TIMEOUT_S, "the value after gossip from n0")
    stop.set()
    reader.join(CONVERGE_TIMEOUT_S)
    assert not reader.is_alive(), "the subscription ends once stop is set"
    assert seen == sorted(seen)  # a grow-only counter seen in order


def test_a_dropped_table_is_gone_on_every_node(cluster):
    a, b, _ = cluster.nodes.values()
    a.crdt.create_table("brief", TableKind.LWW_REGISTER)
    wait_until(lambda: _known(b, "brief"), CONVERGE_TIMEOUT_S, "brief on n1")
    assert b.crdt.drop_table("brief").dropped
    with pytest.raises(NotFound, match="'brief'"):
        b.crdt.read("brief")  # followed before drop_table returned
    wait_until(lambda: not any(_known(n, "brief") for n in cluster.nodes.values()),
               CONVERGE_TIMEOUT_S, "brief gone everywhere")
    assert not a.crdt.drop_table("brief").dropped


def test_a_node_without_quorum_still_takes_updates(tmp_path):
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        a, b, c = cluster.nodes.values()
        a.crdt.create_table("kept", TableKind.OR_SET)
        wait_until(lambda: _known(c, "kept"), CONVERGE_TIMEOUT_S, "kept on n2")
        cluster.stop("n0")
        cluster.stop("n1")
        assert c.crdt.update("kept", Add(b"alone")) == "n2"
        assert c.crdt.read("kept").value == [b"alone"]
        assert c.crdt.status().gossip.tables["kept"].kind == TableKind.OR_SET
    finally:
        cluster.stop()


def test_the_node_api_docs_example_runs_as_written(tmp_path):
    section = NODE_API_DOC.read_text().split("## CRDT tables", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    raft_port, client_port = free_ports(2)
    code = code.replace("127.0.0.1:7201", f"127.0.0.1:{raft_port}")
    code = code.replace("127.0.0.1:8201", f"127.0.0.1:{client_port}")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=DOCS_EXAMPLE_TIMEOUT_S)
    assert result.returncode == 0, f"{code}\n{result.stderr}"
    assert (tmp_path / "data" / "crdt-n1").is_dir()
