"""The walls DESIGN.md draws hold at run time and in the source.

Goal: the pure cores (every module of server/strong/, server/available/crdt/
and server/available/gossip/, plus `tandemkv.errors` and `tandemkv.limits`)
load nothing of pysyncobj, gRPC, sockets, LMDB or threads; the folders
import one another only along the arrows; the command line loads neither
the node nor pysyncobj nor LMDB.

Method: each module is imported in a fresh interpreter (`python -c`), which
prints the modules it loaded and the threads it runs; the arrows are read
from the AST of every file under server/ and client/, without importing it.

`threading` itself is not on the list of what a core must not load:
protobuf's descriptor module imports it for the lock of its descriptor pool,
so every module that uses the versioned protobuf commands loads it. What is
checked instead: no core module imports it (or `_thread`, `queue`,
`concurrent`), importing a core starts no thread, and `threading` is loaded
only along with protobuf.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Source folder -> the import name it installs as (setup.cfg package_dir).
PACKAGE_OF_FOLDER = {"server": "tandemkv.server", "client": "tandemkv.client"}
CORE_FOLDERS = ("server/strong", "server/available/crdt", "server/available/gossip",
                "server/available/pubsub", "server/available/presence")
CORE_LEAVES = ("tandemkv.errors", "tandemkv.limits")

# Modules whose presence means I/O, threads or the Raft library: none of them
# may be loaded by a core module. (`_thread` is not here: the interpreter
# loads it before any code runs.)
IO_MODULES = ("pysyncobj", "grpc", "lmdb", "socket", "ssl", "select", "selectors", "asyncio",
              "concurrent", "queue", "subprocess", "multiprocessing")
# ... nor imported by one, at any depth (the AST check).
IO_IMPORTS = IO_MODULES + ("threading", "_thread")
# The parts of TandemKV that do I/O: a core loads none of them either.
RUNNING_PARTS = ("tandemkv.server.node", "tandemkv.server.raft", "tandemkv.server.storage",
                 "tandemkv.server.api", "tandemkv.server.cli", "tandemkv.server.process",
                 "tandemkv.server.available.runtime", "tandemkv.server.available.node_plane",
                 "tandemkv.server.available.storage", "tandemkv.server.available.transport",
                 "tandemkv.server.available.pubsub_plane", "tandemkv.server.available.pubsub_relay",
                 "tandemkv.client")
PROTOBUF = "google.protobuf"
IMPORT_BUDGET_S = 60.0  # one fresh interpreter; generous for a loaded machine

# Loads the module named in argv[1] in this fresh interpreter, then prints
# the thread count and every loaded module name, one a line.
PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
threading = sys.modules.get("threading")
print(threading.active_count() if threading else 1)
print("\\n".join(sorted(sys.modules)))
"""


