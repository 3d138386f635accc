"""Certificates for development and tests: a local CA, and certificates it
signs for nodes (server and client use, for 127.0.0.1, ::1 and localhost)
and for clients. `tandemkv up --tls` writes them under the cluster's data
directory (local_tls.py); tests make throwaway ones.

Keys are ECDSA P-256: quick to make, and what TLS 1.3 handshakes sign
cheaply. Nothing here is meant for production: the CA key lies next to the
certificates, readable by the owner only.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# How long a development certificate is valid (825 days: what browsers and
# most tools still accept for a leaf certificate).
DEV_CERTIFICATE_VALID_DAYS = 825
# Names every node certificate covers: members and clients reach a local node by these.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM."""

    certificate_pem: bytes
    key_pem: bytes

    @property
    def serial_number(self) -> int:
        return x509.load_pem_x509_certificate(self.certificate_pem).serial_number

    def write(self, certificate_path: Path, key_path: Path) -> None:
        """Writes both files, the key with mode 0600, each replaced whole
        (a reader never sees half a file)."""
        _write_atomically(certificate_path, self.certificate_pem, 0o644)
        _write_atomically(key_path, self.key_pem, 0o600)


def make_ca(common_name: str = "TandemKV development CA") -> Issued:
    """A self-signed CA that may sign leaf certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (_validity(x509.CertificateBuilder()).subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return Issued(_pem(builder.sign(key, hashes.SHA256())), _key_pem(key))


def issue(ca: Issued, common_name: str, *, hosts: tuple[str, ...] = (), server: bool = True,
          client: bool = True) -> Issued:
    """A leaf certificate signed by `ca` for `common_name`, valid for
    `hosts` (DNS names or IP addresses) and usable as a TLS server and/or
    client certificate."""
    assert server or client, "a certificate must be usable for something"
    ca_certificate = x509.load_pem_x509_certificate(ca.certificate_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [oid for oid, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                                      (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if wanted]
    builder = (_validity(x509.CertificateBuilder())
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_certificate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_certificate.public_key()),
                              critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                                        critical=False)
    return Issued(_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    # An hour back: a clock a little behind still accepts a certificate made now.
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=DEV_CERTIFICATE_VALID_DAYS))


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(temporary, mode)
    temporary.replace(path)
