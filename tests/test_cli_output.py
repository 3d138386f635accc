"""The `tandemkv` command's contract with scripts, through subprocesses
against a cluster started by `tandemkv up`: stdout carries only data and
messages go to stderr; JSON keeps bytes apart from text; flags come before
or after the command words; `--version`, values from stdin, keys on a
lease, transactions; usage errors (a timeout that is not positive) and an
endpoint that does not resolve get the documented exit code and one line;
a second `up` on a running cluster's directory refuses and changes nothing.
Also, in-process: a lost answer to a read is exit 3, to a write exit 4."""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from tandemkv import errors
from tandemkv.server.cli import client as cli_client, main as cli
from tests.support.local_up import TANDEMKV, UpProcess, free_base_port, pid_alive, tandemkv

STOP_TIMEOUT_S = 30.0
UNRESOLVABLE = "notahost.invalid:xx"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """(the directory `up` runs in, cluster.json)."""
    cwd = tmp_path_factory.mktemp("cli-output")
    with UpProcess(cwd, "--base-port", str(free_base_port(3))) as up:
        yield cwd, up.wait_ready()


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize("words", [
    ("--timeout", "0", "kv", "get", "k"),
    ("kv", "get", "k", "--timeout", "-1"),
    ("kv", "put", "k", "v", "--timeout", "nan"),
])
def test_a_timeout_that_is_not_positive_is_a_usage_error(tmp_path, words):
    result = tandemkv(tmp_path, *words)
    assert result.returncode == 2 and result.stdout == ""
    assert "more than 0 seconds" in one_line_error(result)


@pytest.mark.parametrize("words", [("kv", "get", "k"), ("counter", "get", "c"), ("kv", "put", "k", "v")])
def test_an_endpoint_that_does_not_resolve_was_never_reached(tmp_path, words):
    result = tandemkv(tmp_path, "--endpoints", UNRESOLVABLE, "--timeout", "2", *words)
    assert result.returncode == 3, result.stderr
    assert "may have applied" not in one_line_error(result) and "notahost" in result.stderr


@pytest.mark.parametrize("read,code", [(True, 3), (False, 4)])
def test_a_lost_answer_is_unavailable_for_a_read_and_unknown_for_a_write(read, code, capsys):
    def lost(client, args):
        raise errors.OutcomeUnknown("connection lost during the call (reset); it may have applied: "
                                    "retry with the same request id")

    args = argparse.Namespace(endpoints="127.0.0.1:1", timeout=1.0)
    assert cli_client.run(args, lost, read=read) == code
    message = capsys.readouterr().err
    assert ("may have applied" in message) == (not read) and "reset" in message


