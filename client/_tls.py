"""TLS for the SDK: `TLSConfig` (the CA that signed the nodes'
certificates, and this client's certificate and key when the nodes require
one), where it comes from when not given, the one place every channel of
`Client` and `AsyncClient` is opened, and the words that turn a failed
handshake into a message saying what to pass.

Where a client's TLS comes from, first found wins: `tls=` as passed
(`tls=False`: plaintext, whatever the environment says); the environment,
`TANDEMKV_CA`, `TANDEMKV_CERT`, `TANDEMKV_KEY` (and `TANDEMKV_TLS_SERVER_NAME`);
for a client whose endpoints come from `./tandemkv-data/cluster.json`, that
file's `tls` entry (written by `tandemkv up --tls`); else plaintext.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import grpc
import grpc.aio

from tandemkv import limits
from tandemkv.client._routing import DEFAULT_CLUSTER_FILE, ENDPOINTS_ENV

# A PEM file's path, or its contents (bytes that hold "-----BEGIN ").
PemSource = Union[str, os.PathLike, bytes]
CA_ENV, CERT_ENV, KEY_ENV, SERVER_NAME_ENV = ("TANDEMKV_CA", "TANDEMKV_CERT", "TANDEMKV_KEY",
                                               "TANDEMKV_TLS_SERVER_NAME")


@dataclasses.dataclass(frozen=True)
class TLSConfig:
    """How a client speaks TLS to the nodes.

    `ca`: the CA bundle that signed the nodes' certificates (None: the
    system's roots). `cert` and `key`: this client's certificate and key,
    for nodes that require client certificates (`serve --tls-client-auth`).
    Each is a PEM file's path or its contents as bytes. `server_name`: the
    name to check the nodes' certificates against instead of the host
    dialled (for certificates that do not name the addresses used).

    Example::

        Client("10.0.0.5:7400", tls=TLSConfig(ca="ca.pem", cert="me.pem", key="me.key"))
    """

    ca: PemSource | None = None
    cert: PemSource | None = None
    key: PemSource | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLS: a client certificate needs its key and a key its certificate "
                             f"(pass both cert and key: --cert/--key, {CERT_ENV}/{KEY_ENV})")

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Reads the files now; ValueError names one that cannot be used."""
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca, "CA bundle (--ca)"),
            private_key=_pem(self.key, "client key (--key)"),
            certificate_chain=_pem(self.cert, "client certificate (--cert)"))

    def channel_options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TLSConfig | None:
        """From TANDEMKV_CA / _CERT / _KEY / _TLS_SERVER_NAME; None if none is set."""
        ca, cert, key, server_name = (environ.get(name) or None for name in
                                      (CA_ENV, CERT_ENV, KEY_ENV, SERVER_NAME_ENV))
        if ca is None and cert is None and key is None:
            return None
        return cls(ca=ca, cert=cert, key=key, server_name=server_name)

    @classmethod
    def from_cluster_file(cls, path: Path) -> TLSConfig | None:
        """The `tls` entry `tandemkv up --tls` wrote into its cluster.json."""
        try:
            entry = json.loads(path.read_text()).get("tls")
        except (OSError, ValueError):
            return None
        if not entry:
            return None
        return cls(ca=entry.get("ca"), cert=entry.get("cert"), key=entry.get("key"))


def resolve_tls(tls: TLSConfig | bool | None, endpoints: object) -> TLSConfig | None:
    """The TLS a client uses (see the module's docstring); None: plaintext."""
    if tls is False:
        return None
    if isinstance(tls, TLSConfig):
        return tls
    if tls is not None and tls is not True:
        raise TypeError(f"tls must be a TLSConfig, True (system roots) or False, not {type(tls).__name__}")
    found = TLSConfig.from_environment(os.environ)
    if found is None and endpoints is None and not os.environ.get(ENDPOINTS_ENV):
        found = TLSConfig.from_cluster_file(DEFAULT_CLUSTER_FILE)
    if found is None and tls is True:
        found = TLSConfig()
    return found


