"""`tandemkv lease|registry|lock|elect|watch` through subprocesses against a
real cluster: output, exit codes, and holds that end cleanly on Ctrl-C or
SIGTERM (releasing what they held).

Every holder is started the way a background job of a non-interactive
shell is (`cmd &` in a script, a test suite run in the background): with
SIGINT ignored, which the holders used to inherit and then outlive every
Ctrl-C. The stop test also runs under CPU load (two busy processes), where
the full suite first failed; TANDEMKV_HOLDER_ROUNDS=20 repeats it 20 times
per holder and signal (the default keeps the suite fast).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tandemkv.client import Client
from tandemkv.client import _coordination_ops as cops
from tests.support.cluster import ServeCluster
from tests.support.local_up import TANDEMKV

LEADER_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HOLDER_ROUNDS = int(os.environ.get("TANDEMKV_HOLDER_ROUNDS", "2"))
HOLDER_TTL_S = "2"
# A granted lease must outlive its holder's start under load.
KEPT_LEASE_TTL_S = 10.0
BUSY_PROCESSES = 2
# Starts the rest of argv with SIGINT ignored, as `cmd &` in a script does.
AS_BACKGROUND_JOB = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                     "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]


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
    """A holding command started as a background job (SIGINT ignored)."""
    return subprocess.Popen([*AS_BACKGROUND_JOB, *TANDEMKV[1:], *args[:1], *_rest(endpoints, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cpu_load():
    """Two processes spinning on the CPU for the test's duration."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_PROCESSES)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def test_lease_grant_ttl_keepalive_and_revoke(endpoints):
    lease = cli(endpoints, "lease", "grant", "30").stdout.strip()
    assert 0 < float(cli(endpoints, "lease", "ttl", lease).stdout) <= 30
    assert cli(endpoints, "lease", "keepalive", lease, "--once").stdout.strip() == "30"
    assert cli(endpoints, "lease", "revoke", lease).stdout.strip() == "revoked"
    gone = cli(endpoints, "lease", "revoke", lease)
    assert gone.returncode == 1 and gone.stdout == "" and "not found" in gone.stderr
    assert cli(endpoints, "lease", "ttl", lease).returncode == 1


def test_a_registered_name_is_held_until_ctrl_c_and_then_released(endpoints):
    process = holder(endpoints, "registry", "register", "cli/svc", "10.0.0.1:80", "--ttl", "5")
    try:
        first = process.stdout.readline()
        assert first.startswith("registered cli/svc (token "), process.stderr.read()
        assert cli(endpoints, "registry", "whereis", "cli/svc").stdout.strip() == "10.0.0.1:80"
        taken = cli(endpoints, "registry", "register", "cli/svc", "other")
        assert taken.returncode == 1 and taken.stderr.startswith("tandemkv: taken by 10.0.0.1:80 (token ")
        assert taken.stdout == ""
        listed = json.loads(cli(endpoints, "registry", "list", "cli/", "--output", "json").stdout)
        assert [c["name"] for c in listed["claims"]] == ["cli/svc"]
        assert cli(endpoints, "registry", "unregister", "cli/svc", "1").returncode == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
    assert cli(endpoints, "registry", "whereis", "cli/svc").returncode == 1


# Holders started at once (each with its own name), then signalled.
HOLDERS_AT_ONCE_MAX = 10
LOCKED_COMMAND = ("sh", "-c", "echo locked; exec sleep 600")


def _start_holder(endpoints: str, kind: str, name: str) -> subprocess.Popen:
    ttl = ("--ttl", HOLDER_TTL_S)
    if kind == "lease keepalive":
        return holder(endpoints, "lease", "keepalive", name)
    if kind == "registry register":
        return holder(endpoints, "registry", "register", name, "addr", *ttl)
    if kind == "elect":
        return holder(endpoints, "elect", name, "addr", *ttl)
    return holder(endpoints, "lock", name, *ttl, "--", *LOCKED_COMMAND)


def _released(kind: str, name: str, client: Client) -> bool:
    if kind == "lease keepalive":  # no longer renewed: it expires within its TTL
        deadline = time.monotonic() + 3 * KEPT_LEASE_TTL_S
        while client.run(cops.lease_ttl(int(name))) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True
    if kind == "registry register":
        return client.registry.whereis(name) is None
    if kind == "elect":
        return client.election(name).leader() is None
    with client.lock(name, ttl=float(HOLDER_TTL_S), wait=0):
        return True


@pytest.mark.parametrize("kind", ["lease keepalive", "registry register", "elect", "lock"])
def test_every_holder_stops_on_sigint_and_sigterm_under_cpu_load_and_lets_go(endpoints, cpu_load, kind):
    with Client(endpoints.split(",")) as client:
        rounds = [(signum, n) for signum in (signal.SIGINT, signal.SIGTERM) for n in range(HOLDER_ROUNDS)]
        for first in range(0, len(rounds), HOLDERS_AT_ONCE_MAX):
            batch = rounds[first:first + HOLDERS_AT_ONCE_MAX]
            names = [str(client.lease(KEPT_LEASE_TTL_S).id) if kind == "lease keepalive"
                     else f"cli/stop/{kind}/{signum.name}/{n}" for signum, n in batch]
            processes = [_start_holder(endpoints, kind, name) for name in names]
            try:
                for process, name in zip(processes, names):
                    line = process.stdout.readline()
                    assert line.split()[:1] in (["lease"], ["registered"], ["elected"], ["locked"]), \
                        f"{kind} {name}: {line!r} {process.stderr.read() if not line else ''}"
                for process, (signum, _) in zip(processes, batch):
                    process.send_signal(signum)
                for process, (signum, _) in zip(processes, batch):
                    code = process.wait(timeout=STOP_TIMEOUT_S)
                    expected = 128 + signum if kind == "lock" else 0  # lock: its command's code
                    assert code == expected, f"{kind} after {signum.name}: exit {code}: {process.stderr.read()}"
            finally:
                for process in processes:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT_S)
            assert all(_released(kind, name, client) for name in names), f"{kind}: something is still held"


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


def test_lease_list_shows_the_leases_that_exist_through_cli_and_sdk(endpoints):
    with Client(endpoints) as client:
        lease = client.lease(KEPT_LEASE_TTL_S)
        try:
            assert lease.id in [info.id for info in client.leases()]
            listed = cli(endpoints, "lease", "list", "--output", "json")
            assert listed.returncode == 0, listed.stderr
            found = {entry["id"]: entry for entry in json.loads(listed.stdout)["leases"]}
            assert found[lease.id]["granted_ttl_s"] == KEPT_LEASE_TTL_S
            assert 0 < found[lease.id]["remaining_s"] <= KEPT_LEASE_TTL_S
            text = cli(endpoints, "lease", "list")
            assert f"{lease.id} ttl {KEPT_LEASE_TTL_S:g} remaining" in text.stdout
        finally:
            lease.revoke()
        assert lease.id not in [info.id for info in client.leases()]
