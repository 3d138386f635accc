"""What SDK calls return: small frozen dataclasses decoded from the wire
types, so callers never touch protobuf. Also the bytes-or-str coercion
every call applies to keys, values and counter names."""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence, Union, overload

from tandemkv.v1 import kv_pb2

BytesLike = Union[bytes, str]


def to_bytes(data: BytesLike, what: str) -> bytes:
    """`str` is encoded as UTF-8; `bytes` pass through unchanged."""
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes or str, got {type(data).__name__}")


@dataclasses.dataclass(frozen=True)
class KeyValue:
    """One key as stored. Revisions are Raft log indexes: `create_revision`
    is where the key was (re)created, `mod_revision` its last put;
    `version` counts puts since creation (1 after the first)."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int

    @classmethod
    def from_proto(cls, kv: kv_pb2.KeyValue) -> KeyValue:
        return cls(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version)


@dataclasses.dataclass(frozen=True)
class PutResult:
    """`revision`: the log index that applied the put. `prev`: the value
    before it, only when asked for with `prev_kv=True` and the key existed."""

    revision: int
    prev: KeyValue | None = None


@dataclasses.dataclass(frozen=True)
class RangeResult(Sequence[KeyValue]):
    """The keys a range matched, in key order; a sequence of `KeyValue`.
    `more` is true when more keys matched than were returned (ask again
    from just after the last key). `revision`: the state the answer reflects."""

    kvs: tuple[KeyValue, ...]
    more: bool
    revision: int

    @overload
    def __getitem__(self, index: int) -> KeyValue: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[KeyValue]: ...

    def __getitem__(self, index):
        return self.kvs[index]

    def __len__(self) -> int:
        return len(self.kvs)

    def __iter__(self) -> Iterator[KeyValue]:
        return iter(self.kvs)

    def to_dict(self) -> dict[bytes, bytes]:
        return {kv.key: kv.value for kv in self.kvs}


@dataclasses.dataclass(frozen=True)
class TxnResult:
    """`succeeded`: whether every compare held (the success branch ran).
    `responses`: one decoded answer per op of the branch that ran, in
    order (see `tandemkv.client.Op` for what each op answers)."""

    succeeded: bool
    revision: int
    responses: tuple[object, ...]


@dataclasses.dataclass(frozen=True)
class GossipPeer:
    """One gossip peer as a node sees it. `state` is "alive", "suspect" or
    "dead" (by default suspect after 3 of the node's gossip rounds without
    a rising heartbeat, dead after 10); `rounds_silent` counts those rounds;
    `heartbeat_ms` is the peer's latest heartbeat the node knows of (wall
    clock, ms since the Unix epoch; 0 if never heard)."""

    name: str
    state: str
    rounds_silent: int
    heartbeat_ms: int


@dataclasses.dataclass(frozen=True)
class GossipView:
    """A node's available plane: its gossip round, every other member (by
    name), and the gossip frames it rejected since it started, by reason
    ("bad_mac", "clock_drift", "not_member", ...)."""

    round: int
    peers: tuple[GossipPeer, ...]
    # Left out of the hash (a dict has none); equality still compares it.
    rejected: dict[str, int] = dataclasses.field(default_factory=dict, hash=False)

    @property
    def alive(self) -> int:
        """How many peers are alive."""
        return sum(peer.state == "alive" for peer in self.peers)


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    """One node's view of the cluster, or `error` if it did not answer.
    `gossip` is None when it did not answer or its available plane is not
    running."""

    endpoint: str
    name: str = ""
    role: str = ""
    leader: str = ""
    leader_endpoint: str = ""
    term: int = 0
    commit_index: int = 0
    applied_index: int = 0
    has_quorum: bool = False
    ready: bool = False
    error: str = ""
    gossip: GossipView | None = None


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    """Every node the client could find. `leader` is the leader's name as
    most answering nodes see it at the highest term ("" if none)."""

    nodes: tuple[NodeInfo, ...]
    leader: str
    term: int
