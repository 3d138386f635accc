"""One node's presence, without I/O: its own entries (an OwnerLog), its view
of everyone's (a Replica), and the frames it exchanges with its peers.

Three verbs, sans-I/O style: the caller changes this node's entries
(`open_session` ... `untrack`), feeds frames in (`receive`) and lets time
pass (`tick`); each returns the frames to send, addressed by peer name,
and the diffs of this node's view. The running part only moves the bytes
(over the UDP gossip transport or the pub/sub relay) and calls `tick` often
(every few tens of ms); it never decides anything.

The exchange, between this node and each peer:

- every PRESENCE_HEARTBEAT_MS a heartbeat: this node's clock and version;
- at the first tick after a local change, the delta since the last push to
  every peer (a node's changes cross to each peer once, from the owner);
- a peer whose copy is behind the version a heartbeat names asks for the
  changes after its own version (`want`), at most once per two heartbeat
  periods per owner, and gets a delta, or the full state when the owner's
  tombstones no longer reach back that far (a restarted replica, a long
  partition). Lost frames cost a round; nothing else depends on them.
- when the node stops cleanly, a goodbye (`goodbye`): every peer drops this
  incarnation's entries at once and refuses its frames from then on, and
  this engine sends nothing more. A peer that misses it drops them by
  PRESENCE_NODE_DOWN_MS, as for a node that died.

This module knows no sockets, threads or clock; time comes in as `now_ms`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tandemkv import limits
from tandemkv.errors import Unavailable

from tandemkv.server.available.presence.model import Diff, Listing, OwnerId
from tandemkv.server.available.presence.owner import OwnerLog, Transfer
from tandemkv.server.available.presence.replica import Outcome, Replica
from tandemkv.server.available.presence.wire import (Chunk, Frame, Reassembly, Rejected, Want, cut,
                                                     decode_transfer, encode_transfer, open_frame, seal)


# `list` is a method of PresenceEngine, so inside it the builtin's type goes by this name.
Diffs = list[Diff]


@dataclass(slots=True)
class Output:
    """What a call asks the caller to do: send `frames` (peer, bytes), and
    hand `diffs` to this node's watchers, in order."""

    frames: list[tuple[str, bytes]] = field(default_factory=list)
    diffs: Diffs = field(default_factory=list)


