"""Type checkers see the package after the README's `pip install -e .`, and a
wheel carries `py.typed` for every public package.

Method: the package's sources are copied to a temporary checkout (the
strict editable install builds its link tree under the checkout's build/,
which the suite's own install may be running from) and installed editable,
as the README says, into a fresh virtualenv; `--no-deps`, because what a
checker finds of tandemkv does not depend on grpcio or lmdb being there. A
module is added after the install, then mypy (the dev extra's) checks a
small user script against that virtualenv: the script imports
`tandemkv.client.Client`, `tandemkv.server.Node` and the new module, and
makes one deliberate type error with each, so mypy must have read all three
to report them. A wheel built from the same copy lists `py.typed` in each
public package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SOURCES = ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "build_backend", "proto", "server",
                   "client")
PUBLIC_PACKAGES = ("tandemkv", "tandemkv/client", "tandemkv/server", "tandemkv/v1")
STEP_TIMEOUT_S = 240.0

USER_SCRIPT = textwrap.dedent("""\
    from tandemkv.client import Client
    from tandemkv.server import Node
    from tandemkv.server.added_after_install import ADDED


    def config_version(client: Client) -> int:
        return client.get("config")  # line 7: get returns bytes or None


    node = Node(config=42)  # line 10: Node takes a NodeConfig
    label: str = ADDED  # line 11: ADDED is an int
""")
EXPECTED_ERRORS = {7: "[return-value]", 10: "[arg-type]", 11: "[assignment]"}
NOT_FOUND_MARKERS = ("import-not-found", "import-untyped", "Cannot find implementation", "missing library stubs")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)


def _copy_package_sources(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    target.mkdir()
    for name in PACKAGE_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target


def test_mypy_reads_the_editable_install_and_a_module_added_after_it(tmp_path):
    checkout = _copy_package_sources(tmp_path / "checkout")
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                      "-e", str(checkout)], tmp_path)
    assert installed.returncode == 0, installed.stderr[-4000:]
    (checkout / "server" / "added_after_install.py").write_text("ADDED: int = 1\n")

    user = tmp_path / "user"
    user.mkdir()
    (user / "app.py").write_text(USER_SCRIPT)
    checked = _run([sys.executable, "-m", "mypy", "--python-executable", str(python), "--cache-dir",
                    str(tmp_path / "mypy-cache"), "--show-error-codes", "--no-error-summary", "--no-color-output",
                    "app.py"], user)
    report = checked.stdout + checked.stderr
    assert not any(marker in report for marker in NOT_FOUND_MARKERS), report
    errors = {int(line.split(":")[1]): line for line in checked.stdout.splitlines() if ": error: " in line}
    assert set(errors) == set(EXPECTED_ERRORS), report
    for line_number, code in EXPECTED_ERRORS.items():
        assert code in errors[line_number], report
    assert "NodeConfig" in errors[10], report

    # What mypy saw is what runs: the module added after the install imports.
    imported = _run([str(python), "-c", "from tandemkv.server.added_after_install import ADDED; print(ADDED)"],
                    user)
    assert imported.stdout.strip() == "1", imported.stderr[-2000:]


def test_the_wheel_carries_py_typed_for_every_public_package(tmp_path):
    checkout = _copy_package_sources(tmp_path / "checkout")
    built = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                  str(tmp_path / "dist"), str(checkout)], tmp_path)
    assert built.returncode == 0, built.stderr[-4000:]
    (wheel,) = (tmp_path / "dist").glob("tandemkv-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"{package}/py.typed" for package in PUBLIC_PACKAGES} <= names, sorted(names)
    assert "tandemkv/server/node/node.py" in names and "tandemkv/client/_sync.py" in names
    assert not any(name.startswith("build_backend") or "tandemkv_build" in name for name in names)