def module_name(path: Path) -> str:
    """The import name of a source file under server/ or client/."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts[1:])
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE_OF_FOLDER[relative.parts[0]], *parts])


def core_modules() -> list[str]:
    found = [module_name(path) for folder in CORE_FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))]
    return found + list(CORE_LEAVES)


def loaded_by(module: str) -> tuple[int, set[str]]:
    """Thread count and loaded modules after importing `module` alone."""
    finished = subprocess.run([sys.executable, "-c", PROBE, module], cwd=ROOT, capture_output=True,
                              text=True, timeout=IMPORT_BUDGET_S)
    assert finished.returncode == 0, f"importing {module} failed:\n{finished.stderr}"
    threads, *modules = finished.stdout.split()
    return int(threads), set(modules)


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_the_core_module_list_covers_every_core_folder():
    modules = core_modules()
    assert len(modules) > 20, modules
    for module in ("tandemkv.server.strong.state_machine", "tandemkv.server.available.crdt.kinds",
                   "tandemkv.server.available.gossip.protocol"):
        assert module in modules


@pytest.mark.parametrize("module", core_modules())
def test_importing_a_core_module_loads_no_io_no_raft_and_no_running_part(module):
    threads, modules = loaded_by(module)
    assert module in modules
    forbidden = sorted(name for name in modules if within(name, IO_MODULES + RUNNING_PARTS))
    assert not forbidden, f"importing {module} alone loads {forbidden}"
    assert threads == 1, f"importing {module} starts {threads - 1} thread(s)"
    if "threading" in modules:
        assert PROTOBUF in modules, f"importing {module} loads threading, and not through protobuf"


@pytest.mark.parametrize("module, absent", [
    # The package, and the settings a node is built from, are read without
    # building a node.
    ("tandemkv.server", ("tandemkv.server.node", "pysyncobj", "lmdb", "grpc")),
    ("tandemkv.server.node.config", ("tandemkv.server.node.node", "pysyncobj", "lmdb", "grpc")),
    # Every `tandemkv` command imports the whole command line; only `serve`
    # needs the node (serve.py imports it inside the command).
    ("tandemkv.server.cli.main", ("tandemkv.server.node.node", "tandemkv.server.raft",
                                  "tandemkv.server.api", "tandemkv.server.available", "pysyncobj", "lmdb")),
])
def test_light_entry_points_do_not_load_the_node(module, absent):
    _, modules = loaded_by(module)
    loaded = sorted(name for name in modules if within(name, absent))
    assert not loaded, f"importing {module} alone loads {loaded}"


# --- The arrows, read from the source --------------------------------------

# Rooms, longest prefix first: the folder a module lives in, by import name.
ROOMS = (
    ("tandemkv.server.available.crdt", "available/crdt"),
    ("tandemkv.server.available.gossip", "available/gossip"),
    ("tandemkv.server.available.pubsub", "available/pubsub"),
    ("tandemkv.server.available.presence", "available/presence"),
    ("tandemkv.server.available", "available"),
    ("tandemkv.server.strong", "strong"),
    ("tandemkv.server.storage", "storage"),
    ("tandemkv.server.raft", "raft"),
    ("tandemkv.server.node", "node"),
    ("tandemkv.server.api", "api"),
    ("tandemkv.server.cli", "cli"),
    ("tandemkv.server.process", "process"),
    ("tandemkv.server", "server"),
    ("tandemkv.client", "client"),
    ("tandemkv.v1", "v1"),
    ("tandemkv.errors", "errors"),
    ("tandemkv.limits", "limits"),
    ("tandemkv", "tandemkv"),
)
SERVER_ROOMS = {"server", "strong", "storage", "raft", "node", "api", "cli", "process", "available",
                "available/crdt", "available/gossip", "available/pubsub", "available/presence"}
LEAVES = {"errors", "limits", "v1"}

# A pure room names every room it may import (its own included); the others
# name the rooms they must not import.
ALLOWED = {
    "strong": {"strong", "errors", "limits", "v1"},
    "available/crdt": {"available/crdt", "errors", "limits"},
    "available/gossip": {"available/gossip", "available/crdt", "errors", "limits"},
    "available/pubsub": {"available/pubsub", "errors", "limits"},
    # Presence borrows only the canonical encoding from crdt/.
    "available/presence": {"available/presence", "available/crdt", "errors", "limits"},
}
FORBIDDEN = {
    "storage": {"node", "raft", "api", "cli", "process", "available", "client"},
    "raft": {"node", "api", "cli", "process", "available", "client"},
    "available": {"node", "raft", "storage", "strong", "api", "cli", "process", "client"},
    # The servicers call the node (and may name its result types); never
    # the Raft glue or the store beneath it.
    "api": {"raft", "storage", "cli", "process", "client"},
    "node": {"api", "cli", "process", "client"},
    "cli": {"node", "raft", "storage", "api", "strong"},
    "process": {"cli"},
    "client": SERVER_ROOMS,
}


def room_of(name: str) -> str | None:
    for prefix, room in ROOMS:
        if within(name, (prefix,)):
            return room
    return None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported name) of every import in the file, at any depth;
    `from a import b` gives `a.b`, relative imports are made absolute."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def crossings() -> list[tuple[str, str, int, str, str]]:
    """Every import against an arrow: (module, imported, line, from room, to room)."""
    found = []
    for folder in PACKAGE_OF_FOLDER:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = module_name(path)
            source = room_of(module)
            for line, imported in imports_of(path):
                target = room_of(imported)
                if target is None:
                    if source in ALLOWED and within(imported, IO_IMPORTS):
                        found.append((module, imported, line, source, imported))
                    continue
                if source in ALLOWED:
                    wrong = target not in ALLOWED[source]
                else:
                    wrong = target in FORBIDDEN.get(source, set())
                if wrong:
                    found.append((module, imported, line, source, target))
    return found


def test_the_import_scan_sees_imports_at_every_depth():
    # serve.py imports the node inside `serve` (so the command line stays
    # light); the scan must still see that import.
    serve = ROOT / "server/process/serve.py"
    assert any(room_of(name) in ("server", "node") for _, name in imports_of(serve))
    assert room_of("tandemkv.errors.Unavailable") == "errors"
    assert room_of("tandemkv.server.available.crdt.kinds.TableKind") == "available/crdt"
    assert room_of("grpc") is None


def test_folders_import_only_along_the_arrows():
    wrong = [f"{module} (line {line}) imports {imported}: {source}/ must not import {target}"
             for module, imported, line, source, target in crossings()]
    assert not wrong, "imports against DESIGN.md's arrows:\n" + "\n".join(wrong)

