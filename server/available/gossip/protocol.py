"""`GossipNode`: the sans-I/O gossip protocol of one node.

It is fed time and bytes and answers with bytes to send; it never opens a
socket, starts a thread, reads a clock or touches a disk:

    out = node.tick(now_ms)                 # at least every round_interval_ms
    out = node.receive(now_ms, frame)       # a frame some peer sent here
    for peer, frame in out: transport.send(peer, frame)

This file owns the node's state, its calls (members, tables, reads and
writes, status) and the round: every `round_interval_ms` it sends a PUSH
to `fanout` random peers that are not dead, plus one random dead peer (so
partitions heal). What a message says and what is answered to it, with the
acknowledgements kept per peer and table, is exchange.py's; how that goes
into frames within `message_bytes_max`, packing.py's; when a peer is
suspect or dead, liveness.py's; a table's state and its delta buffer,
tables.py's. Everything that decides what goes on the wire lives in these
files.

The replica id that owns this node's dots and counter entries must never
reappear with less state than it had: a node that lost its data comes back
under a new replica id.

Rejected frames are counted by reason in `status()`: too_large, bad_version,
bad_mac, malformed, wrong_recipient, not_member, clock_drift,
stale_incarnation, bad_payload.
"""

from __future__ import annotations

import collections
import random
from typing import Any, Iterable

from tandemkv import limits
from tandemkv.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

from tandemkv.server.available.crdt.hlc import HybridClock
from tandemkv.server.available.crdt.kinds import CRDT_TYPES, Crdt, Origin, TableKind, decode_crdt
from tandemkv.server.available.crdt.mutations import MUTATORS  # each kind's mutator methods
from tandemkv.server.available.gossip.exchange import Exchange, PeerLink
from tandemkv.server.available.gossip.liveness import Liveness, PeerState
from tandemkv.server.available.gossip.packing import FramePacking
# Its callers import these from here.
from tandemkv.server.available.gossip.records import (GOSSIP_DEAD_AFTER_ROUNDS, GOSSIP_FANOUT,
                                                      GOSSIP_ROUND_INTERVAL_MS, GOSSIP_SUSPECT_AFTER_ROUNDS,
                                                      GossipConfig, GossipStatus, Outgoing, TableStatus)
from tandemkv.server.available.gossip.tables import TableReplica
from tandemkv.server.available.gossip.transfer import Reassembly
from tandemkv.server.available.gossip.wire import MessageKind, Rejected, open_frame

__all__ = ["GOSSIP_DEAD_AFTER_ROUNDS", "GOSSIP_FANOUT", "GOSSIP_ROUND_INTERVAL_MS", "GOSSIP_SUSPECT_AFTER_ROUNDS",
           "GossipConfig", "GossipNode", "GossipStatus", "Outgoing", "TableStatus"]


