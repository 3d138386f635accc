"""Checks that a snapshot file is whole before its LMDB image is opened.

An LMDB environment is memory-mapped: a page past the end of a short file
is not an error LMDB can return but a SIGBUS that kills the process. So
nothing opens an image that has not been checked here:

- `lmdb_bytes_needed`: the size an image's own meta pages say it has
  (page size x (last page number + 1), from the newer of its two meta
  pages); a shorter image is refused.
- `IncomingSnapshot`: a snapshot a follower receives from the leader, chunk
  by chunk, checked as it arrives (magic, header, the image's length and
  SHA-256 that the header declares) so that a bad transfer is refused
  before it replaces the node's snapshot file.

Pure: no LMDB, files or threads.
"""

from __future__ import annotations

import hashlib
import json
import struct

from tandemkv import limits

MAGIC_V1 = b"TKVSNAP1"  # header without the image's length and checksum (read only)
MAGIC = b"TKVSNAP2"  # header declares image_bytes and image_sha256
LENGTH = struct.Struct(">I")
PREFIX_BYTES = len(MAGIC) + LENGTH.size

# LMDB's meta page (lmdb.h, MDB_meta after the 16-byte page header):
# magic u32 @16, page size (the free DB's md_pad) u32 @40, last page
# number u64 @136, transaction id u64 @144; page 0 and page 1 are metas.
_LMDB_MAGIC = 0xBEEFC0DE
_META_MAGIC = struct.Struct("<I")
_META_PAGE_SIZE_AT = 40
_META_LAST_PAGE_AT = 136
_META_LAST_TXN = struct.Struct("<QQ")
_META_FIRST_PAGE_BYTES = 152  # what the first meta page must hold to be read
# LMDB's largest page size; a meta claiming more is not a meta.
LMDB_PAGE_BYTES_MAX = 1 << 16
# How much of a parse error a message quotes.
_ERROR_CHARS_MAX = 200


class SnapshotInvalid(ValueError):
    """A snapshot file that is not whole (truncated, with a gap, or not a
    snapshot); its message says what is wrong."""


def lmdb_bytes_needed(first_pages: bytes) -> int:
    """The size of the LMDB image whose first bytes are `first_pages` (at
    least its first page and the second meta page), as its newer meta page
    declares it."""
    if len(first_pages) < _META_FIRST_PAGE_BYTES:
        raise SnapshotInvalid(f"the LMDB image is {len(first_pages)} bytes, shorter than its meta page")
    page_bytes = _meta_page_bytes(first_pages, 0)
    if len(first_pages) < page_bytes + _META_FIRST_PAGE_BYTES:
        raise SnapshotInvalid(f"the LMDB image is {len(first_pages)} bytes, shorter than its two "
                              f"meta pages of {page_bytes} bytes")
    newest = max((_META_LAST_TXN.unpack_from(first_pages, at + _META_LAST_PAGE_AT)[::-1]
                  for at in (0, page_bytes) if _meta_page_bytes(first_pages, at) == page_bytes),
                 default=None)
    if newest is None:
        raise SnapshotInvalid("the LMDB image's second meta page is damaged")
    return page_bytes * (newest[1] + 1)


def _meta_page_bytes(data: bytes, at: int) -> int:
    (magic,) = _META_MAGIC.unpack_from(data, at + 16)
    (page_bytes,) = _META_MAGIC.unpack_from(data, at + _META_PAGE_SIZE_AT)
    if magic != _LMDB_MAGIC or not 512 <= page_bytes <= LMDB_PAGE_BYTES_MAX:
        raise SnapshotInvalid("the image holds no LMDB meta page: not an LMDB image, or damaged")
    return page_bytes


def parse_header(prefix: bytes, header: bytes) -> dict:
    """The header object of a snapshot starting with `prefix` (magic and
    length) followed by the header bytes; refuses what is not one."""
    if prefix[: len(MAGIC)] not in (MAGIC, MAGIC_V1):
        raise SnapshotInvalid("not a TandemKV snapshot (its magic is wrong)")
    try:
        fields = json.loads(header)
        if prefix[: len(MAGIC)] == MAGIC:
            if not (isinstance(fields["image_bytes"], int) and len(fields["image_sha256"]) == 64):
                raise ValueError("image_bytes or image_sha256 is malformed")
        else:
            fields["image_bytes"] = fields["image_sha256"] = None
        fields["last"], fields["prev"], fields["members"]  # noqa: B018 (must be there)
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotInvalid(f"its header is damaged ({type(error).__name__}: "
                              f"{str(error)[:_ERROR_CHARS_MAX]})") from error
    return fields


def header_length(prefix: bytes) -> int:
    """The header's length, from a snapshot's first PREFIX_BYTES."""
    if prefix[: len(MAGIC)] not in (MAGIC, MAGIC_V1):
        raise SnapshotInvalid("not a TandemKV snapshot (its magic is wrong)")
    (length,) = LENGTH.unpack(prefix[len(MAGIC):PREFIX_BYTES])
    if length > limits.SNAPSHOT_HEADER_BYTES_MAX:
        raise SnapshotInvalid(f"its header of {length} bytes is larger than "
                              f"{limits.SNAPSHOT_HEADER_BYTES_MAX}")
    return length


class IncomingSnapshot:
    """The stream of a snapshot being received, checked as it arrives.
    `feed` each chunk in order, then `finish`; both raise SnapshotInvalid
    on the first sign that the stream is not the file the sender has."""

    def __init__(self) -> None:
        self._prefix = bytearray()  # magic, length and header, until parsed
        self._fields: dict | None = None
        self._first_pages = bytearray()  # for the LMDB meta check
        self._image_hash = hashlib.sha256()
        self.image_bytes = 0

    def feed(self, chunk: bytes) -> None:
        if self._fields is None:
            self._prefix += chunk
            if len(self._prefix) < PREFIX_BYTES:
                return
            end = PREFIX_BYTES + header_length(self._prefix)
            if len(self._prefix) < end:
                return
            self._fields = parse_header(self._prefix, bytes(self._prefix[PREFIX_BYTES:end]))
            chunk = bytes(self._prefix[end:])
            self._prefix = bytearray()
        if len(self._first_pages) < 2 * LMDB_PAGE_BYTES_MAX:
            self._first_pages += chunk[: 2 * LMDB_PAGE_BYTES_MAX - len(self._first_pages)]
        self._image_hash.update(chunk)
        self.image_bytes += len(chunk)
        declared = self._fields["image_bytes"]
        if declared is not None and self.image_bytes > declared:
            raise SnapshotInvalid(f"its image runs past the {declared} bytes its header declares")

    def finish(self) -> None:
        """Raises unless the whole snapshot arrived."""
        if self._fields is None:
            raise SnapshotInvalid("it ended inside its header")
        declared = self._fields["image_bytes"]
        if declared is not None and self.image_bytes != declared:
            raise SnapshotInvalid(f"its image is {self.image_bytes} bytes; its header declares {declared}")
        if declared is not None and self._image_hash.hexdigest() != self._fields["image_sha256"]:
            raise SnapshotInvalid("its image's SHA-256 differs from the one its header declares")
        needed = lmdb_bytes_needed(bytes(self._first_pages))
        if self.image_bytes < needed:
            raise SnapshotInvalid(f"its LMDB image is {self.image_bytes} bytes; its meta page "
                                  f"says {needed}")
