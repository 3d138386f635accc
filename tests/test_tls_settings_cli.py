"""Where TLS settings come from and what the commands do with them: serve's
tls_* settings from flags, `TANDEMKV_TLS_*` and TOML (paths relative to the
file; `--tls-client-auth` alone means yes) and the errors that name what to
fix; serve exits 2 with one line on files that do not belong together; the
CLI speaks TLS with --ca/--cert/--key and with TANDEMKV_CA/_CERT/_KEY, and
without them is told the node speaks TLS; the SDK's default TLS comes from
the environment, else from `tandemkv up --tls`'s cluster.json.

Method: the settings parser in process; `tandemkv` subprocesses against a
gRPC server over a fake node in this process, speaking mTLS."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tandemkv.client import TLSConfig
from tandemkv.client._tls import resolve_tls
from tandemkv.server.process import settings
from tandemkv.server.security.server_tls import ReloadingCredentials, ServerTLS, from_settings
from tests.support.tls_files import make_pki, tls_server

TANDEMKV = [sys.executable, "-m", "tandemkv.server.cli"]
CLI_TIMEOUT_S = 120.0
TLS_ENV = ("TANDEMKV_CA", "TANDEMKV_CERT", "TANDEMKV_KEY", "TANDEMKV_TLS_SERVER_NAME", "TANDEMKV_ENDPOINTS")


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


def gathered(argv: list[str], environ: dict[str, str]) -> dict:
    parser = argparse.ArgumentParser()
    settings.add_flags(parser)
    return settings.gather(parser.parse_args(argv), environ)


def test_tls_settings_come_from_flags_environment_and_toml_relative_to_the_file(tmp_path):
    values = gathered(["--tls-cert", "n1.pem", "--tls-key", "n1.key", "--tls-client-auth"],
                      {"TANDEMKV_TLS_CA": "ca.pem"})
    assert from_settings(values) == ServerTLS(cert=Path("n1.pem"), key=Path("n1.key"), ca=Path("ca.pem"),
                                              client_auth=True)
    assert gathered(["--tls-client-auth", "false"], {})["tls_client_auth"] is False
    config = tmp_path / "n1.toml"
    config.write_text('tls_cert = "tls/n1.pem"\ntls_key = "tls/n1.key"\ntls_ca = "tls/ca.pem"\n'
                      'tls_client_auth = true\n')
    tls = from_settings(gathered(["--config", str(config)], {}))
    assert tls == ServerTLS(cert=tmp_path / "tls/n1.pem", key=tmp_path / "tls/n1.key", ca=tmp_path / "tls/ca.pem",
                            client_auth=True)
    assert from_settings(gathered([], {})) is None


@pytest.mark.parametrize("argv, words", [
    (["--tls-cert", "a.pem"], "set tls_key (--tls-key / TANDEMKV_TLS_KEY)"),
    (["--tls-key", "a.key"], "set tls_cert (--tls-cert / TANDEMKV_TLS_CERT)"),
    (["--tls-ca", "ca.pem"], "need TLS on the client port: set tls_cert and tls_key"),
    (["--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-client-auth"], "tls_client_auth needs tls_ca"),
])
def test_incomplete_tls_settings_name_the_setting_to_add(argv, words):
    with pytest.raises(ValueError) as refused:
        from_settings(gathered(argv, {}))
    assert words in str(refused.value)


def test_a_yes_no_setting_refuses_other_words():
    with pytest.raises(ValueError, match="tls_client_auth .*must be true or false, got 'maybe'"):
        gathered([], {"TANDEMKV_TLS_CLIENT_AUTH": "maybe"})


def test_serve_exits_2_with_one_line_when_the_key_is_not_the_certificates(pki, tmp_path):
    result = subprocess.run(
        [*TANDEMKV, "serve", "--name", "n1", "--data-dir", str(tmp_path / "n1"), "--raft-address", "127.0.0.1:1",
         "--client-address", "127.0.0.1:0", "--tls-cert", str(pki.path("node.pem")),
         "--tls-key", str(pki.path("rogue.key"))],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not the key of the certificate" in lines[0], result.stderr


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in TLS_ENV}
    return subprocess.run([*TANDEMKV, *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                          env={**base, **(env or {})})


def test_the_cli_speaks_mtls_with_flags_or_environment_and_without_is_told_to_pass_the_ca(pki):
    with tls_server(ReloadingCredentials(pki.server_tls(client_auth=True))) as address:
        flags = ["--ca", str(pki.path("ca.pem")), "--cert", str(pki.path("client.pem")),
                 "--key", str(pki.path("client.key"))]
        put = cli("--endpoints", address, "kv", "put", "greeting", "hello", *flags)
        assert put.returncode == 0, put.stderr
        env = {"TANDEMKV_CA": str(pki.path("ca.pem")), "TANDEMKV_CERT": str(pki.path("client.pem")),
               "TANDEMKV_KEY": str(pki.path("client.key"))}
        got = cli("--endpoints", address, "kv", "get", "greeting", env=env)
        assert (got.returncode, got.stdout) == (0, "hello\n"), got.stderr
        # A flag beats its variable: the wrong CA from the environment, the right one as a flag.
        mixed = cli("--endpoints", address, "kv", "get", "greeting", "--ca", str(pki.path("ca.pem")),
                    env={**env, "TANDEMKV_CA": str(pki.path("rogue-ca.pem"))})
        assert (mixed.returncode, mixed.stdout) == (0, "hello\n"), mixed.stderr
        plain = cli("--endpoints", address, "kv", "get", "greeting", "--timeout", "2")
        assert plain.returncode == 3
        assert "the node speaks TLS? pass --ca" in plain.stderr
        half = cli("--endpoints", address, "kv", "get", "greeting", "--cert", str(pki.path("client.pem")))
        assert half.returncode == 2 and "needs its key" in half.stderr


def test_the_sdks_default_tls_is_the_environment_then_the_cluster_file_of_tandemkv_up(pki, tmp_path, monkeypatch):
    for name in TLS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tls(None, None) is None
    (tmp_path / "tandemkv-data").mkdir()
    files = {"ca": str(pki.path("ca.pem")), "cert": str(pki.path("client.pem")), "key": str(pki.path("client.key"))}
    (tmp_path / "tandemkv-data" / "cluster.json").write_text(json.dumps({"nodes": [], "tls": files}))
    assert resolve_tls(None, None) == TLSConfig(**files)
    # Endpoints given (or from TANDEMKV_ENDPOINTS) are not the file's cluster: its TLS does not apply.
    assert resolve_tls(None, ["127.0.0.1:1"]) is None
    monkeypatch.setenv("TANDEMKV_CA", "other-ca.pem")
    assert resolve_tls(None, None) == TLSConfig(ca="other-ca.pem")
    assert resolve_tls(False, None) is None
