"""Auth from a cluster's first start: `serve --root-password-file`.

Method: the decision (`next_step`) as a table over auth stores; the file's
checks on real files; then real `serve` processes: a bad file exits 2 with
its message, and a 3-node cluster whose client addresses are 0.0.0.0-bound
(beyond loopback), each node given the same file, ends with auth enabled
once, root signing in on every node, an unauthenticated put refused, and
a restart with the file again changing nothing (auth revision unchanged).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tandemkv.client import NO_RETRY, Client
from tandemkv.errors import Unauthenticated, Unavailable
from tandemkv.server.process.auth_bootstrap import (ADD_ROOT, DONE, ENABLE, GRANT_ROOT, LEAVE_ALONE, next_step,
                                                    read_root_password)
from tandemkv.server.process.serve import EXIT_SETTINGS
from tandemkv.server.strong import auth
from tests.support.cluster import ServeCluster
from tests.support.ports import free_ports

PASSWORD = "correct horse battery staple"
START_WAIT_S = 120  # three Python nodes on a loaded machine start slowly
POLL_S = 0.1
SERVING_LINE = "serving clients on"


def _store(revision: int, users: dict | None = None, roles: dict | None = None, enabled: bool = False):
    return auth.AuthState(enabled=enabled, revision=revision, users=users or {}, roles=roles or {})


ROOT = auth.User(password_hash=b"h")
ROOT_WITH_ROLE = auth.User(password_hash=b"h", roles={"root"})


@pytest.mark.parametrize("state, matches, step", [
    (_store(0), True, ADD_ROOT),
    (_store(1, {"root": ROOT}), True, GRANT_ROOT),
    (_store(2, {"root": ROOT_WITH_ROLE}), True, ENABLE),
    (_store(3, {"root": ROOT_WITH_ROLE}, enabled=True), True, DONE),
    # root's password is not the file's: an operator's root, not ours
    (_store(1, {"root": ROOT}), False, LEAVE_ALONE),
    (_store(2, {"root": ROOT_WITH_ROLE}), False, LEAVE_ALONE),
    # enabled once, then disabled by an operator: the revision went past the bootstrap's
    (_store(4, {"root": ROOT_WITH_ROLE}), True, LEAVE_ALONE),
    # anything else made by hand
    (_store(1, {"app": ROOT}), True, LEAVE_ALONE),
    (_store(1, roles={"app": []}), True, LEAVE_ALONE),
    (_store(2, {"root": ROOT}, {"app": []}), True, LEAVE_ALONE),
    (_store(2, {"root": ROOT}), True, LEAVE_ALONE),
])
def test_the_bootstrap_acts_only_on_its_own_first_steps(state, matches, step):
    assert next_step(state, lambda: matches) == step


def _password_file(path: Path, text: str, mode: int = 0o400) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_password_is_the_first_line(tmp_path):
    assert read_root_password(_password_file(tmp_path / "pw", PASSWORD + "\nignored\n")) == PASSWORD


@pytest.mark.parametrize("text, mode, words", [
    ("", 0o400, "is empty"),
    ("\n\n", 0o600, "is empty"),
    (PASSWORD, 0o644, "readable by others (mode 0644)"),
    (PASSWORD, 0o604, "readable by others"),
])
def test_a_bad_file_is_refused_saying_what_to_fix(tmp_path, text, mode, words):
    with pytest.raises(ValueError, match=re.escape(words)) as raised:
        read_root_password(_password_file(tmp_path / "pw", text, mode))
    assert PASSWORD not in str(raised.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot read root_password_file"):
        read_root_password(tmp_path / "absent")


def test_group_read_is_refused_unless_root_owns_the_file(tmp_path):
    path = _password_file(tmp_path / "pw", PASSWORD, 0o440)
    if os.stat(path).st_uid == 0:  # a Kubernetes Secret mounted with fsGroup: root's, group-readable
        assert read_root_password(path) == PASSWORD
    else:
        with pytest.raises(ValueError, match="readable by its group"):
            read_root_password(path)


@pytest.mark.parametrize("text, mode, words", [("", 0o400, "is empty"), (PASSWORD, 0o644, "mode 0644")])
def test_serve_with_a_bad_file_exits_2(tmp_path, text, mode, words):
    raft_port, client_port = free_ports(2)
    path = _password_file(tmp_path / "pw", text, mode)
    process = subprocess.run(
        [sys.executable, "-m", "tandemkv.server.cli", "serve", "--name", "n1", "--data-dir", str(tmp_path / "n1"),
         "--raft-address", f"127.0.0.1:{raft_port}", "--client-address", f"0.0.0.0:{client_port}",
         "--root-password-file", str(path)], capture_output=True, text=True, timeout=START_WAIT_S)
    assert process.returncode == EXIT_SETTINGS
    assert "root_password_file" in process.stderr and words in process.stderr
    assert "Traceback" not in process.stderr


def _open_cluster(tmp_path: Path) -> ServeCluster:
    """Three nodes whose own client addresses are 0.0.0.0-bound, each given the file."""
    cluster = ServeCluster(tmp_path)
    secret = _password_file(tmp_path / "root-password", PASSWORD + "\n")
    for member in cluster.members:
        path = cluster.config_path(member.name)
        port = member.client_address.rpartition(":")[2]
        text = path.read_text().replace(f'client_address = "{member.client_address}"',
                                        f'client_address = "0.0.0.0:{port}"', 1)
        path.write_text(f'root_password_file = "{secret}"\n' + text)
    return cluster


def _wait_serving(cluster: ServeCluster, runs: int) -> None:
    """Every node's log says it serves clients, the `runs`-th time."""
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        logs = {m.name: cluster.log_path(m.name).read_text() for m in cluster.members}
        assert not any(p.poll() is not None for p in cluster.processes.values()), logs
        if all(log.count(SERVING_LINE) >= runs for log in logs.values()):
            return
        time.sleep(POLL_S)
    raise AssertionError(f"not every node served within {START_WAIT_S} s; logs in {cluster.root}")


