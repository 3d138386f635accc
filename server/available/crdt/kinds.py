"""The CRDT types by kind, and their versioned byte encoding.

An encoded state (or delta) is the canonical encoding of

    [CRDT_FORMAT_VERSION, kind name, the type's plain tree]

so equal states encode to equal bytes, and `state_digest` of equal states is
equal. Decoding checks the version, the kind, the tree, and that the bytes
are the canonical encoding of what they describe.

This module knows the types and the encoding; never gossip or storage.
"""

from __future__ import annotations

import hashlib

from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.crdt.base import Crdt, Origin, TableKind
from tandemkv.server.available.crdt.counters import GCounter, PNCounter
from tandemkv.server.available.crdt.maps import AWLWWMap
from tandemkv.server.available.crdt.registers import LWWRegister, MVRegister
from tandemkv.server.available.crdt.sets import ORSet

CRDT_FORMAT_VERSION = 1
# Bytes of a table digest (a truncated SHA-256 of the canonical encoding).
DIGEST_BYTES = 16

CRDT_TYPES: dict[TableKind, type[Crdt]] = {
    cls.kind: cls for cls in (GCounter, PNCounter, LWWRegister, MVRegister, ORSet, AWLWWMap)
}

__all__ = ["CRDT_TYPES", "Crdt", "Origin", "TableKind", "GCounter", "PNCounter", "LWWRegister",
           "MVRegister", "ORSet", "AWLWWMap", "encode_crdt", "decode_crdt", "state_digest"]


def encode_crdt(state: Crdt) -> bytes:
    return canonical.encode([CRDT_FORMAT_VERSION, state.kind.value, state.to_plain()])


def decode_crdt(data: bytes, kind: TableKind | None = None) -> Crdt:
    """The state `data` encodes; raises canonical.DecodeError if it is not a
    canonical encoding of one (of `kind`, when given)."""
    tree = canonical.decode(data)
    if not (isinstance(tree, list) and len(tree) == 3):
        raise canonical.DecodeError("an encoded CRDT is [version, kind, state]")
    version, name, plain = tree
    if version != CRDT_FORMAT_VERSION:
        raise canonical.DecodeError(f"CRDT format version {version} is unknown")
    try:
        found = TableKind(name)
    except ValueError as error:
        raise canonical.DecodeError(f"unknown CRDT kind {name!r}") from error
    if kind is not None and found != kind:
        raise canonical.DecodeError(f"expected a {kind.value}, got a {found.value}")
    try:
        state = CRDT_TYPES[found].from_plain(plain)
    except (ValueError, TypeError) as error:
        raise canonical.DecodeError(f"not a {found.value}: {error}") from error
    if encode_crdt(state) != data:
        raise canonical.DecodeError("not the canonical encoding of its state")
    return state


def state_digest(encoded: bytes) -> bytes:
    """The digest gossip compares: equal states, equal digests."""
    return hashlib.sha256(encoded).digest()[:DIGEST_BYTES]
