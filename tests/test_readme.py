"""The README cannot rot: its CLI session and its Python examples run
against a local cluster started with `tandemkv up`, and `.ci/run` ends with
exactly the README's test command.

Method: code blocks are extracted by language: `console` blocks are run
line by line (`$ command`, then its expected output, or `...` for output
that varies), `python` blocks each run in a fresh interpreter, in the
directory where `tandemkv up` keeps its data."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.local_up import UpProcess, free_base_port, pid_alive, tandemkv

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"^ *```(\w+)\n(.*?)^ *```", re.S | re.M)


def blocks(language: str) -> list[str]:
    found = [body for lang, body in BLOCK.findall(README) if lang == language]
    assert found, f"README has no {language} block"
    return found


def console_steps(block: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_ci_runs_exactly_the_readme_test_command():
    quick_start = [b.strip() for b in blocks("bash")]
    assert quick_start[0] == "pip install -e . && tandemkv up"
    test_command = quick_start[1]
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in ci_lines
    assert ci_lines[-1] == test_command == "pip install -e '.[dev]' && python -m pytest -q"


def test_the_readme_examples_work_as_written(tmp_path):
    up = UpProcess(tmp_path, "--base-port", str(free_base_port(3)))
    with up:
        cluster = up.wait_ready()
        for block in blocks("console"):
            for command, expected in console_steps(block):
                argv = shlex.split(command)
                assert argv[0] == "tandemkv"
                result = tandemkv(tmp_path, *argv[1:])
                assert result.returncode == 0, f"{command}: {result.stderr}"
                if expected != ["..."]:
                    assert result.stdout.splitlines() == expected, command
        for code in blocks("python"):
            result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, f"{code}\n{result.stderr}"
    assert up.process.returncode == 0
    assert not any(pid_alive(node["pid"]) for node in cluster["nodes"])
