"""Throwaway TLS material for tests: a CA, a node certificate for
127.0.0.1, a client certificate, and a rogue CA with a client certificate of
its own, written under a directory; a TLS server over a fake node; and the
serial number a new raw TLS connection is served."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
from pathlib import Path

from cryptography import x509

from tandemkv.server.api import build_server
from tandemkv.server.security import dev_certs
from tandemkv.server.security.server_tls import ReloadingCredentials, ServerTLS
from tests.support.fake_node import FakeNode

CONNECT_TIMEOUT_S = 10.0


@dataclasses.dataclass
class Pki:
    directory: Path
    ca: dev_certs.Issued

    def path(self, name: str) -> Path:
        return self.directory / name

    def issue_node(self, name: str = "node") -> dev_certs.Issued:
        """A new node certificate (new key, new serial) written to node.pem/node.key."""
        issued = dev_certs.issue(self.ca, name, hosts=("127.0.0.1", "localhost"))
        issued.write(self.path(f"{name}.pem"), self.path(f"{name}.key"))
        return issued

    def server_tls(self, client_auth: bool = False) -> ServerTLS:
        return ServerTLS(cert=self.path("node.pem"), key=self.path("node.key"), ca=self.path("ca.pem"),
                         client_auth=client_auth)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = dev_certs.make_ca()
    ca.write(directory / "ca.pem", directory / "ca.key")
    pki = Pki(directory, ca)
    pki.issue_node()
    dev_certs.issue(ca, "client", server=False).write(directory / "client.pem", directory / "client.key")
    rogue_ca = dev_certs.make_ca("some other CA")
    rogue_ca.write(directory / "rogue-ca.pem", directory / "rogue-ca.key")
    dev_certs.issue(rogue_ca, "rogue", server=False).write(directory / "rogue.pem", directory / "rogue.key")
    dev_certs.issue(rogue_ca, "node", hosts=("127.0.0.1",)).write(directory / "rogue-node.pem",
                                                                   directory / "rogue-node.key")
    return pki


@contextlib.contextmanager
def tls_server(credentials: ReloadingCredentials | None, node: FakeNode | None = None):
    """A started server over a fake node speaking TLS with `credentials`
    (None: plaintext); yields its address."""
    server = build_server(node or FakeNode(), "127.0.0.1:0", tls=credentials)
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace_s=0)


def served_serial(address: str, ca: Path, cert: Path | None = None, key: Path | None = None) -> int:
    """The serial number of the certificate a new TLS connection to
    `address` is served (checked against `ca`, as gRPC checks it)."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S) as raw:
        with context.wrap_socket(raw, server_hostname=host) as connection:
            return x509.load_der_x509_certificate(connection.getpeercert(binary_form=True)).serial_number


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def server_answers(address: str, ca: Path, cert: Path | None = None, key: Path | None = None) -> bool:
    """Whether the node answers an HTTP/2 preface sent over TLS with this
    client certificate (with TLS 1.3 a node refuses a client certificate
    after the client's side of the handshake is done: at the first read)."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S) as raw:
            with context.wrap_socket(raw, server_hostname=host) as connection:
                connection.sendall(HTTP2_PREFACE)
                return connection.recv(9) != b""
    except (ssl.SSLError, ConnectionError):
        return False
