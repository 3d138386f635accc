"""One folder knows pysyncobj: outside server/raft/, no code imports it or
names one of its attributes, and none reaches past the `Replica` façade
into the modules that do.

Method: a static scan (the AST, nothing imported) of every .py file under
server/ (except server/raft/), client/, benchmarks/ and tests/. The names
looked for are read from the installed pysyncobj: every camelCase or
name-mangled attribute of SyncObj, its transport and its connection, plus
its public class names (FAIL_REASON, SyncObj, ...). A use is an import, an
attribute (`x.waitBinded`), a bare name, or a string equal to the name
(`getattr(x, "isReady")`); prose in docstrings and comments is not.

Three test files drive pysyncobj's private methods on purpose, to check the
overrides in server/raft/ against the real thing (the port guard, the
replication fixes, the snapshot-transfer checks); they are the exceptions
(ALLOWED). Other tests that must reach under the façade use the hooks of
server/raft/testing.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pysyncobj import SyncObj
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport, Transport

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("server", "client", "benchmarks", "tests")
RAFT_DIR = REPO / "server" / "raft"
# Test files that check server/raft/'s overrides against pysyncobj's own
# private methods (its serializer, for the snapshot checks), and this file
# (it names what it looks for).
ALLOWED = frozenset({"tests/test_raft_internals.py", "tests/test_raft_port_guard.py",
                     "tests/test_snapshot_integrity.py", "tests/test_raft_facade.py"})
# What the rest of the code may import from server/raft/: the façade, its
# types, and two modules that import nothing of pysyncobj (the read barrier,
# and the port guard, whose count of refused frames tests read).
RAFT_PUBLIC_MODULES = frozenset({"tandemkv.server.raft", "tandemkv.server.raft.replica",
                                 "tandemkv.server.raft.contract",
                                 "tandemkv.server.raft.read_barrier",
                                 "tandemkv.server.raft.port_guard"})
RAFT_TEST_MODULES = frozenset({"tandemkv.server.raft.testing"})
PYSYNCOBJ_CLASS_NAMES = frozenset({"FAIL_REASON", "SyncObj", "SyncObjConf", "SyncObjConsumer",
                                   "SyncObjException", "replicated", "replicated_sync",
                                   "TcpConnection", "TCPTransport", "TCPNode", "createJournal"})
# The ones the brief of this wall names; all must be among those derived.
NAMED = frozenset({"waitBinded", "forceLogCompaction", "isReady", "raftCommitIndex",
                   "raftCurrentTerm", "raftLastApplied", "destroy_synchronous", "FAIL_REASON",
                   "_SyncObj__transport", "hasQuorum", "_getLeader", "_isLeader"})
# (file, string): a use that is not a reach into pysyncobj, and why.
ALLOWED_STRINGS = frozenset({
    # It reads a logged stack dump, where the tick thread shows by its function's name.
    ("tests/test_cli.py", "_autoTickThread"),
})
MANGLED = re.compile(r"^_(SyncObj|TCPTransport|Transport|TcpConnection)__\w+$")
CAMEL = re.compile(r"[a-z][A-Z]")


def _pysyncobj_attributes() -> frozenset[str]:
    names = {"destroy_synchronous", "tick_thread_alive"}
    for cls in (SyncObj, TCPTransport, Transport, TcpConnection):
        names |= {name for name in vars(cls) if CAMEL.search(name) and not name.startswith("__")}
    return frozenset(names)


ATTRIBUTES = _pysyncobj_attributes()


def _is_pysyncobj_name(name: str) -> bool:
    return name in ATTRIBUTES or name in PYSYNCOBJ_CLASS_NAMES or bool(MANGLED.match(name))


def violations(source: str, allow_test_hooks: bool,
               allowed_strings: frozenset[str] = frozenset()) -> list[str]:
    """Each use of pysyncobj in `source`, as 'line N: what'. A local name
    that happens to be spelt as a pysyncobj attribute (a parameter called
    raftCommitIndex) is not a use; a class name (FAIL_REASON) is."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
            found += [f"line {line}: imports {alias.name}" for alias in node.names
                      if _is_pysyncobj_name(alias.name)]
            if node.module == "tandemkv.server.raft":
                modules += [f"tandemkv.server.raft.{alias.name}" for alias in node.names]
        else:
            modules = []
        for module in modules:
            if module == "pysyncobj" or module.startswith("pysyncobj."):
                found.append(f"line {line}: imports {module}")
            elif module.startswith("tandemkv.server.raft") and module not in RAFT_PUBLIC_MODULES \
                    and not (allow_test_hooks and module in RAFT_TEST_MODULES):
                found.append(f"line {line}: imports {module}, behind the Replica façade")
        if isinstance(node, ast.Attribute) and _is_pysyncobj_name(node.attr):
            found.append(f"line {line}: names the attribute {node.attr}")
        elif isinstance(node, ast.Name) and node.id in PYSYNCOBJ_CLASS_NAMES:
            found.append(f"line {line}: names {node.id}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and _is_pysyncobj_name(node.value) and node.value not in allowed_strings:
            found.append(f"line {line}: names {node.value!r} in a string")
    return found


def _scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if RAFT_DIR in path.parents or relative in ALLOWED:
                continue
            files.append(path)
    return files


def test_the_scan_covers_the_code_outside_server_raft():
    relative = {p.relative_to(REPO).as_posix() for p in _scanned_files()}
    assert {"server/node/node.py", "server/node/coordination.py", "tests/test_embedded_node.py",
            "benchmarks/embedded_strong.py", "tests/support/cluster.py"} <= relative
    assert not any(p.startswith("server/raft/") for p in relative)


def test_the_names_looked_for_include_every_one_the_node_used_to_call():
    assert [name for name in sorted(NAMED) if not _is_pysyncobj_name(name)] == []


@pytest.mark.parametrize("source, expected", [
    ("import pysyncobj", "imports pysyncobj"),
    ("from pysyncobj.config import FAIL_REASON", "imports pysyncobj.config"),
    ("replica.waitBinded()", "attribute waitBinded"),
    ("node._replica._SyncObj__transport.send = None", "attribute _SyncObj__transport"),
    ("getattr(replica, 'isReady')()", "'isReady' in a string"),
    ("codes = FAIL_REASON", "names FAIL_REASON"),
    ("from tandemkv.server.raft.member import RaftMember", "behind the Replica façade"),
    ("from tandemkv.server.raft import transport", "behind the Replica façade"),
    ("from tandemkv.server.raft import testing", "behind the Replica façade"),
])
def test_the_scan_finds_each_kind_of_use(source, expected):
    found = violations(source, allow_test_hooks=False)
    assert any(expected in finding for finding in found), found


def test_the_scan_lets_the_facade_and_prose_pass():
    source = ('"""Calls waitBinded, as pysyncobj names it."""\n'
              "from tandemkv.server.raft.replica import Outcome, Replica\n"
              "from tandemkv.server.raft import testing\n"
              "replica.wait_bound()  # not waitBinded\n"
              "def set_commit(raftCommitIndex):\n"
              "    return raftCommitIndex\n")
    assert violations(source, allow_test_hooks=True) == []


def test_nothing_outside_server_raft_names_pysyncobj():
    found = []
    for path in _scanned_files():
        relative = path.relative_to(REPO).as_posix()
        allow_hooks = relative.startswith("tests/")
        strings = frozenset(text for file, text in ALLOWED_STRINGS if file == relative)
        found += [f"{relative}, {v}" for v in violations(path.read_text(), allow_hooks, strings)]
    assert found == [], ("pysyncobj is server/raft/'s alone; use the Replica façade (or, in "
                         "a test, server/raft/testing.py):\n" + "\n".join(found))
