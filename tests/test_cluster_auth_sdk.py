"""Auth through the SDK and the CLI against three `tandemkv serve`
processes: the first admin bootstrapped and auth enabled; a reader's user
gets and is refused puts with PERMISSION_DENIED naming the permission, on
plain calls, pipelined batches, streams and the async client; a password
changed under a client; the CLI's user, role and auth commands with their
exit codes. Token renewal: tests/test_cluster_auth_renewal.py.

Method: one cluster for the module (tests/support/auth_cluster.py);
authentications are counted by wrapping a client session's
`_authenticate`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from tandemkv import errors
from tandemkv.client import AsyncClient, Client, Retry
from tests.support.auth_cluster import APP_PASSWORD, ROOT_PASSWORD, auth_cluster, counted

WAIT_S = 30.0
THREADS_WAIT_S = 120.0  # 160 gets under a loaded machine
LOADED_DEADLINE_S = 60.0  # a call's retry deadline on a loaded machine
AUTH_ENV = ("TANDEMKV_USER", "TANDEMKV_PASSWORD", "TANDEMKV_TOKEN", "TANDEMKV_ENDPOINTS")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = auth_cluster(tmp_path_factory.mktemp("auth"))
    try:
        yield cluster
    finally:
        cluster.stop_all()


def test_auth_is_enabled_and_a_client_without_credentials_is_unauthenticated(cluster):
    with Client(cluster.endpoints, user="root", password=ROOT_PASSWORD) as root:
        status = root.auth.status()
        assert status.enabled and status.caller == "root"
        assert [u.user for u in root.auth.user_list()[0]] == ["app", "root"]
    with Client(cluster.endpoints, retry=Retry(deadline_s=5)) as anonymous:
        with pytest.raises(errors.Unauthenticated, match="authorization"):
            anonymous.get("app/greeting")


def test_a_readers_user_gets_and_is_refused_a_put_naming_the_permission(cluster):
    with Client(cluster.endpoints, user="app", password=APP_PASSWORD) as app:
        assert app.get("app/greeting") == b"hello"
        with pytest.raises(errors.PermissionDenied, match=r"user 'app' lacks write on key prefix b'app/x'"):
            app.put("app/x", "no")
        with pytest.raises(errors.PermissionDenied, match="read"):
            app.get("other/key")
    with pytest.raises(errors.Unauthenticated):
        with Client(cluster.endpoints, user="app", password="wrong") as wrong:
            wrong.get("app/greeting")


def test_pipelined_calls_from_many_threads_carry_the_token(cluster):
    with Client(cluster.endpoints, user="app", password=APP_PASSWORD) as app:
        seen = counted(app)
        results: list[list] = [[] for _ in range(8)]

        def reader(mine: list) -> None:
            for _ in range(20):
                try:
                    mine.append(app.get("app/greeting"))
                except errors.TandemKVError as error:
                    mine.append(error)
        threads = [threading.Thread(target=reader, args=(mine,)) for mine in results]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + THREADS_WAIT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in threads), "readers still running"
        assert results == [[b"hello"] * 20] * 8
        assert len(seen) == 1, "one authentication for every thread"


def test_a_watch_stream_carries_the_token_and_each_watch_is_checked_against_its_keys(cluster):
    # Watch.Watches (the SDK's multiplexed stream) is opened by any signed-in
    # user; each watch on it needs read on its keys, as Watch.Watch does.
    with Client(cluster.endpoints, user="root", password=ROOT_PASSWORD) as root, \
            Client(cluster.endpoints, user="root", password=ROOT_PASSWORD) as watching:
        with watching.watch("app/", prefix=True) as events:  # the first call of this client: a stream
            root.put("app/watched", "1")
            event = next(iter(events))
        assert (event.key, event.value) == (b"app/watched", b"1")
        with Client(cluster.endpoints, user="app", password=APP_PASSWORD) as app:
            with app.watch("app/", prefix=True) as events:
                root.put("app/watched", "2")
                event = next(iter(events))
            assert (event.key, event.value) == (b"app/watched", b"2")
            with pytest.raises(errors.PermissionDenied, match="user 'app' lacks read on key"):
                with app.watch("other/", prefix=True) as events:
                    next(iter(events))


def test_a_password_changed_elsewhere_ends_the_token_and_ones_own_change_keeps_working(cluster):
    with Client(cluster.endpoints, user="root", password=ROOT_PASSWORD) as root:
        root.auth.user_add("rotating", "first")
        root.auth.user_grant_role("rotating", "reader")
        root.auth.user_add("admin2", "one")
        root.auth.user_grant_role("admin2", "root")
        try:
            with Client(cluster.endpoints, user="rotating", password="first") as client:
                assert client.get("app/greeting") == b"hello"
                root.auth.user_change_password("rotating", "second")
                # Its token ended; authenticating again with the old password fails once, no loop.
                with pytest.raises(errors.Unauthenticated):
                    client.get("app/greeting")
            with Client(cluster.endpoints, user="admin2", password="one") as admin2:
                seen = counted(admin2)
                admin2.auth.user_change_password("admin2", "two")
                assert admin2.get("app/greeting") == b"hello" and len(seen) == 2
        finally:
            root.auth.user_delete("rotating")
            root.auth.user_delete("admin2")


def test_the_async_client_authenticates_streams_and_calls(cluster):
    async def scenario():
        patient = Retry(deadline_s=LOADED_DEADLINE_S)
        async with AsyncClient(cluster.endpoints, user="app", password=APP_PASSWORD, retry=patient) as app, \
                AsyncClient(cluster.endpoints, user="root", password=ROOT_PASSWORD) as root, \
                AsyncClient(cluster.endpoints, user="root", password=ROOT_PASSWORD) as watching:
            # Refused puts in the same pipelined batches as gets: each caller gets its own answer.
            answers = await asyncio.gather(*(app.get("app/greeting") if n != 20 else app.put("app/async", "no")
                                             for n in range(40)), return_exceptions=True)
            gets = [answer for n, answer in enumerate(answers) if n != 20]
            refusals = [answers[20]]
            assert all(isinstance(refusal, errors.PermissionDenied) for refusal in refusals), refusals
            denied = refusals[0]
            written = await root.put("app/async", "yes")
            # The first call of `watching` is a stream (Watch.Watches).
            watcher = watching.watch("app/async", start_revision=written.revision)
            event = await asyncio.wait_for(watcher.__aiter__().__anext__(), WAIT_S)
            watcher.close()
            return gets, denied, event
    gets, denied, event = asyncio.run(scenario())
    assert gets == [b"hello"] * 39
    assert denied is not None and "lacks write on key" in denied.message
    assert event.value == b"yes"


def cli(cluster, *words: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in AUTH_ENV}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "tandemkv.server.cli", "--endpoints", ",".join(cluster.endpoints),
                           "--timeout", "30", *words], input=stdin, capture_output=True, text=True,
                          env=environ, timeout=120)


def test_the_cli_manages_users_and_roles_with_exit_codes(cluster):
    root = ("--user", "root", "--password", ROOT_PASSWORD)
    done = cli(cluster, "role", "add", "writer", *root)
    assert done.returncode == 0, done.stderr
    done = cli(cluster, "role", "grant", "writer", "write", "key", "w/", *root)
    assert done.returncode == 0, done.stderr
    done = cli(cluster, "user", "add", "cli-user", *root, stdin="cli-pass\n")
    assert done.returncode == 0 and "user cli-user added" in done.stdout, done.stderr
    done = cli(cluster, "user", "grant-role", "cli-user", "writer", *root)
    assert done.returncode == 0, done.stderr
    listed = cli(cluster, "role", "list", "--output", "json", *root)
    assert {"mode": "write", "kind": "key", "prefix": "w/"} in next(
        r["permissions"] for r in __import__("json").loads(listed.stdout)["roles"] if r["role"] == "writer")
    # The password asked for on stdin (not a terminal), then the environment.
    done = cli(cluster, "kv", "put", "w/k", "v", "--user", "cli-user", stdin="cli-pass\n")
    assert done.returncode == 0, done.stderr
    done = cli(cluster, "kv", "get", "w/k", TANDEMKV_USER="cli-user", TANDEMKV_PASSWORD="cli-pass")
    assert (done.returncode, done.stdout.strip()) == (0, "v")
    denied = cli(cluster, "kv", "put", "app/k", "v", TANDEMKV_USER="cli-user", TANDEMKV_PASSWORD="cli-pass")
    assert denied.returncode == 6 and "PermissionDenied: user 'cli-user' lacks write" in denied.stderr
    assert "Traceback" not in denied.stderr
    anonymous = cli(cluster, "kv", "get", "w/k")
    assert anonymous.returncode == 6 and "--user NAME" in anonymous.stderr
    wrong = cli(cluster, "kv", "get", "w/k", "--user", "cli-user", "--password", "nope")
    assert wrong.returncode == 6 and "Unauthenticated" in wrong.stderr
    token = cli(cluster, "auth", "token", "--user", "cli-user", "--password", "cli-pass").stdout.strip()
    status = cli(cluster, "auth", "status", "--token", token)
    assert status.returncode == 0 and "enabled" in status.stdout and "you: cli-user" in status.stdout
    refused = cli(cluster, "user", "delete", "app", "--token", token)
    assert refused.returncode == 6 and "root" in refused.stderr
    assert cli(cluster, "user", "delete", "cli-user", *root).returncode == 0
    assert cli(cluster, "user", "delete", "cli-user", *root).returncode == 5
    usage = cli(cluster, "kv", "get", "w/k", "--token", token, "--user", "root")
    assert usage.returncode == 2 and "not both" in usage.stderr
