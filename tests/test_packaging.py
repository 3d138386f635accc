"""Packaging: every package folder is listed in setup.cfg (a folder missing
there still imports in an editable install but is dropped from a wheel),
and the generated protobuf code is what the pinned grpcio-tools makes of
the committed .proto files."""

from __future__ import annotations

import configparser
import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def test_every_package_folder_is_listed_in_setup_cfg_and_mapped():
    options = _setup_cfg()["options"]
    listed = {line.strip() for line in options["packages"].splitlines() if line.strip()}
    mapping = {}
    for line in options["package_dir"].splitlines():
        if "=" in line:
            name, folder = (part.strip() for part in line.split("="))
            mapping[name] = folder
    assert listed == set(mapping), "every listed package has a package_dir entry"
    found = set()
    for folder in ("server", "client", "proto/tandemkv"):
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(init.parent.relative_to(ROOT).as_posix())
    assert found == set(mapping.values()), (
        f"folders with __init__.py {sorted(found)} differ from package_dir {sorted(mapping.values())}")


def test_generated_protobuf_code_is_fresh(tmp_path):
    import os

    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(["bash", str(ROOT / "proto" / "regenerate.sh"), str(tmp_path)], check=True, env=env)
    committed = ROOT / "proto" / "tandemkv" / "v1"
    fresh = tmp_path / "tandemkv" / "v1"
    generated = sorted(p.name for p in fresh.iterdir())
    assert generated, "regeneration produced nothing"
    comparison = filecmp.cmpfiles(committed, fresh, generated, shallow=False)
    assert comparison[0] == generated, (
        f"stale or missing: {comparison[1] + comparison[2]}; run: bash proto/regenerate.sh")


def test_the_pinned_grpcio_tools_is_the_one_installed():
    extras = _setup_cfg()["options.extras_require"]["dev"]
    pin = next(line.strip() for line in extras.splitlines() if "grpcio-tools" in line)
    from importlib.metadata import version

    assert pin == f"grpcio-tools=={version('grpcio-tools')}", pin
