"""The channels a node opens to other members' client ports (the pub/sub
relay's streams, presence exchanges): plaintext, or TLS when the cluster
speaks TLS, checked against the cluster's CA and, under mTLS, presenting
this node's own certificate as its client certificate.

One node runs per `tandemkv serve` process, so the choice is the process's:
serve.py calls `use_tls` once before the node starts, and every member
channel opened afterwards follows it. The files are read again at each
channel opened (the relay opens one per attempt), so a renewed node
certificate is presented from the next one on. Opening a channel never
raises for a file that cannot be read: the channel is opened with the last
credentials that could be built, and the failure logged once.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

import grpc
import grpc.aio

from tandemkv.server.security.server_tls import ServerTLS, load

log = logging.getLogger(__name__)

_lock = threading.Lock()
_tls: ServerTLS | None = None
_credentials: grpc.ChannelCredentials | None = None
_read: tuple[bytes | None, bytes, bytes] | None = None
_last_error = ""


def use_tls(tls: ServerTLS | None) -> None:
    """Member channels of this process speak TLS with `tls`'s files (None: plaintext)."""
    global _tls, _credentials, _read, _last_error
    with _lock:
        _tls, _credentials, _read, _last_error = tls, None, None, ""


def uses_tls() -> bool:
    return _tls is not None


def open_member_channel(address: str, options: Sequence[tuple[str, object]]) -> grpc.aio.Channel:
    """An asyncio channel to a member's client port `address`."""
    credentials = _current_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, credentials, options=list(options))


def _current_credentials() -> grpc.ChannelCredentials | None:
    global _credentials, _read, _last_error
    with _lock:
        if _tls is None:
            return None
        try:
            # Checked as the server's are: a half renewed pair is not used.
            material = load(_tls)
            read = (material.ca_bundle, material.certificate_chain, material.private_key)
        except ValueError as error:
            if str(error) != _last_error:
                log.warning("member channels keep their TLS credentials: %s", error)
            _last_error = str(error)
            read = _read
        if read is None:  # never readable: a TLS channel that fails its handshakes, not plaintext
            return grpc.ssl_channel_credentials()
        if read != _read or _credentials is None:
            ca, cert, key = read
            # The node's certificate doubles as its client certificate: a
            # node requiring client certificates accepts its members'.
            _credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                                        certificate_chain=cert)
            _read = read
        return _credentials


def client_tls_of(values: dict):
    """The SDK's `TLSConfig` a node's own calls to a member use (`serve
    --join` asking for the member set): the cluster's CA, and the node's
    certificate as its client certificate; False (plaintext) without TLS."""
    from tandemkv.client import TLSConfig
    from tandemkv.server.security.server_tls import from_settings

    tls = from_settings(values)
    if tls is None:
        return False
    return TLSConfig(ca=tls.ca, cert=tls.cert, key=tls.key)
