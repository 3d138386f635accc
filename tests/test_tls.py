"""TLS and mTLS on the client port, and certificate reload: a client with
the CA is served; a client without it, or with another CA, is refused and
told to pass the CA; a plaintext client to a TLS node, and a TLS client to
a plaintext node, each get a message naming the mismatch; under mTLS a
client without a certificate, or with one another CA signed, is refused; a
renewed certificate on disk is what the next connection is served (and a
half-renewed pair is not); member channels speak TLS when the node does.

Method: a real gRPC server on 127.0.0.1 over `FakeNode`, bound with the
node's reloading credentials; the SDK (sync and asyncio) as the client;
the served certificate read by a raw `ssl` connection. Reload runs on an
injected clock, so no test waits for the check interval."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tandemkv import errors
from tandemkv.client import AsyncClient, Client, Retry, TLSConfig
from tandemkv.server.security import dev_certs, member_channels
from tandemkv.server.security.server_tls import ReloadingCredentials, load
from tests.support.tls_files import make_pki, served_serial, server_answers, tls_server

# Each refused call gives up after this ("Socket closed" is retried like any connection failure).
REFUSED_RETRY = Retry(deadline_s=2.0, attempt_timeout_s=1.0)


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


def client_tls(pki, ca="ca.pem", cert="client.pem", key="client.key") -> TLSConfig:
    return TLSConfig(ca=pki.path(ca), cert=pki.path(cert) if cert else None, key=pki.path(key) if key else None)


def refused_message(address: str, tls) -> str:
    with Client(address, tls=tls, retry=REFUSED_RETRY, pipeline=False) as client:
        with pytest.raises(errors.Unavailable) as refused:
            client.get("k")
    return refused.value.message


def test_a_client_with_the_ca_puts_and_gets_over_tls_sync_and_asyncio(pki):
    with tls_server(ReloadingCredentials(pki.server_tls())) as address:
        with Client(address, tls=TLSConfig(ca=pki.path("ca.pem"))) as client:
            client.put("greeting", "hello")
            assert client.get("greeting") == b"hello"

        async def asyncio_round_trip():
            async with AsyncClient(address, tls=TLSConfig(ca=pki.path("ca.pem").read_bytes())) as client:
                await client.put("other", "value")
                return await client.get("other")

        assert asyncio.run(asyncio_round_trip()) == b"value"


def test_a_client_without_the_ca_is_refused_and_told_to_pass_it(pki):
    with tls_server(ReloadingCredentials(pki.server_tls())) as address:
        for tls in (True, TLSConfig(ca=pki.path("rogue-ca.pem"))):  # system roots; another cluster's CA
            message = refused_message(address, tls)
            assert "CERTIFICATE_VERIFY_FAILED" in message
            assert "not signed by a CA this client trusts: pass the CA that signed it (--ca" in message


def test_a_plaintext_client_to_a_tls_node_is_told_the_node_speaks_tls(pki):
    with tls_server(ReloadingCredentials(pki.server_tls())) as address:
        assert "the node speaks TLS? pass --ca (TANDEMKV_CA)" in refused_message(address, False)


def test_a_tls_client_to_a_plaintext_node_is_told_the_node_speaks_plaintext(pki):
    with tls_server(None) as address:
        message = refused_message(address, TLSConfig(ca=pki.path("ca.pem")))
    assert "the node speaks plaintext but this client TLS: drop --ca/--cert/--key" in message


def test_under_mtls_a_client_certificate_not_signed_by_the_ca_is_refused_and_one_signed_is_served(pki):
    with tls_server(ReloadingCredentials(pki.server_tls(client_auth=True))) as address:
        for tls in (client_tls(pki, cert=None, key=None), client_tls(pki, cert="rogue.pem", key="rogue.key")):
            message = refused_message(address, tls)
            assert "does it require client certificates? pass --cert and --key" in message
        with Client(address, tls=client_tls(pki)) as client:
            client.put("k", "v")
            assert client.get("k") == b"v"
        # The refusal is the node's: it ends a connection whose certificate its CA did not sign.
        ca = pki.path("ca.pem")
        assert server_answers(address, ca, pki.path("client.pem"), pki.path("client.key"))
        assert not server_answers(address, ca, pki.path("rogue.pem"), pki.path("rogue.key"))
        assert not server_answers(address, ca)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reload_serves_a_renewed_certificate_to_new_connections_and_keeps_a_half_renewed_pair_out(pki):
    clock = FakeClock()
    credentials = ReloadingCredentials(pki.server_tls(), check_interval_ms=1000, clock=clock)
    first = credentials.loaded.serial_number
    ca = pki.path("ca.pem")
    with tls_server(credentials) as address:
        assert served_serial(address, ca) == first
        renewed = pki.issue_node()
        assert renewed.serial_number != first
        # Within the check interval the files are not looked at.
        assert served_serial(address, ca) == first
        clock.now += 1.0
        assert served_serial(address, ca) == renewed.serial_number
        assert credentials.reloads == 1
        # A renewal caught half way (the certificate replaced, its key not yet) is not taken.
        half = dev_certs.issue(pki.ca, "node", hosts=("127.0.0.1",))
        half.write(pki.path("node.pem"), pki.path("half.key"))
        clock.now += 1.0
        assert served_serial(address, ca) == renewed.serial_number
        assert "is not the key of the certificate" in credentials.last_error
        pki.path("half.key").replace(pki.path("node.key"))
        clock.now += 1.0
        assert served_serial(address, ca) == half.serial_number
        assert credentials.reloads == 2 and credentials.last_error == ""


def test_reload_takes_a_new_ca_bundle_so_clients_of_another_ca_are_accepted_from_then_on(pki):
    clock = FakeClock()
    credentials = ReloadingCredentials(pki.server_tls(client_auth=True), clock=clock)
    ca, rogue = pki.path("ca.pem"), (pki.path("rogue.pem"), pki.path("rogue.key"))
    with tls_server(credentials) as address:
        assert not server_answers(address, ca, *rogue)
        bundle = pki.path("ca.pem").read_bytes() + pki.path("rogue-ca.pem").read_bytes()
        pki.path("ca.pem.new").write_bytes(bundle)
        pki.path("ca.pem.new").replace(pki.path("ca.pem"))
        clock.now += 2.0
        assert server_answers(address, ca, *rogue)
        assert server_answers(address, ca, pki.path("client.pem"), pki.path("client.key"))


def test_the_node_refuses_to_start_on_files_that_do_not_belong_together_naming_the_file(pki):
    pki.path("stray.pem").write_text("not a certificate\n")
    cases = [
        (dict(key=pki.path("rogue.key")), "is not the key of the certificate"),
        (dict(cert=pki.path("stray.pem")), "holds no PEM block"),
        (dict(ca=pki.path("missing.pem")), "cannot read the CA bundle (tls_ca)"),
    ]
    for change, words in cases:
        tls = pki.server_tls()
        tls = type(tls)(**{**tls.__dict__, **change})
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            load(tls)


def test_member_channels_speak_tls_with_the_nodes_certificate_when_the_node_does(pki):
    async def check(address: str) -> int:
        async with member_channels.open_member_channel(address, []) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            return reply.status

    with tls_server(ReloadingCredentials(pki.server_tls(client_auth=True))) as address:
        try:
            member_channels.use_tls(pki.server_tls(client_auth=True))
            assert member_channels.uses_tls()
            assert asyncio.run(check(address)) == health_pb2.HealthCheckResponse.SERVING
            member_channels.use_tls(None)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                asyncio.run(check(address))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            member_channels.use_tls(None)


def test_tls_config_refuses_half_a_client_identity_and_names_an_unreadable_file(pki):
    with pytest.raises(ValueError, match="needs its key"):
        TLSConfig(ca=pki.path("ca.pem"), cert=pki.path("client.pem"))
    with pytest.raises(ValueError, match="cannot read the CA bundle"):
        Client("127.0.0.1:1", tls=TLSConfig(ca=pki.path("nowhere.pem")))
    with pytest.raises(ValueError, match="holds no PEM block"):
        TLSConfig(ca=b"not pem").channel_credentials()


def test_a_refused_handshake_is_raised_at_the_first_attempt_not_retried_to_the_deadline(pki):
    # A wrong CA and a TLS client to a plaintext node fail every attempt
    # alike; "Socket closed" (a plaintext client to a TLS node) may be a
    # node stopping, so it stays retried.
    waits: list[float] = []
    patient = Retry(deadline_s=60.0, attempt_timeout_s=5.0, sleep=waits.append)
    with tls_server(ReloadingCredentials(pki.server_tls())) as address:
        for pipeline in (False, True):
            with Client(address, tls=TLSConfig(ca=pki.path("rogue-ca.pem")), retry=patient,
                        pipeline=pipeline) as client:
                with pytest.raises(errors.Unavailable, match="CERTIFICATE_VERIFY_FAILED") as refused:
                    client.get("k")
            assert "gave up after" not in refused.value.message
    with tls_server(None) as address:
        with Client(address, tls=TLSConfig(ca=pki.path("ca.pem")), retry=patient, pipeline=False) as client:
            with pytest.raises(errors.Unavailable, match="WRONG_VERSION_NUMBER"):
                client.get("k")
    assert waits == []
