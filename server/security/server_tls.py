"""The TLS of a node's client port: which files hold its certificate chain,
its key and the CA its clients' (and members') certificates are checked
against, and the gRPC server credentials built from them.

Reload without restart: the credentials are gRPC's dynamic ones, whose
fetcher gRPC calls at each new connection's handshake. The fetcher looks at
the files' mtimes and sizes at most every TLS_RELOAD_CHECK_INTERVAL_MS; when
one changed it reads them again, checks that the key belongs to the
certificate and that they parse, and hands gRPC the new pair, which every
later handshake presents; connections already open keep theirs. A half
renewed pair (the certificate replaced, the key not yet) is refused with a
warning and the old pair kept, so a renewal in two steps never takes the
port down.

Knows nothing of the node; serve.py builds a `ServerTLS` from the settings
and the gRPC server (server/api/server.py) binds its port with it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Callable

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tandemkv import limits

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServerTLS:
    """The files of a node's TLS. `ca`: the CA bundle client certificates
    are checked against and members' server certificates are trusted by
    (None: members trust the system's roots). `client_auth`: every client
    must present a certificate signed by `ca` (mTLS)."""

    cert: Path
    key: Path
    ca: Path | None = None
    client_auth: bool = False

    def __post_init__(self) -> None:
        if self.client_auth and self.ca is None:
            raise ValueError("tls_client_auth needs tls_ca (--tls-ca / TANDEMKV_TLS_CA): the CA that signs "
                             "the client certificates to accept")

    def files(self) -> tuple[Path, ...]:
        return (self.cert, self.key) + ((self.ca,) if self.ca is not None else ())


@dataclasses.dataclass(frozen=True)
class TLSMaterial:
    """The PEM contents of a `ServerTLS`'s files, checked to belong together."""

    certificate_chain: bytes
    private_key: bytes
    ca_bundle: bytes | None

    @property
    def serial_number(self) -> int:
        return x509.load_pem_x509_certificate(self.certificate_chain).serial_number


def read_pem(path: Path, what: str) -> bytes:
    """A PEM file's bytes; ValueError names the file and what to fix."""
    try:
        with open(path, "rb") as file:
            data = file.read(limits.TLS_FILE_BYTES_MAX + 1)
    except OSError as error:
        raise ValueError(f"cannot read the {what} {path}: {error.strerror or error}") from None
    if len(data) > limits.TLS_FILE_BYTES_MAX:
        raise ValueError(f"the {what} {path} is larger than TLS_FILE_BYTES_MAX "
                         f"({limits.TLS_FILE_BYTES_MAX} bytes); is it a PEM file?")
    if b"-----BEGIN " not in data:
        raise ValueError(f"the {what} {path} holds no PEM block (-----BEGIN ...); TandemKV reads PEM files")
    return data


def load(tls: ServerTLS) -> TLSMaterial:
    """Reads and checks the files: they parse, and the key is the
    certificate's. ValueError says which file to fix."""
    chain = read_pem(tls.cert, "certificate (tls_cert)")
    key_pem = read_pem(tls.key, "private key (tls_key)")
    ca_bundle = read_pem(tls.ca, "CA bundle (tls_ca)") if tls.ca is not None else None
    try:
        certificate = x509.load_pem_x509_certificate(chain)
    except ValueError as error:
        raise ValueError(f"the certificate (tls_cert) {tls.cert} does not parse: {error}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"the private key (tls_key) {tls.key} does not parse (an encrypted key is not "
                         f"supported): {error}") from None
    if ca_bundle is not None:
        try:
            x509.load_pem_x509_certificates(ca_bundle)
        except ValueError as error:
            raise ValueError(f"the CA bundle (tls_ca) {tls.ca} does not parse: {error}") from None
    if _public_bytes(key.public_key()) != _public_bytes(certificate.public_key()):
        raise ValueError(f"the private key {tls.key} is not the key of the certificate {tls.cert} "
                         "(replaced one without the other?)")
    return TLSMaterial(chain, key_pem, ca_bundle)


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _configuration(material: TLSMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.certificate_chain)], root_certificates=material.ca_bundle)


class ReloadingCredentials:
    """gRPC server credentials over a `ServerTLS` that pick up changed
    files at the next handshake (see the module's docstring). `loaded`
    is the material in use; `reloads` counts the changes taken."""

    def __init__(self, tls: ServerTLS, check_interval_ms: int = limits.TLS_RELOAD_CHECK_INTERVAL_MS,
                 clock: Callable[[], float] = time.monotonic):
        self.tls = tls
        self.loaded = load(tls)
        self.reloads = 0
        self.last_error = ""
        self._check_interval_s = check_interval_ms / 1000
        self._clock = clock
        self._lock = threading.Lock()
        self._stamps = self._file_stamps()
        self._next_check = clock() + self._check_interval_s

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            _configuration(self.loaded), self._fetch, require_client_authentication=self.tls.client_auth)

    def _file_stamps(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self.tls.files():
            try:
                status = path.stat()
                stamps.append((status.st_mtime_ns, status.st_size))
            except OSError:
                stamps.append((-1, -1))
        return tuple(stamps)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's fetcher, on its threads at each handshake: a new
        configuration, or None to keep the one in use."""
        try:
            with self._lock:
                return self._maybe_reload()
        except Exception:  # noqa: BLE001 - a fetcher that raises fails the handshake: keep serving
            log.exception("TLS reload check failed; keeping the certificate in use")
            return None

    def _maybe_reload(self) -> grpc.ServerCertificateConfiguration | None:
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + self._check_interval_s
        stamps = self._file_stamps()
        if stamps == self._stamps:
            return None
        try:
            material = load(self.tls)
        except ValueError as error:
            # Looked at again at the next check: a renewal in two steps
            # completes, and a broken file is reported once per change.
            if str(error) != self.last_error:
                log.warning("TLS files changed but cannot be used yet (keeping the certificate in use): %s", error)
            self.last_error = str(error)
            return None
        self._stamps = stamps
        self.last_error = ""
        if material == self.loaded:
            return None
        self.loaded = material
        self.reloads += 1
        log.info("TLS certificate reloaded from %s (serial %x)", self.tls.cert, material.serial_number)
        return _configuration(material)


def from_settings(values: dict) -> ServerTLS | None:
    """The `ServerTLS` of a node's settings (tls_cert, tls_key, tls_ca,
    tls_client_auth), or None when none is set. ValueError says what to fix."""
    cert, key, ca = values.get("tls_cert"), values.get("tls_key"), values.get("tls_ca")
    client_auth = values.get("tls_client_auth", False)
    if not isinstance(client_auth, bool):
        raise ValueError(f"tls_client_auth must be true or false, got {client_auth!r}")
    if cert is None and key is None:
        if ca is not None or client_auth:
            raise ValueError("tls_ca and tls_client_auth need TLS on the client port: set tls_cert and tls_key "
                             "(--tls-cert/--tls-key or TANDEMKV_TLS_CERT/TANDEMKV_TLS_KEY)")
        return None
    if cert is None or key is None:
        missing = ("tls_key (--tls-key / TANDEMKV_TLS_KEY)" if key is None
                   else "tls_cert (--tls-cert / TANDEMKV_TLS_CERT)")
        raise ValueError(f"TLS needs both a certificate and its key: set {missing}")
    return ServerTLS(cert=Path(cert), key=Path(key), ca=Path(ca) if ca is not None else None,
                     client_auth=client_auth)
