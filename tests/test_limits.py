"""The limits package states every limit once, in the module of its part, and
gives every one of them by name: `limits.X` and `from tandemkv.limits import X`.

Method: each module of proto/tandemkv/limits/ is read as source (its
top-level assignments are the limits it defines) and imported; the package
must hold exactly the union, each name the very object its module defines,
in `__all__` too. The source also shows that each limit opens with a comment
saying what it bounds and that the modules import nothing but one another.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tandemkv import limits

FOLDER = Path(__file__).resolve().parent.parent / "proto" / "tandemkv" / "limits"
MODULES = sorted(path.stem for path in FOLDER.glob("*.py") if path.stem != "__init__")


def tree_of(module: str) -> ast.Module:
    path = FOLDER / f"{module}.py"
    return ast.parse(path.read_text(), filename=str(path))


def defined_in(module: str) -> list[ast.Assign]:
    """The limits a module defines: its top-level assignments."""
    return [node for node in tree_of(module).body if isinstance(node, ast.Assign)]


def names_defined_in(module: str) -> list[str]:
    return [target.id for node in defined_in(module) for target in node.targets if isinstance(target, ast.Name)]


def test_the_package_is_the_folder_and_has_its_parts():
    assert Path(limits.__file__).resolve().parent == FOLDER.resolve()
    assert {"strong", "raft", "api", "available", "jobs", "storage", "operations", "client"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_limit_of_a_module_is_given_by_the_package(module):
    part = importlib.import_module(f"tandemkv.limits.{module}")
    names = names_defined_in(module)
    assert names, f"tandemkv.limits.{module} defines no limit"
    missing = [name for name in names if getattr(limits, name, None) is not getattr(part, name)]
    assert not missing, (f"add {missing} to the import from tandemkv.limits.{module} in "
                         "proto/tandemkv/limits/__init__.py")
    assert set(names) <= set(limits.__all__)


def test_the_package_gives_each_limit_of_exactly_one_module():
    owners: dict[str, list[str]] = {}
    for module in MODULES:
        for name in names_defined_in(module):
            owners.setdefault(name, []).append(module)
    twice = {name: found for name, found in owners.items() if len(found) > 1}
    assert not twice, f"limits stated in more than one module: {twice}"
    given = {name for name in dir(limits) if name.isupper()}
    assert given == set(owners), f"the package gives names no module defines: {sorted(given - set(owners))}"
    assert sorted(limits.__all__) == sorted(given)
    assert len(given) > 200


def test_star_import_gives_every_limit_and_nothing_else():
    namespace: dict[str, object] = {}
    exec("from tandemkv.limits import *", namespace)
    imported = {name for name in namespace if name != "__builtins__"}
    assert imported == {name for name in dir(limits) if name.isupper()}


@pytest.mark.parametrize("module", MODULES)
def test_every_limit_opens_with_a_comment_saying_what_it_bounds(module):
    """A limit's line follows its comment, or another limit of the same
    comment (a _MIN beside its _MAX); a section header alone says nothing."""
    lines = (FOLDER / f"{module}.py").read_text().splitlines()
    assigned = {line for node in defined_in(module) for line in range(node.lineno, node.end_lineno + 1)}
    bare = []
    for node in defined_in(module):
        above = node.lineno - 1
        while above in assigned:
            above -= 1
        text = lines[above - 1].strip() if above >= 1 else ""
        if not text.startswith("#") or text.startswith("# --"):
            bare.append(node.targets[0].id)
    assert not bare, f"limits without a comment above them in tandemkv.limits.{module}: {bare}"


@pytest.mark.parametrize("module", MODULES + ["__init__"])
def test_the_limit_modules_import_only_one_another(module):
    imported = []
    for node in ast.walk(tree_of(module)):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    outside = [name for name in imported if not name.startswith("tandemkv.limits.") and name != "__future__"]
    assert not outside, f"tandemkv.limits.{module} imports {outside}: a limit is a number, or made of other limits"


def test_limits_defined_from_other_parts_keep_their_values():
    assert limits.KEY_SIZE_BYTES_MAX == limits.LMDB_KEY_BYTES_MAX - limits.STORE_KEY_OVERHEAD_BYTES_MAX
    assert limits.RAFT_APPEND_BATCH_BYTES == 4 * limits.COMMAND_SIZE_BYTES_MAX
    assert limits.RAFT_FRAME_BYTES_MAX == 4 * (limits.RAFT_APPEND_BATCH_BYTES + limits.COMMAND_SIZE_BYTES_MAX)
    assert limits.GRPC_PENDING_CALLS_MAX == (limits.STREAMS_OPEN_MAX + limits.PEER_STREAMS_OPEN_MAX
                                             + limits.CONCURRENT_RPCS_MAX + limits.OPERATOR_RPCS_MAX)
    assert limits.LEASE_TICK_ADVANCE_MS_MAX == limits.LEASE_TICK_INTERVAL_MS * 6 // 5
