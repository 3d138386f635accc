"""`tandemkv up --tls` end to end: three `tandemkv serve` processes that
require client certificates signed by the cluster's local CA. The SDK and
the CLI in the cluster's directory find their TLS in cluster.json; a
client elsewhere passes what `up` printed; a plaintext client is told the
nodes speak TLS. Pub/sub messages and presence entries still cross nodes:
the members' own channels (relay streams, presence exchanges) speak mTLS
too, or the nodes would refuse them.

Method: one `up --tls` for the module in a temporary directory on free
ports; every wait polls under a deadline; a subscriber reads in a thread
with a bounded count."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tandemkv import errors
from tandemkv.client import Client, Message, Retry, TLSConfig
from tandemkv.server.security import dev_certs
from tests.support.local_up import UpProcess, free_base_port, tandemkv

NODES = 3
DELIVERY_TIMEOUT_S = 60.0
POLL_S = 0.1
MESSAGES = 50
TLS_ENV = ("TANDEMKV_CA", "TANDEMKV_CERT", "TANDEMKV_KEY", "TANDEMKV_ENDPOINTS")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls-up")
    with UpProcess(directory, "--tls", "--nodes", str(NODES), "--base-port", str(free_base_port(NODES))) as process:
        document = process.wait_ready()
        yield directory, document, process.output.read_text()


@pytest.fixture(scope="module")
def tls(up):
    _, document, _ = up
    return TLSConfig(**document["tls"])


def endpoints(document) -> list[str]:
    return [node["client_address"] for node in document["nodes"]]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any TLS or endpoints of the caller's."""
    return {**{k: v for k, v in os.environ.items() if k not in TLS_ENV}, **extra}


def test_up_prints_the_client_flags_and_the_cli_in_its_directory_needs_none(up):
    directory, document, output = up
    files = document["tls"]
    assert f"--ca {files['ca']} --cert {files['cert']} --key {files['key']}" in output
    assert f"export TANDEMKV_CA={files['ca']}" in output
    put = tandemkv(directory, "kv", "put", "greeting", "hello", env=clean_env())
    assert put.returncode == 0, put.stderr
    elsewhere = directory / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    flags = ["--ca", files["ca"], "--cert", files["cert"], "--key", files["key"]]
    got = tandemkv(elsewhere, "--endpoints", ",".join(endpoints(document)), "kv", "get", "greeting", *flags,
                   env=clean_env())
    assert (got.returncode, got.stdout) == (0, "hello\n"), got.stderr
    plain = tandemkv(elsewhere, "kv", "get", "greeting", "--timeout", "2",
                     env=clean_env(TANDEMKV_ENDPOINTS=",".join(endpoints(document))))
    assert plain.returncode == 3 and "the node speaks TLS? pass --ca" in plain.stderr


def test_nodes_log_that_they_serve_tls_with_client_certificates(up):
    directory, document, _ = up
    for node in document["nodes"]:
        log = (directory / "tandemkv-data" / f"{node['name']}.log").read_text()
        assert "TLS with client certificates required" in log


class Reader:
    def __init__(self, subscription, count: int):
        self.subscription, self.count = subscription, count
        self.messages: list[Message] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.subscription:
                if isinstance(event, Message):
                    self.messages.append(event)
                    if len(self.messages) >= self.count:
                        return
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def wait(self) -> list[Message]:
        self._thread.join(DELIVERY_TIMEOUT_S)
        self.subscription.close()
        self._thread.join(DELIVERY_TIMEOUT_S)
        assert self.error is None, self.error
        return self.messages


def test_pubsub_messages_cross_nodes_over_the_members_mtls_streams(up, tls):
    _, document, _ = up
    first, second, third = endpoints(document)
    with Client(first, tls=tls) as on_first, Client(second, tls=tls) as on_second, \
            Client(third, tls=tls) as on_third:
        reader = Reader(on_first.pubsub.subscribe("room"), 2 * MESSAGES)
        for k in range(MESSAGES):
            on_second.pubsub.publish("room", f"from-second-{k}")
            on_third.pubsub.publish("room", f"from-third-{k}")
        payloads = [m.payload for m in reader.wait()]
    for origin in ("second", "third"):
        mine = [p for p in payloads if p.startswith(f"from-{origin}-".encode())]
        assert mine == [f"from-{origin}-{k}".encode() for k in range(MESSAGES)], payloads


def test_presence_entries_cross_nodes_over_the_members_mtls_exchanges(up, tls):
    _, document, _ = up
    first, second, third = endpoints(document)
    with Client(first, tls=tls) as on_first, Client(second, tls=tls) as on_second, \
            Client(third, tls=tls) as on_third:
        on_first.presence.track("lobby", "alice", {"seat": 1})
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S
        seen: dict[str, set] = {}
        while time.monotonic() < deadline:
            seen = {name: set(client.presence.list("lobby")) for name, client in
                    (("second", on_second), ("third", on_third))}
            if all(b"alice" in keys for keys in seen.values()):
                break
            time.sleep(POLL_S)
        assert all(b"alice" in keys for keys in seen.values()), seen


def test_a_client_whose_certificate_another_ca_signed_is_refused_by_the_cluster(up, tls, tmp_path):
    _, document, _ = up
    rogue_ca = dev_certs.make_ca("not the cluster's CA")
    dev_certs.issue(rogue_ca, "intruder", server=False).write(tmp_path / "intruder.pem", tmp_path / "intruder.key")
    with Client(endpoints(document), tls=TLSConfig(ca=tls.ca, cert=tmp_path / "intruder.pem",
                                                    key=tmp_path / "intruder.key"),
                retry=Retry(deadline_s=2.0, attempt_timeout_s=1.0)) as client:
        with pytest.raises(errors.Unavailable, match="pass --cert and --key"):
            client.get("greeting")