def _revisions(cluster: ServeCluster) -> dict[str, tuple[bool, int]]:
    answers = {}
    for member in cluster.members:
        with Client([member.client_address], user="root", password=PASSWORD, retry=NO_RETRY) as client:
            status = client.auth.status()
            answers[member.name] = (status.enabled, status.auth_revision)
            assert status.caller == "root"
    return answers


def test_a_cluster_beyond_loopback_enables_auth_from_the_file_once(tmp_path):
    cluster = _open_cluster(tmp_path)
    with cluster:
        _wait_serving(cluster, runs=1)
        cluster.wait_for_leader(timeout_s=START_WAIT_S)
        # root signs in on every node with the file's password; the store was changed three times, once each
        assert _revisions(cluster) == {m.name: (True, 3) for m in cluster.members}
        with Client(cluster.endpoints, user="root", password=PASSWORD) as root:
            root.put("greeting", "hello")
            assert root.get("greeting") == b"hello"
        with Client(cluster.endpoints, retry=NO_RETRY) as anonymous:
            with pytest.raises(Unauthenticated):
                anonymous.put("greeting", "anyone")
        logs = "".join(cluster.log_path(m.name).read_text() for m in cluster.members)
        assert PASSWORD not in logs
        assert logs.count("auth bootstrap: enabled auth") == 1
        cluster.stop_all()
        for member in cluster.members:
            cluster.restart(member.name)
        _wait_serving(cluster, runs=2)
        cluster.wait_for_leader(timeout_s=START_WAIT_S)
        assert _revisions(cluster) == {m.name: (True, 3) for m in cluster.members}


def _wait_for(condition, what: str):
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        answer = condition()
        if answer:
            return answer
        time.sleep(POLL_S)
    raise AssertionError(f"{what} within {START_WAIT_S} s")


def _auth_enabled(endpoint: str) -> bool:
    with Client([endpoint], retry=NO_RETRY) as client:
        try:
            return client.auth.status().enabled
        except Unavailable:
            return False


def test_on_loopback_it_bootstraps_beside_clients_and_leaves_a_disabled_store_alone(tmp_path):
    """On loopback the node serves at once and the bootstrap runs beside it; once an operator
    disabled auth, the file no longer opens the node beyond loopback: it exits 2 saying why."""
    cluster = ServeCluster(tmp_path, nodes=1)
    secret = _password_file(tmp_path / "root-password", PASSWORD)
    config = cluster.config_path("n1")
    config.write_text(f'root_password_file = "{secret}"\n' + config.read_text())
    endpoint = cluster.endpoint("n1")
    with cluster:
        _wait_serving(cluster, runs=1)
        _wait_for(lambda: _auth_enabled(endpoint), "auth was not enabled")
        with Client([endpoint], user="root", password=PASSWORD) as root:
            assert root.auth.disable() == 4
        assert cluster.stop_node("n1") == 0
    port = endpoint.rpartition(":")[2]
    config.write_text(config.read_text().replace(f'client_address = "{endpoint}"',
                                                 f'client_address = "0.0.0.0:{port}"', 1))
    process = subprocess.run([sys.executable, "-m", "tandemkv.server.cli", "serve", "--config", str(config)],
                             capture_output=True, text=True, timeout=START_WAIT_S)
    assert process.returncode == EXIT_SETTINGS, process.stderr
    assert "changed by hand (auth revision 4)" in process.stderr and "Traceback" not in process.stderr
    assert PASSWORD not in process.stderr + process.stdout


def test_until_auth_is_on_the_client_port_stays_closed_and_readyz_says_why(tmp_path):
    """One member of three alone has no quorum, so no leader enables auth: it waits, saying so."""
    cluster = _open_cluster(tmp_path)
    (http_port,) = free_ports(1)
    config = cluster.config_path("n1")
    config.write_text(f'http_address = "127.0.0.1:{http_port}"\n' + config.read_text())
    try:
        cluster.restart("n1")

        def readyz() -> str | None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=START_WAIT_S)
                return "200"
            except urllib.error.HTTPError as error:
                return error.read().decode()
            except urllib.error.URLError:
                return None  # not listening yet

        answer = _wait_for(readyz, "/readyz did not answer")
        assert answer.startswith("not ready: auth bootstrap:") and "root_password_file" in answer
        _wait_for(lambda: "waits for auth to be enabled" in cluster.log_path("n1").read_text(),
                  "the node did not say it waits for auth")
        with Client([cluster.endpoint("n1")], retry=NO_RETRY) as client:
            with pytest.raises(Unavailable):
                client.auth.status()
    finally:
        cluster.stop_all()
    assert SERVING_LINE not in cluster.log_path("n1").read_text()
