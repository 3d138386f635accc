"""The SDK needs only grpcio and protobuf: an application that installs it
with requirements-client.txt and `pip install --no-deps` (README, "The
Python SDK") gets a working client without the node's dependencies.

Method: a subprocess whose meta path refuses every module of the node's
dependencies (pysyncobj, lmdb, cryptography, grpc health and reflection)
and of tandemkv.server imports tandemkv.client and writes and reads
against a server over a fake node; and requirements-client.txt is checked
to say what setup.cfg's install_requires says of grpcio and protobuf."""

from __future__ import annotations

import configparser
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_ONLY = ("pysyncobj", "lmdb", "cryptography", "grpc_health", "grpc_reflection", "tandemkv.server")
CLIENT_TIMEOUT_S = 60.0

CLIENT_SCRIPT = textwrap.dedent("""
    import sys

    BLOCKED = {blocked!r}

    class RefuseServerModules:
        def find_spec(self, name, path=None, target=None):
            if any(name == root or name.startswith(root + ".") for root in BLOCKED):
                raise ImportError(f"{{name}} is not installed (a client-only install)")
            return None

    sys.meta_path.insert(0, RefuseServerModules())
    from tandemkv.client import Client, NO_RETRY

    with Client({endpoint!r}, retry=NO_RETRY) as client:
        client.put("app/config", "v1")
        assert client.get("app/config") == b"v1"
    loaded = sorted(name for name in sys.modules if any(name == r or name.startswith(r + ".") for r in BLOCKED))
    print("loaded:", loaded)
""")


def test_the_client_imports_and_works_without_the_nodes_dependencies(fake_server):
    script = CLIENT_SCRIPT.format(blocked=SERVER_ONLY, endpoint=fake_server)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == "loaded: []", done.stdout


def test_the_blocker_does_refuse_a_server_module():
    script = CLIENT_SCRIPT.format(blocked=SERVER_ONLY, endpoint="127.0.0.1:1") + "\nimport lmdb\n"
    script = script.replace("with Client(", "if False:\n  with Client(")  # no connection needed
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT_S)
    assert done.returncode != 0 and "lmdb is not installed" in done.stderr, done.stderr[-2000:]


def _requirement_lines(text: str) -> list[str]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_requirements_client_matches_the_client_part_of_install_requires():
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    install_requires = _requirement_lines(parser["options"]["install_requires"])
    client_only = _requirement_lines((REPO_ROOT / "requirements-client.txt").read_text())
    assert client_only == install_requires[:2] == ["grpcio>=1.80.1,<2", "protobuf>=6.31.1,<7"]
    assert not any(line.startswith("grpcio==") for line in install_requires), install_requires