class GossipNode(Exchange, FramePacking):
    """The gossip protocol of one node. Not thread-safe: one owner feeds it."""

    def __init__(self, node_id: str, secret: bytes, rng: random.Random, clock: HybridClock,
                 now_ms: int, config: GossipConfig = GossipConfig(),
                 replica_id: str | None = None) -> None:
        assert node_id and secret
        self.node_id = node_id
        self.replica_id = replica_id or node_id
        self.config = config
        self._secret = secret
        self._rng = rng
        self._clock = clock
        self.incarnation = clock.now(now_ms)
        self._heartbeat = self.incarnation
        self._round = 0
        self._next_round_ms = now_ms
        self._tables: dict[str, TableReplica] = {}
        self._peers: set[str] = set()
        self._links: dict[str, PeerLink] = {}
        self._liveness = Liveness(config.suspect_after_rounds, config.dead_after_rounds)
        self._reassembly = Reassembly(config.transfers_per_peer_max,
                                      config.transfer_bytes_per_peer_max,
                                      config.transfer_rounds_max)
        self._next_transfer_id = 0
        self._changed: set[str] = set()
        self._rejected: collections.Counter[str] = collections.Counter()
        self._ignored: collections.Counter[str] = collections.Counter()
        self._counters: collections.Counter[str] = collections.Counter()

    # Membership and tables, set from outside (cluster configuration, Raft).

    def set_members(self, members: Iterable[str], secret: bytes | None = None) -> None:
        """The nodes that replicate the tables (this one may be listed): the
        committed member set, at start and after every change. What this
        node knows of a removed node (its links, acknowledgements, open
        transfers, liveness record) is dropped, and its frames are rejected
        as `not_member` from now on; a node added is pushed to from the next
        round. `secret`, when given, keys frames from now on (a key derived
        from the member set changes with it)."""
        peers = set(members) - {self.node_id}
        if len(peers) + 1 > limits.GOSSIP_MEMBERS_MAX:
            raise InvalidArgument(f"more than {limits.GOSSIP_MEMBERS_MAX} members",
                                  limit="GOSSIP_MEMBERS_MAX")
        if secret is not None:
            assert secret
            self._secret = secret
        for peer in self._peers - peers:
            self._links.pop(peer, None)
            self._reassembly.forget_peer(peer)
        self._peers = peers
        self._liveness.set_peers(peers, self._round)

    def create_table(self, name: str, kind: TableKind, encoded: bytes | None = None) -> None:
        """Adds a table, empty or from its encoded state (as `encoded_table`
        returned it). Creating an existing table with its kind is a no-op."""
        existing = self._tables.get(name)
        if existing is not None:
            if existing.kind != kind:
                raise AlreadyExists(f"table {name!r} exists as a {existing.kind.value}")
            return
        _check_table_name(name)
        if len(self._tables) >= limits.CRDT_TABLES_MAX:
            raise InvalidArgument(f"more than {limits.CRDT_TABLES_MAX} tables",
                                  limit="CRDT_TABLES_MAX")
        state = CRDT_TYPES[kind]() if encoded is None else decode_crdt(encoded, kind)
        self._tables[name] = TableReplica(name, kind, state, self.config.delta_buffer_entries_max,
                                          self.config.delta_buffer_bytes_max)

    def drop_table(self, name: str) -> None:
        self._tables.pop(name, None)
        self._changed.discard(name)
        for link in self._links.values():
            link.tables.pop(name, None)

    def tables(self) -> dict[str, TableKind]:
        return {name: table.kind for name, table in self._tables.items()}

    # Reads and writes.

    def read(self, name: str) -> Crdt:
        """The table's current state. The caller must not change it."""
        return self._table(name).state

    def encoded_table(self, name: str) -> bytes:
        """The table's canonical encoding, for storage."""
        return self._table(name).encoded()

    def mutate(self, now_ms: int, name: str, operation: str, *args: Any) -> Crdt:
        """Runs a mutator (e.g. "increment", "add", "put") of the table's
        type here, at a new hybrid timestamp; returns the delta it applied.
        Gossip carries it to the peers from the next round on."""
        table = self._table(name)
        if operation not in MUTATORS[table.kind]:
            raise FailedPrecondition(f"table {name!r} is a {table.kind.value}; "
                                     f"it has no {operation!r}")
        origin = Origin(self.replica_id, self._clock.now(now_ms))
        delta = getattr(table.state, operation)(origin, *args)
        if table.apply(delta):
            self._changed.add(name)
        return delta

    def take_changed(self) -> set[str]:
        """The tables changed since the last call, for the persistence layer."""
        changed, self._changed = self._changed, set()
        return changed

    # Time and the network.

    def next_round_ms(self) -> int:
        """When `tick` next has something to do."""
        return self._next_round_ms

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Runs a round if one is due; returns the frames to send."""
        if now_ms < self._next_round_ms:
            return []
        self._next_round_ms = now_ms + self.config.round_interval_ms
        self._round += 1
        self._heartbeat = self._clock.now(now_ms)
        self._reassembly.expire(self._round)
        self._forget_acknowledged_deltas()
        out: list[Outgoing] = []
        for peer in self._round_targets():
            out += self._build(peer, MessageKind.PUSH, {})
        return out

    def receive(self, now_ms: int, frame: bytes) -> list[Outgoing]:
        """Takes one frame from the network; returns the frames to send."""
        try:
            message = open_frame(frame, self._secret, self.config.message_bytes_max)
            self._admit(now_ms, message)
        except Rejected as rejected:
            self._rejected[rejected.reason] += 1
            return []
        self._counters["frames_received"] += 1
        incoming = {}
        for section in message.sections:
            if self._take_section(now_ms, message, section):
                incoming[section.table] = section
        if message.kind == MessageKind.PUSH:
            return self._build(message.sender, MessageKind.REPLY, incoming)
        if message.kind == MessageKind.REPLY:
            return self._build(message.sender, MessageKind.FINAL, incoming)
        return []

    def status(self) -> GossipStatus:
        tables = {}
        for name, table in sorted(self._tables.items()):
            entries, size = table.buffered()
            tables[name] = TableStatus(table.kind, table.digest().hex(), table.seq, entries, size)
        peers = {peer: self._liveness.status(peer, self._round) for peer in sorted(self._peers)}
        counters = dict(self._counters, transfers_open=self._reassembly.open_transfers(),
                        transfers_dropped=self._reassembly.dropped)
        return GossipStatus(self.node_id, self._round, self.incarnation, peers, tables,
                            dict(self._rejected), dict(self._ignored), counters)

    # Rounds.

    def _round_targets(self) -> list[str]:
        peers = sorted(self._peers)
        dead = [peer for peer in peers if self._liveness.state(peer, self._round) == PeerState.DEAD]
        living = [peer for peer in peers if peer not in dead]
        targets = self._rng.sample(living, min(self.config.fanout, len(living)))
        if dead:
            targets.append(self._rng.choice(dead))
        return targets

    # Bookkeeping.

    def _table(self, name: str) -> TableReplica:
        table = self._tables.get(name)
        if table is None:
            raise NotFound(f"no CRDT table {name!r} on this node")
        return table


def _check_table_name(name: str) -> None:
    size = len(name.encode("utf-8"))
    if not 1 <= size <= limits.CRDT_TABLE_NAME_BYTES_MAX:
        raise InvalidArgument(f"a table name is 1 to {limits.CRDT_TABLE_NAME_BYTES_MAX} bytes",
                              limit="CRDT_TABLE_NAME_BYTES_MAX")