class ChannelFactory:
    """Opens a client's channels: plaintext, or TLS with credentials read
    once, when the client is made (so a missing file fails there); with
    `interceptors` (the token and trace context, `_auth_session`) when
    there is metadata to add."""

    def __init__(self, tls: TLSConfig | None, interceptors: Sequence[object] = ()):
        self.tls = tls
        self._credentials = tls.channel_credentials() if tls is not None else None
        self._options = tls.channel_options() if tls is not None else []
        self.interceptors = list(interceptors)

    def open(self, endpoint: str, options: Sequence[tuple[str, object]]) -> grpc.Channel:
        if self._credentials is None:
            channel = grpc.insecure_channel(endpoint, options=list(options))
        else:
            channel = grpc.secure_channel(endpoint, self._credentials, options=[*options, *self._options])
        return grpc.intercept_channel(channel, *self.interceptors) if self.interceptors else channel

    def open_aio(self, endpoint: str, options: Sequence[tuple[str, object]]) -> grpc.aio.Channel:
        interceptors = self.interceptors or None
        if self._credentials is None:
            return grpc.aio.insecure_channel(endpoint, options=list(options), interceptors=interceptors)
        return grpc.aio.secure_channel(endpoint, self._credentials, options=[*options, *self._options],
                                       interceptors=interceptors)


def _pem(source: PemSource | None, what: str) -> bytes | None:
    if source is None:
        return None
    if isinstance(source, bytes):
        if b"-----BEGIN " not in source:
            raise ValueError(f"TLS: the {what} given as bytes holds no PEM block (-----BEGIN ...)")
        return source
    path = Path(source).expanduser()
    try:
        with open(path, "rb") as file:
            data = file.read(limits.TLS_FILE_BYTES_MAX + 1)
    except OSError as error:
        raise ValueError(f"TLS: cannot read the {what} {path}: {error.strerror or error}") from None
    if len(data) > limits.TLS_FILE_BYTES_MAX or b"-----BEGIN " not in data:
        raise ValueError(f"TLS: the {what} {path} is not a PEM file (no -----BEGIN block, or over "
                         f"{limits.TLS_FILE_BYTES_MAX} bytes)")
    return data


# What gRPC says when a handshake fails, and what to do about it. A node
# that speaks TLS closes a plaintext connection at once ("Socket closed"),
# and so does a node requiring client certificates refuse one without (or
# with one its CA did not sign).
_HANDSHAKE_HINTS = (
    ("WRONG_VERSION_NUMBER",
     "the node speaks plaintext but this client TLS: drop --ca/--cert/--key "
     f"({CA_ENV}/{CERT_ENV}/{KEY_ENV}), or start the nodes with --tls-cert and --tls-key"),
    ("CERTIFICATE_VERIFY_FAILED",
     f"the node's certificate is not signed by a CA this client trusts: pass the CA that signed it "
     f"(--ca / {CA_ENV} / TLSConfig(ca=...))"),
    ("Hostname Verification Check failed",
     "the node's certificate does not name the address dialled: use an address it names, or "
     f"{SERVER_NAME_ENV} / TLSConfig(server_name=...) with a name it does"),
    ("Socket closed",
     f"the node closed the connection at once: the node speaks TLS? pass --ca ({CA_ENV}); does it require "
     f"client certificates? pass --cert and --key ({CERT_ENV}/{KEY_ENV}) signed by its CA"),
)


# Handshake failures no retry can mend (the other side's configuration or
# this client's must change); "Socket closed" is not one: a node that is
# stopping closes connections too.
_HANDSHAKE_REFUSALS = ("WRONG_VERSION_NUMBER", "CERTIFICATE_VERIFY_FAILED", "Hostname Verification Check failed")


def handshake_refused(message: str) -> bool:
    """Whether gRPC's `message` says the TLS handshake was refused for a
    reason only a change of configuration mends."""
    return "failed to connect" in message and any(marker in message for marker in _HANDSHAKE_REFUSALS)


def explain_handshake(message: str) -> str:
    """`message` (a gRPC error's details) with what to do appended when it
    reads like a failed TLS handshake, or a TLS mismatch; else unchanged."""
    if "failed to connect" not in message:
        return message
    for marker, hint in _HANDSHAKE_HINTS:
        if marker in message:
            return f"{message} ({hint})"
    return message