def test_a_missing_key_prints_nothing_on_stdout(running):
    cwd, _ = running
    captured = subprocess.run(["sh", "-c", 'v=$("$@"); echo "code=$? value=[$v]"', "sh", *TANDEMKV,
                               "kv", "get", "never-set"], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert captured.stdout.strip() == "code=1 value=[]"
    assert captured.stderr.strip() == "tandemkv: key 'never-set' not found"
    empty = tandemkv(cwd, "kv", "range", "no-such-prefix/")
    assert empty.returncode == 0 and empty.stdout == "" and "no keys" in empty.stderr


def test_json_tells_the_byte_0xff_from_the_text_backslash_xff(running):
    cwd, _ = running
    assert subprocess.run([*TANDEMKV, "kv", "put", "bin/ff", "-"], cwd=cwd, input=b"\xff",
                          capture_output=True, timeout=120).returncode == 0
    assert tandemkv(cwd, "kv", "put", "bin/text", "\\xff").returncode == 0
    binary = json.loads(tandemkv(cwd, "kv", "get", "bin/ff", "--output", "json").stdout)
    text = json.loads(tandemkv(cwd, "kv", "get", "bin/text", "--output", "json").stdout)
    assert binary["value"] == {"base64": "/w=="} and base64.b64decode(binary["value"]["base64"]) == b"\xff"
    assert text["value"] == "\\xff"
    listed = json.loads(tandemkv(cwd, "kv", "range", "bin/", "--output", "json").stdout)
    assert [kv["value"] for kv in listed["kvs"]] == [{"base64": "/w=="}, "\\xff"]


def test_flags_work_before_the_command_words_and_version_prints(running, tmp_path):
    cwd, cluster = running
    endpoint = cluster["nodes"][0]["client_address"]
    assert tandemkv(tmp_path, "--endpoints", endpoint, "kv", "put", "flags/k", "v").returncode == 0
    got = tandemkv(tmp_path, "--endpoints", endpoint, "--output", "json", "kv", "get", "flags/k")
    assert got.returncode == 0 and json.loads(got.stdout)["value"] == "v"
    locked = tandemkv(tmp_path, "--endpoints", endpoint, "lock", "flags/lock", "--", "sh", "-c", "exit 3")
    assert locked.returncode == 3, locked.stderr
    version = tandemkv(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("tandemkv ")
    assert version.stdout.split()[1] == cli.version() != "unknown"


def test_put_reads_the_value_from_stdin_and_attaches_a_lease(running):
    cwd, _ = running
    put = subprocess.run([*TANDEMKV, "kv", "put", "stdin/k", "-"], cwd=cwd, input=b"line 1\nline 2\n",
                         capture_output=True, timeout=120)
    assert put.returncode == 0, put.stderr
    assert tandemkv(cwd, "kv", "get", "stdin/k").stdout == "line 1\nline 2\n\n"
    lease = tandemkv(cwd, "lease", "grant", "30").stdout.strip()
    assert tandemkv(cwd, "kv", "put", "leased/k", "v", "--lease", lease).returncode == 0
    assert tandemkv(cwd, "kv", "get", "leased/k").stdout.strip() == "v"
    assert tandemkv(cwd, "lease", "revoke", lease).returncode == 0
    assert tandemkv(cwd, "kv", "get", "leased/k").returncode == 1  # went with its lease
    gone = tandemkv(cwd, "kv", "put", "leased/k", "v", "--lease", lease)
    assert gone.returncode != 0 and "not found" in one_line_error(gone)


TXN = """\
value txn/config == v1
version txn/lock = 0

put txn/config v2
incr txn/changes

get txn/config
"""


def test_txn_from_stdin_runs_the_branch_its_compares_choose(running):
    cwd, _ = running
    assert tandemkv(cwd, "kv", "put", "txn/config", "v1").returncode == 0
    first = subprocess.run([*TANDEMKV, "txn"], cwd=cwd, input=TXN, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["SUCCESS", "OK", "1"]
    again = subprocess.run([*TANDEMKV, "txn", "--output", "json"], cwd=cwd, input=TXN, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 1  # the value is v2 now: the failure branch ran
    answer = json.loads(again.stdout)
    assert answer["succeeded"] is False
    assert [(r["op"], r["kv"]["value"]) for r in answer["responses"]] == [("get", "v2")]


def test_txn_from_flags_and_a_bad_line_is_a_usage_error(running):
    cwd, _ = running
    result = tandemkv(cwd, "txn", "--compare", "counter txn/n == 0", "--success", "incr txn/n 5",
                      "--success", "counter-get txn/n", "--failure", "counter-set txn/n 0")
    assert result.returncode == 0 and result.stdout.splitlines() == ["SUCCESS", "5", "5"]
    bad = tandemkv(cwd, "txn", "--compare", "value k ~ v", "--success", "get k")
    assert bad.returncode == 2 and "OP one of" in one_line_error(bad)
    unknown = tandemkv(cwd, "txn", "--success", "frobnicate k")
    assert unknown.returncode == 2 and "expected one of put" in one_line_error(unknown)


def test_a_second_up_on_a_running_cluster_refuses_and_changes_nothing(running):
    cwd, cluster = running
    cluster_file = cwd / "tandemkv-data" / "cluster.json"
    before = cluster_file.read_bytes()
    second = subprocess.run([*TANDEMKV, "up"], cwd=cwd, capture_output=True, text=True,
                            timeout=STOP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert second.returncode == 2
    message = one_line_error(second)
    assert f"tandemkv up pid {cluster['supervisor_pid']}" in message and "tandemkv down" in message
    assert cluster_file.read_bytes() == before
    assert all(pid_alive(node["pid"]) for node in cluster["nodes"])


def test_the_readme_txn_from_stdin_runs_as_written(running):
    cwd, _ = running
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    heredoc = re.search(r"^tandemkv txn <<'EOF'\n(.*?)^EOF$", readme, re.S | re.M)
    assert heredoc, "the README shows a txn read from stdin"
    assert tandemkv(cwd, "kv", "put", "config", "v1").returncode == 0
    result = subprocess.run([*TANDEMKV, "txn"], cwd=cwd, input=heredoc.group(1), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["SUCCESS", "OK", "1"]
