"""A cluster with auth enabled, for the SDK's and the CLI's auth tests:
user "root" (root role), role "reader" (read on keys under "app/"), user
"app" (reader), the key app/greeting = hello, auth enabled."""

from __future__ import annotations

from pathlib import Path

from tandemkv.client import Client
from tests.support.cluster import ServeCluster

ROOT_PASSWORD, APP_PASSWORD = "root-secret", "app-secret"
LEADER_WAIT_S = 120  # a loaded machine starts three Python nodes slowly


def bootstrap(endpoints: list[str]) -> None:
    with Client(endpoints) as admin:  # auth is off: anyone may bootstrap the first admin
        admin.auth.user_add("root", ROOT_PASSWORD)
        admin.auth.user_grant_role("root", "root")
        admin.auth.role_add("reader")
        admin.auth.role_grant_permission("reader", "read", "key", "app/")
        admin.auth.user_add("app", APP_PASSWORD)
        admin.auth.user_grant_role("app", "reader")
        admin.put("app/greeting", "hello")
        admin.auth.enable()


def auth_cluster(root: Path, limits: dict[str, int] | None = None) -> ServeCluster:
    """Started and bootstrapped; the caller leaves its `with`."""
    cluster = ServeCluster(root, nodes=3, limits=limits).__enter__()
    try:
        cluster.wait_for_leader(timeout_s=LEADER_WAIT_S)
        bootstrap(cluster.endpoints)
    except BaseException:
        cluster.__exit__(None, None, None)
        raise
    return cluster


def counted(client) -> list[str]:
    """The tokens of the authentications `client` makes from now on."""
    session, seen = client._auth_session, []
    authenticate = session._authenticate

    def wrapped(operation):
        response = authenticate(operation)
        seen.append(response.token)
        return response
    session._authenticate = wrapped
    return seen
