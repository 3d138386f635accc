"""A node's configuration: who it is, where its data lives, who its peers
are, and the Raft timings. Validation happens here, once, at start-up, with
messages that say which setting to fix."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from pathlib import Path
from typing import Callable

DURABILITY_DURABLE = "durable"
DURABILITY_RELAXED = "relaxed"


@dataclasses.dataclass(frozen=True)
class Member:
    """One cluster member: its unique name, its Raft (peer) address and its
    gRPC (client) address. Addresses are 'host:port'."""

    name: str
    raft_address: str
    client_address: str = ""


@dataclasses.dataclass(frozen=True)
class RaftTimings:
    """pysyncobj timing knobs, in seconds (see docs/strong-plane.md)."""

    election_timeout_min_s: float = 1.0
    election_timeout_max_s: float = 2.5
    # How long a leader keeps leading without hearing from a majority.
    leader_fallback_timeout_s: float = 3.0
    # Batch-mode replication period: entries go out at least this often.
    append_entries_period_s: float = 0.02
    # Longest the tick thread sleeps in poll() when idle.
    tick_period_s: float = 0.005
    connection_timeout_s: float = 3.5
    connection_retry_s: float = 1.0
    # A snapshot is taken once the log holds this many entries ...
    snapshot_entries_min: int = 50_000
    # ... or this long after the last one, if anything was applied since.
    snapshot_interval_s: float = 600.0


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    name: str
    data_dir: Path
    raft_address: str
    client_address: str = ""
    # The other members (this node may be listed too; it is ignored).
    peers: tuple[Member, ...] = ()
    # Shared by every member; encrypts and authenticates Raft traffic. Required
    # whenever any address is not a loopback address.
    cluster_secret: str | None = None
    # "durable": the Raft log and term/vote are fsynced before a write is
    # acknowledged. "relaxed": survives kill -9 but not power loss.
    durability: str = DURABILITY_DURABLE
    timings: RaftTimings = RaftTimings()
    # The config index of the member set this node joined with (`serve
    # --join`); a later applied set without this node means it was removed.
    member_since_index: int = 0
    # LMDB map size; must be equal on every member. Writes that would exceed
    # it fail with RESOURCE_EXHAUSTED.
    map_size_bytes: int = 1 << 30
    # The clock the lease ticker measures time between its ticks with; tests
    # inject a fast or slow one (see docs/faults.md, clock-rate faults).
    monotonic: Callable[[], float] = dataclasses.field(default=time.monotonic, repr=False,
                                                       compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "peers", tuple(self.peers))
        self.validate()

    @property
    def members(self) -> tuple[Member, ...]:
        """Every member, this node included, sorted by name."""
        me = Member(self.name, self.raft_address, self.client_address)
        others = [p for p in self.peers if p.name != self.name]
        return tuple(sorted([me, *others], key=lambda m: m.name))

    def validate(self) -> None:
        if not self.name:
            raise ValueError("node name must not be empty (setting: name)")
        _parse_address(self.raft_address, "raft_address")
        if self.client_address:
            _parse_address(self.client_address, "client_address")
        names = [m.name for m in self.members]
        if len(names) != len(set(names)):
            raise ValueError(f"member names must be unique, got {names} (setting: peers)")
        raft_addresses = [m.raft_address for m in self.members]
        if len(raft_addresses) != len(set(raft_addresses)):
            raise ValueError(f"raft addresses must be unique, got {raft_addresses} (setting: peers)")
        for peer in self.peers:
            _parse_address(peer.raft_address, f"peers[{peer.name}].raft_address")
        if self.durability not in (DURABILITY_DURABLE, DURABILITY_RELAXED):
            raise ValueError(
                f"durability must be {DURABILITY_DURABLE!r} or {DURABILITY_RELAXED!r}, "
                f"got {self.durability!r}"
            )
        all_loopback = all(_is_loopback(m.raft_address) for m in self.members)
        if not self.cluster_secret and not all_loopback:
            raise ValueError(
                "cluster_secret is required when any raft address is not a loopback "
                "address: without it the Raft port accepts unauthenticated pickles"
            )
        t = self.timings
        if not 0 < t.election_timeout_min_s < t.election_timeout_max_s:
            raise ValueError("timings: need 0 < election_timeout_min_s < election_timeout_max_s")
        if t.election_timeout_min_s <= 3 * t.append_entries_period_s:
            raise ValueError("timings: election_timeout_min_s must exceed 3 x append_entries_period_s")


def _parse_address(address: str, setting: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{setting} must be 'host:port', got {address!r}")
    return host, int(port)


def _is_loopback(address: str) -> bool:
    host, _ = _parse_address(address, "address")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
