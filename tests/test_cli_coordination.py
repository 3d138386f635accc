"""`tandemkv lease|registry|lock|elect|watch` through subprocesses against a
real cluster: output, exit codes, and holds that end cleanly on Ctrl-C or
SIGTERM (releasing what they held)."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.support.cluster import ServeCluster
from tests.support.local_up import TANDEMKV

LEADER_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("cli-coordination"), nodes=3) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield ",".join(cluster.endpoints)


def cli(endpoints: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TANDEMKV, *args[:1], *_rest(endpoints, args)], capture_output=True, text=True,
                          timeout=120)


def _rest(endpoints: str, args: tuple[str, ...]) -> list[str]:
    """Puts --endpoints after the subcommand words, before any `--`."""
    words = list(args[1:])
    cut = words.index("--") if "--" in words else len(words)
    return [*words[:cut], "--endpoints", endpoints, *words[cut:]]


def holder(endpoints: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*TANDEMKV, *args[:1], *_rest(endpoints, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_lease_grant_ttl_keepalive_and_revoke(endpoints):
    lease = cli(endpoints, "lease", "grant", "30").stdout.strip()
    assert 0 < float(cli(endpoints, "lease", "ttl", lease).stdout) <= 30
    assert cli(endpoints, "lease", "keepalive", lease, "--once").stdout.strip() == "30"
    assert cli(endpoints, "lease", "revoke", lease).stdout.strip() == "revoked"
    gone = cli(endpoints, "lease", "revoke", lease)
    assert gone.returncode == 1 and "not found" in gone.stdout
    assert cli(endpoints, "lease", "ttl", lease).returncode == 1


def test_a_registered_name_is_held_until_ctrl_c_and_then_released(endpoints):
    process = holder(endpoints, "registry", "register", "cli/svc", "10.0.0.1:80", "--ttl", "5")
    try:
        first = process.stdout.readline()
        assert first.startswith("registered cli/svc (token "), process.stderr.read()
        assert cli(endpoints, "registry", "whereis", "cli/svc").stdout.strip() == "10.0.0.1:80"
        taken = cli(endpoints, "registry", "register", "cli/svc", "other")
        assert taken.returncode == 1 and taken.stdout.startswith("taken by 10.0.0.1:80 (token ")
        listed = json.loads(cli(endpoints, "registry", "list", "cli/", "--output", "json").stdout)
        assert [c["name"] for c in listed["claims"]] == ["cli/svc"]
        assert cli(endpoints, "registry", "unregister", "cli/svc", "1").returncode == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
    assert cli(endpoints, "registry", "whereis", "cli/svc").returncode == 1


def test_lock_runs_the_command_with_the_token_and_exits_with_its_code(endpoints):
    result = cli(endpoints, "lock", "cli/lock", "--ttl", "5", "--", "sh", "-c",
                 'echo "token=$TANDEMKV_LOCK_TOKEN"; exit 7')
    assert result.returncode == 7, result.stderr
    assert int(result.stdout.strip().removeprefix("token=")) > 0
    assert cli(endpoints, "lock", "cli/lock").returncode == 2  # no command


def test_elect_leads_until_sigterm_then_resigns(endpoints):
    process = holder(endpoints, "elect", "cli/election", "node-a", "--ttl", "5")
    try:
        assert process.stdout.readline().startswith("elected in cli/election (token ")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
    again = holder(endpoints, "elect", "cli/election", "node-b", "--ttl", "5")
    try:
        assert again.stdout.readline().startswith("elected")  # the first one resigned
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(timeout=STOP_TIMEOUT_S)


def test_watch_prints_one_line_per_event_from_a_revision(endpoints):
    first = json.loads(cli(endpoints, "kv", "put", "cli/w/a", "1", "--output", "json").stdout)["revision"]
    cli(endpoints, "kv", "put", "cli/w/b", "2")
    cli(endpoints, "kv", "del", "cli/w/a")
    text = cli(endpoints, "watch", "cli/w/", "--prefix", "--from", str(first), "--count", "3")
    assert [line.split(" ", 1)[1] for line in text.stdout.splitlines()] == [
        "PUT cli/w/a = 1", "PUT cli/w/b = 2", "DELETE cli/w/a"]
    lines = cli(endpoints, "watch", "cli/w/b", "--from", str(first), "--count", "1", "--output", "json")
    assert json.loads(lines.stdout)["value"] == "2"


@pytest.mark.parametrize("args,named", [
    (("lease", "grant", "0.5"), "LEASE_TTL_MS_MIN"),
    (("registry", "whereis", ""), "KEY_SIZE_BYTES_MAX"),
    (("lock", "", "--", "true"), "KEY_SIZE_BYTES_MAX"),
])
def test_bad_input_exits_2_with_one_line(endpoints, args, named):
    result = cli(endpoints, *args)
    assert result.returncode == 2 and named in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