class PresenceEngine:
    def __init__(self, owner: OwnerId, secret: bytes, now_ms: int, peers: Iterable[str] = (), *,
                 heartbeat_ms: int = limits.PRESENCE_HEARTBEAT_MS,
                 node_down_ms: int = limits.PRESENCE_NODE_DOWN_MS,
                 clock_skew_ms_max: int = limits.PRESENCE_CLOCK_SKEW_MS_MAX,
                 frame_bytes_max: int = limits.PRESENCE_FRAME_BYTES_MAX,
                 tombstones_max: int = limits.PRESENCE_TOMBSTONES_MAX):
        assert node_down_ms >= 2 * heartbeat_ms, "a node is gone only after two missed heartbeats at least"
        self.owner = owner
        self._secret = secret
        self._heartbeat_ms = heartbeat_ms
        self._frame_bytes_max = frame_bytes_max
        self.log = OwnerLog(owner, tombstones_max=tombstones_max)
        self.replica = Replica(owner, now_ms, node_down_ms=node_down_ms, clock_skew_ms_max=clock_skew_ms_max)
        self._reassembly = Reassembly(frame_bytes_max=frame_bytes_max)
        self._peers = set(peers) - {owner.node}
        self._pushed_version = 0
        self._heartbeat_sent_ms: int | None = None
        self._wanted_ms: dict[OwnerId, int] = {}
        self._next_transfer_id = 1
        # Set by `goodbye`: this incarnation has left its peers and sends nothing more.
        self.departed = False
        self.counters: dict[str, int] = {"frames_in": 0, "frames_out": 0, "transfers_in": 0, "transfers_out": 0,
                                         "wants_in": 0, "wants_out": 0, "refused_sender": 0, "goodbyes_in": 0}

    # -- this node's entries ---------------------------------------------

    def open_session(self, session: int, ttl_ms: int, now_ms: int) -> Diffs:
        self._check_staying()
        return self._local(self.log.open_session(session, ttl_ms, now_ms), now_ms)

    def keepalive(self, session: int, now_ms: int) -> Diffs:
        self._check_staying()
        return self._local(self.log.keepalive(session, now_ms), now_ms)

    def close_session(self, session: int, now_ms: int) -> Diffs:
        return self._local(self.log.close_session(session), now_ms)

    def track(self, session: int, topic: bytes, key: bytes, meta: bytes, now_ms: int) -> Diffs:
        self._check_staying()
        return self._local(self.log.track(session, topic, key, meta), now_ms)

    def update(self, session: int, topic: bytes, key: bytes, meta: bytes, now_ms: int) -> Diffs:
        self._check_staying()
        return self._local(self.log.update(session, topic, key, meta), now_ms)

    def untrack(self, session: int, topic: bytes, key: bytes, now_ms: int) -> Diffs:
        return self._local(self.log.untrack(session, topic, key), now_ms)

    def list(self, topic: bytes) -> Listing:
        """key -> one meta per tracking session, as of the last call."""
        return self.replica.list(topic)

    # -- time and frames --------------------------------------------------

    def set_peers(self, peers: Iterable[str], now_ms: int, secret: bytes | None = None) -> Diffs:
        """Follows the committed member set (`peers`: the other members; none
        when this node is not a member). A peer added gets the full state
        when its heartbeat shows it has nothing; a peer removed has its
        entries dropped from this view now (the diffs say so) and its
        frames refused from now on. `secret`, when given, keys frames from
        now on."""
        self._peers = set(peers) - {self.owner.node}
        if secret is not None:
            assert secret
            self._secret = secret
        kept = self._peers | {self.owner.node}
        for owner in [owner for owner in self._wanted_ms if owner.node not in kept]:
            del self._wanted_ms[owner]
        self._reassembly.keep_only({owner for owner in self.replica.owners() if owner.node in kept})
        return self.replica.keep_nodes(kept, now_ms)

    def advance(self, now_ms: int) -> Diffs:
        """Lets time pass without sending anything: sessions past their
        deadline end, owners whose heartbeat lapsed leave. `tick` does it
        first; a reader calls it so that what it reads is as of now."""
        diffs: Diffs = []
        expired = self.log.expire(now_ms)
        if expired is not None:
            diffs += self._local(expired, now_ms)
        return diffs + self.replica.advance(now_ms)

    def tick(self, now_ms: int) -> Output:
        out = Output(diffs=self.advance(now_ms))
        self._reassembly.keep_only(set(self.replica.owners()))
        if self.departed:
            return out
        if self.log.version > self._pushed_version:
            transfer = self.log.transfer_since(self._pushed_version)
            assert transfer is not None
            for peer in sorted(self._peers):
                self._send_transfer(out, peer, transfer, now_ms)
            self._pushed_version = self.log.version
        if self._heartbeat_sent_ms is None or now_ms - self._heartbeat_sent_ms >= self._heartbeat_ms:
            self._heartbeat_sent_ms = now_ms
            for peer in sorted(self._peers):
                self._send(out, Frame(self.owner, peer, now_ms, self.log.version))
        return out

    def receive(self, data: bytes, now_ms: int) -> Output:
        """Takes one frame from a peer. A refused frame changes nothing but
        a counter (its reason, in `counters`)."""
        out = Output()
        self.counters["frames_in"] += 1
        try:
            frame = open_frame(data, self._secret, self.owner.node, self._frame_bytes_max)
        except Rejected as rejected:
            self._count(f"rejected_{rejected.reason}")
            return out
        sender = frame.sender
        if sender.node not in self._peers:
            self.counters["refused_sender"] += 1
            return out
        if frame.goodbye:
            self.counters["goodbyes_in"] += 1
            self._reassembly.forget(sender)
            self._wanted_ms.pop(sender, None)
            said, diffs = self.replica.farewell(sender, frame.heartbeat_ms, now_ms)
            out.diffs += diffs
            self.counters["refused_sender"] += not said
            return out
        alive, diffs = self.replica.heard(sender, frame.heartbeat_ms, now_ms)
        out.diffs += diffs
        if not alive:
            self.counters["refused_sender"] += 1
            self._reassembly.forget(sender)
            return out
        if frame.want is not None and frame.want.incarnation == self.owner.incarnation:
            self.counters["wants_in"] += 1
            transfer = self.log.transfer_since(frame.want.have_version)
            if transfer is not None:
                self._send_transfer(out, sender.node, transfer, now_ms)
        if frame.chunk is not None:
            self._take_chunk(out, sender, frame.chunk, now_ms)
        elif self.replica.version_of(sender) < frame.version:
            self._maybe_want(out, sender, now_ms, urgent=False)
        return out

    def goodbye(self, now_ms: int) -> Output:
        """This node stops cleanly: a goodbye frame to every peer, which
        drops this incarnation's entries on receipt and refuses its frames
        from then on. Afterwards the engine sends nothing (ticks and
        answers to wants go nowhere: a heartbeat would keep it alive on a
        peer that missed the goodbye), and opening, renewing, tracking and
        updating raise Unavailable; untrack and close still work locally.
        Called once; a second call sends nothing."""
        out = Output(diffs=self.advance(now_ms))
        if self.departed:
            return out
        self.departed = True
        for peer in sorted(self._peers):
            self._send(out, Frame(self.owner, peer, now_ms, self.log.version, goodbye=True), departing=True)
        return out

    def status(self) -> dict[str, object]:
        return {"owner": f"{self.owner.node}/{self.owner.incarnation:x}", "log": self.log.status(),
                "replica": self.replica.status(), "reassembly_abandoned": self._reassembly.abandoned,
                "departed": self.departed, **self.counters}

    # -- inside -----------------------------------------------------------

    def _check_staying(self) -> None:
        if self.departed:
            raise Unavailable("this node is stopping (its presence has said goodbye to its peers): "
                              "open a session on another node")

    def _local(self, transfer: Transfer | None, now_ms: int) -> Diffs:
        if transfer is None:
            return self.replica.advance(now_ms)
        outcome, diffs = self.replica.apply(transfer, now_ms)
        assert outcome is Outcome.APPLIED, outcome
        return diffs

    def _take_chunk(self, out: Output, sender: OwnerId, chunk: Chunk, now_ms: int) -> None:
        try:
            data = self._reassembly.add(sender, chunk)
            if data is None:
                return
            transfer = decode_transfer(data)
        except Rejected as rejected:
            self._count(f"rejected_{rejected.reason}")
            return
        if transfer.owner != sender:
            self._count("rejected_not_owner")
            return
        self.counters["transfers_in"] += 1
        outcome, diffs = self.replica.apply(transfer, now_ms)
        out.diffs += diffs
        if outcome is Outcome.NEEDS_BASE:
            self._maybe_want(out, sender, now_ms, urgent=True)

    def _maybe_want(self, out: Output, owner: OwnerId, now_ms: int, urgent: bool) -> None:
        last = self._wanted_ms.get(owner)
        if not urgent and last is not None and now_ms - last < 2 * self._heartbeat_ms:
            return
        self._wanted_ms[owner] = now_ms
        if len(self._wanted_ms) > 2 * len(self.replica.owners()) + 8:
            live = set(self.replica.owners())
            self._wanted_ms = {known: at for known, at in self._wanted_ms.items() if known in live}
        self.counters["wants_out"] += 1
        want = Want(owner.incarnation, self.replica.version_of(owner))
        self._send(out, Frame(self.owner, owner.node, now_ms, self.log.version, want=want))

    def _send_transfer(self, out: Output, peer: str, transfer: Transfer, now_ms: int) -> None:
        transfer_id, self._next_transfer_id = self._next_transfer_id, self._next_transfer_id + 1
        self.counters["transfers_out"] += 1
        for chunk in cut(transfer_id, encode_transfer(transfer), self._frame_bytes_max):
            self._send(out, Frame(self.owner, peer, now_ms, self.log.version, chunk=chunk))

    def _send(self, out: Output, frame: Frame, departing: bool = False) -> None:
        if self.departed and not departing:
            return  # after the goodbye, nothing: peers refuse it, and a heartbeat would revive this owner
        self.counters["frames_out"] += 1
        data = seal(frame, self._secret)
        assert len(data) <= self._frame_bytes_max, len(data)
        out.frames.append((frame.recipient, data))

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
