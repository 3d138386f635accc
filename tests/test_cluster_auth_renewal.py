"""Tokens through the SDK against three `tandemkv serve` processes whose
token lifetime is shortened to TOKEN_TTL_MS: a client renews its token
before it expires (one authentication, no refusal), and once after the
server refuses it as expired, repeating the call; a token given as
`token=` is refused once expired.

Method: one cluster for the module (tests/support/auth_cluster.py, with
`limits={"AUTH_TOKEN_TTL_MS": ...}`); every wait polls a condition (the
client's renewal time, the server's refusal) under a deadline."""

from __future__ import annotations

import time

import pytest

from tandemkv import errors
from tandemkv.client import Client, Retry
from tests.support.auth_cluster import APP_PASSWORD, auth_cluster, counted

TOKEN_TTL_MS = 3_000
WAIT_S = 30.0
POLL_S = 0.1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = auth_cluster(tmp_path_factory.mktemp("auth-ttl"), limits={"AUTH_TOKEN_TTL_MS": TOKEN_TTL_MS})
    try:
        yield cluster
    finally:
        cluster.stop_all()


def test_a_token_is_renewed_before_it_expires(cluster):
    with Client(cluster.endpoints, user="app", password=APP_PASSWORD) as app:
        app.get("app/greeting")
        seen, keeper = counted(app), app._auth_session.keeper
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() * 1000 < keeper.renew_at_ms and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert app.get("app/greeting") == b"hello"
        assert len(seen) == 1 and keeper.token == seen[0]


def test_an_expired_token_is_renewed_once_and_the_call_repeated_and_a_given_token_is_refused(cluster):
    with Client(cluster.endpoints, user="app", password=APP_PASSWORD) as app:
        app.get("app/greeting")
        keeper = app._auth_session.keeper
        token = keeper.token  # the same token: the given client's refusal says the app's has expired too
        keeper.renew_at_ms = float("inf")  # no renewal before expiry: the server will refuse the token
        seen = counted(app)
        with Client(cluster.endpoints, token=token, retry=Retry(deadline_s=5)) as given:
            deadline, refused = time.monotonic() + WAIT_S, None
            while refused is None and time.monotonic() < deadline:
                try:
                    given.get("app/greeting")
                    time.sleep(POLL_S)
                except errors.Unauthenticated as error:
                    refused = error
        assert refused is not None and "expired" in refused.message
        keeper.expires_at_ms = None  # this client believes its token still works: only the server says no
        assert app.get("app/greeting") == b"hello"
        assert len(seen) == 1
