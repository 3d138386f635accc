"""Presence's pure core, case by case: the owner's log, a replica's copies,
the frames, one pair of engines.

Goal: every rule the modules state holds on its own: an owner's version
moves with every change and its transfers give a replica exactly what it
lacks (a delta while the tombstones reach back, else the full state); a
replica takes only transfers that move a copy forward, so an older copy
never brings back an untracked entry; a lapsed owner, an earlier
incarnation and an expired session leave the view, and frames that speak
for them are refused; bad input gets the status and a message that says
what to fix; a forged, misaddressed, oversized or malformed frame changes
nothing but a counter.

Method: the modules are driven directly with explicit times (ms); no clock,
no threads, no sockets.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from tandemkv.server.available.crdt import canonical
from tandemkv.server.available.gossip import wire as gossip_wire
from tandemkv.server.available.presence import (Diff, EntryId, Meta, Outcome, OwnerId, OwnerLog, PresenceEngine,
                                                Ref, Replica, apply_diff)
from tandemkv.server.available.presence import wire
from tandemkv.server.available.presence.owner import Transfer

A = OwnerId("a", 1)
B = OwnerId("b", 1)
SECRET = b"presence test secret"
TTL_MS = 10_000
DOWN_MS = limits.PRESENCE_NODE_DOWN_MS
SKEW_MS = limits.PRESENCE_CLOCK_SKEW_MS_MAX


def owner_with(entries: list[tuple[int, bytes, bytes, bytes]], now_ms: int = 0, **options) -> OwnerLog:
    log = OwnerLog(A, **options)
    for session in sorted({row[0] for row in entries}):
        log.open_session(session, TTL_MS, now_ms)
    for session, topic, key, meta in entries:
        log.track(session, topic, key, meta)
    return log


def replica_of(log: OwnerLog, now_ms: int = 0) -> Replica:
    replica = Replica(B, now_ms)
    assert replica.heard(log.owner, now_ms, now_ms)[0]
    full = log.transfer_since(0)
    if full is not None:
        assert replica.apply(full, now_ms)[0] is Outcome.APPLIED
    return replica


# -- the owner ----------------------------------------------------------------

def test_every_change_raises_the_version_once_and_says_what_it_wrote():
    log = OwnerLog(A)
    opened = log.open_session(7, TTL_MS, 100)
    assert (opened.base_version, opened.version, opened.sessions) == (0, 1, {7: 100 + TTL_MS})
    tracked = log.track(7, b"room", b"ann", b"m1")
    assert (tracked.base_version, tracked.version) == (1, 2)
    assert tracked.upserts == {EntryId(b"room", b"ann", 7): (b"m1", 2)}
    assert log.update(7, b"room", b"ann", b"m2").upserts == {EntryId(b"room", b"ann", 7): (b"m2", 3)}
    assert log.untrack(7, b"room", b"ann").removed == (EntryId(b"room", b"ann", 7),)
    assert log.untrack(7, b"room", b"ann") is None and log.version == 4
    assert log.keepalive(7, 5_000).sessions == {7: 5_000 + TTL_MS}


@pytest.mark.parametrize("call, error, says", [
    (lambda log: log.track(8, b"room", b"bob", b""), NotFound, "open a session"),
    (lambda log: log.keepalive(8, 0), NotFound, "open a session"),
    (lambda log: log.track(7, b"room", b"ann", b""), FailedPrecondition, "update it"),
    (lambda log: log.update(7, b"room", b"zed", b""), NotFound, "track it first"),
    (lambda log: log.track(7, b"", b"k", b""), InvalidArgument, "must not be empty"),
    (lambda log: log.track(7, "room", b"k", b""), InvalidArgument, "encode text as UTF-8"),
    (lambda log: log.track(7, b"r", b"k" * (limits.PRESENCE_KEY_BYTES_MAX + 1), b""), InvalidArgument,
     "PRESENCE_KEY_BYTES_MAX"),
    (lambda log: log.track(7, b"r", b"k", b"m" * (limits.PRESENCE_META_BYTES_MAX + 1)), InvalidArgument,
     "at most"),
    (lambda log: log.open_session(9, 10, 0), InvalidArgument, "TTL"),
    (lambda log: log.open_session(0, TTL_MS, 0), InvalidArgument, "session id"),
    (lambda log: log.open_session(1 << 63, TTL_MS, 0), InvalidArgument, "session id"),
])
def test_bad_requests_get_a_status_and_a_message_that_says_what_to_fix(call, error, says):
    log = owner_with([(7, b"room", b"ann", b"")])
    version = log.version
    with pytest.raises(error) as raised:
        call(log)
    assert says in str(raised.value) or says == getattr(raised.value, "limit", None)
    assert log.version == version


def test_the_per_node_bounds_refuse_with_resource_exhausted():
    log = OwnerLog(A, sessions_max=1, entries_max=2, state_bytes_max=4_000)
    log.open_session(1, TTL_MS, 0)
    with pytest.raises(ResourceExhausted, match="PRESENCE_SESSIONS_PER_NODE_MAX"):
        log.open_session(2, TTL_MS, 0)
    log.track(1, b"t", b"k1", b"")
    log.track(1, b"t", b"k2", b"")
    with pytest.raises(ResourceExhausted, match="PRESENCE_ENTRIES_PER_NODE_MAX"):
        log.track(1, b"t", b"k3", b"")
    with pytest.raises(ResourceExhausted, match="PRESENCE_NODE_STATE_BYTES_MAX"):
        log.update(1, b"t", b"k1", b"m" * 4_000)


def test_expire_ends_the_sessions_past_their_deadline_with_their_entries():
    log = owner_with([(1, b"t", b"ann", b""), (2, b"t", b"bob", b"")])
    log.keepalive(2, 5_000)
    assert log.expire(TTL_MS - 1) is None
    swept = log.expire(TTL_MS)
    assert swept.closed == (1,) and swept.removed == (EntryId(b"t", b"ann", 1),)
    assert log.deadline_ms(1) is None and log.deadline_ms(2) == 5_000 + TTL_MS


def test_a_delta_carries_the_changes_since_a_version_and_the_full_state_once_tombstones_run_out():
    log = owner_with([(1, b"t", b"k1", b"")], tombstones_max=2)
    base = log.version
    log.track(1, b"t", b"k2", b"")
    log.untrack(1, b"t", b"k1")
    delta = log.transfer_since(base)
    assert not delta.full and delta.base_version == base and delta.removed == (EntryId(b"t", b"k1", 1),)
    assert set(delta.upserts) == {EntryId(b"t", b"k2", 1)}
    log.track(1, b"t", b"k3", b"")
    log.untrack(1, b"t", b"k3")
    log.untrack(1, b"t", b"k2")   # the k1 tombstone is forgotten: a replica at `base` needs everything
    assert log.transfer_since(base).full
    assert not log.transfer_since(log.version - 1).full
    assert log.transfer_since(log.version) is None


# -- a replica ----------------------------------------------------------------

def test_list_has_phoenix_shape_one_meta_per_tracking_session_in_ref_order():
    log = owner_with([(1, b"room", b"ann", b"phone"), (2, b"room", b"ann", b"laptop"), (1, b"room", b"bob", b"")])
    listing = replica_of(log).list(b"room")
    assert listing == {b"ann": [Meta(Ref("a", 1, 1, 3), b"phone"), Meta(Ref("a", 1, 2, 4), b"laptop")],
                       b"bob": [Meta(Ref("a", 1, 1, 5), b"")]}
    assert str(listing[b"bob"][0].ref) == "a.1.1.5"


def test_an_older_transfer_never_brings_back_an_untracked_entry():
    log = owner_with([(1, b"t", b"ann", b"")])
    old_full = log.full_state()
    replica = replica_of(log)
    untracked = log.untrack(1, b"t", b"ann")
    assert replica.apply(untracked, 1)[0] is Outcome.APPLIED
    assert replica.apply(old_full, 2) == (Outcome.STALE, [])
    assert replica.list(b"t") == {}


def test_a_delta_from_a_version_the_copy_has_not_reached_is_refused():
    log = owner_with([(1, b"t", b"ann", b"")])
    replica = replica_of(log)
    log.track(1, b"t", b"bob", b"")
    skipped = log.track(1, b"t", b"cid", b"")
    assert replica.apply(skipped, 1) == (Outcome.NEEDS_BASE, [])
    assert replica.apply(log.transfer_since(replica.version_of(A)), 1)[0] is Outcome.APPLIED
    assert sorted(replica.list(b"t")) == [b"ann", b"bob", b"cid"]


def test_an_owner_whose_heartbeat_lapses_leaves_and_its_older_frames_are_refused():
    log = owner_with([(1, b"t", b"ann", b"")])
    replica = replica_of(log, now_ms=0)
    assert replica.advance(DOWN_MS - 1) == []
    diffs = replica.advance(DOWN_MS)
    assert [list(diff.leaves) for diff in diffs] == [[b"ann"]]
    assert replica.owners() == [B] and replica.list(b"t") == {}
    assert replica.heard(A, 0, DOWN_MS + 1) == (False, [])
    assert replica.apply(log.full_state(), DOWN_MS + 1)[0] is Outcome.REFUSED
    # A fresh heartbeat (the owner was only cut off) makes it an owner again, from nothing.
    assert replica.heard(A, DOWN_MS + 1, DOWN_MS + 1)[0] and replica.version_of(A) == 0


def test_a_heartbeat_from_beyond_the_skew_counts_as_now_plus_the_skew():
    replica = Replica(B, 0)
    assert replica.heard(A, 10 * DOWN_MS, 0)[0]
    assert replica.status()["owners"]["a/1"]["heartbeat_ms"] == SKEW_MS
    replica.advance(SKEW_MS + DOWN_MS)
    assert A not in replica.owners()


def test_a_later_incarnation_replaces_every_earlier_one_at_once():
    log = owner_with([(1, b"t", b"ann", b"")])
    replica = replica_of(log)
    later = OwnerId("a", 2)
    alive, diffs = replica.heard(later, 5, 5)
    assert alive and [list(diff.leaves) for diff in diffs] == [[b"ann"]]
    assert replica.heard(A, 6, 6) == (False, [])
    assert replica.owners() == [later, B]


def test_an_expired_session_hides_on_the_replica_by_its_own_clock():
    log = owner_with([(1, b"t", b"ann", b""), (2, b"t", b"bob", b"")])
    replica = replica_of(log)
    replica.heard(A, 5_000, 5_000)
    replica.apply(log.keepalive(2, 5_000), 5_000)
    diffs = replica.advance(TTL_MS)
    assert diffs == [Diff(b"t", {}, {b"ann": [Meta(Ref("a", 1, 1, 3), b"")]})]
    assert list(replica.list(b"t")) == [b"bob"]


def test_folding_the_diffs_gives_the_listing():
    log = OwnerLog(A)
    replica = Replica(B, 0)
    replica.heard(A, 0, 0)
    folded: dict = {}
    steps = [log.open_session(1, TTL_MS, 0), log.track(1, b"t", b"ann", b"x"), log.track(1, b"t", b"bob", b""),
             log.update(1, b"t", b"ann", b"y"), log.untrack(1, b"t", b"bob")]
    for step in steps:
        for diff in replica.apply(step, 1)[1]:
            folded = apply_diff(folded, diff)
        assert folded == replica.list(b"t")
    assert folded == {b"ann": [Meta(Ref("a", 1, 1, 4), b"y")]}


# -- the wire -----------------------------------------------------------------

def frame(**changes) -> wire.Frame:
    fields = dict(sender=A, recipient="b", heartbeat_ms=5, version=3, want=wire.Want(1, 2),
                  chunk=wire.Chunk(9, 0, 1, b"data"))
    fields.update(changes)
    return wire.Frame(**fields)


def test_a_frame_goes_through_its_bytes_unchanged():
    assert wire.open_frame(wire.seal(frame(), SECRET), SECRET, "b") == frame()
    assert wire.open_frame(wire.seal(frame(want=None, chunk=None), SECRET), SECRET, "b") == \
        frame(want=None, chunk=None)


def corrupt_body(data: bytes) -> bytes:
    body = canonical.encode(["a", 1, "b", 5, 3, None, [9, 2, 1, b""]])   # chunk index past its count
    version = data[:1]
    return version + hmac.new(SECRET, wire.DOMAIN_TAG + version + body, hashlib.sha256).digest() + body


@pytest.mark.parametrize("data, reason", [
    (wire.seal(frame(), b"another secret"), "bad_mac"),
    (wire.seal(frame(recipient="c"), SECRET), "misaddressed"),
    (b"\x07" + wire.seal(frame(), SECRET)[1:], "bad_version"),
    (b"", "bad_version"),
    (wire.seal(frame(chunk=wire.Chunk(1, 0, 1, b"x" * limits.PRESENCE_FRAME_BYTES_MAX)), SECRET), "too_large"),
    (corrupt_body(wire.seal(frame(), SECRET)), "malformed"),
])
def test_a_bad_frame_is_rejected_with_its_reason(data, reason):
    with pytest.raises(wire.Rejected) as rejected:
        wire.open_frame(data, SECRET, "b")
    assert rejected.value.reason == reason


def test_a_gossip_frame_of_the_crdt_plane_does_not_verify_as_presence():
    body = canonical.encode(["a", 1, "b", 5, 3, None, None])
    version = bytes([gossip_wire.GOSSIP_WIRE_VERSION])
    as_gossip = version + hmac.new(SECRET, version + body, hashlib.sha256).digest() + body
    with pytest.raises(wire.Rejected, match="bad_mac"):
        wire.open_frame(as_gossip, SECRET, "b")


def test_a_transfer_goes_through_its_bytes_and_one_that_breaks_a_limit_is_malformed():
    log = owner_with([(1, b"t", b"ann", b"m"), (2, b"u", b"bob", b"")])
    log.untrack(2, b"u", b"bob")
    for transfer in (log.full_state(), log.transfer_since(2)):
        assert wire.decode_transfer(wire.encode_transfer(transfer)) == transfer
    too_long = Transfer(A, 0, 1, True, {1: 5}, (), {EntryId(b"t", b"k" * 300, 1): (b"", 1)}, ())
    with pytest.raises(wire.Rejected, match="malformed"):
        wire.decode_transfer(wire.encode_transfer(too_long))
    with pytest.raises(wire.Rejected, match="malformed"):
        wire.decode_transfer(canonical.encode(["a", 1, 2, 2, False, [], [], [], []]))


def test_chunks_come_back_together_in_any_order_and_a_new_transfer_starts_over():
    data = bytes(range(256)) * 1_000
    chunks = wire.cut(5, data, frame_bytes_max=8 * 1024)
    assert len(chunks) > 30
    reassembly = wire.Reassembly(frame_bytes_max=8 * 1024)
    assert all(reassembly.add(A, chunk) is None for chunk in reversed(chunks[1:]))
    assert reassembly.add(A, chunks[0]) == data
    assert reassembly.add(A, chunks[0]) is None
    other = wire.cut(6, data, frame_bytes_max=8 * 1024)
    for chunk in other[:-1]:
        assert reassembly.add(A, chunk) is None
    assert reassembly.abandoned == 1 and reassembly.add(A, other[-1]) == data
    with pytest.raises(wire.Rejected, match="too_large"):
        wire.Reassembly(transfer_bytes_max=20_000, frame_bytes_max=8 * 1024).add(A, wire.Chunk(1, 0, 10, b""))


# -- two engines --------------------------------------------------------------

def exchange(engines: dict[str, PresenceEngine], outputs: list, now_ms: int) -> None:
    """Delivers every frame, and what it provokes, until nothing is left."""
    queue = [item for output in outputs for item in output.frames]
    for _ in range(10_000):
        if not queue:
            return
        peer, data = queue.pop(0)
        queue += engines[peer].receive(data, now_ms).frames
    raise AssertionError("frames never stopped")


def test_a_peer_that_missed_everything_catches_up_by_want_and_a_large_state_goes_in_chunks():
    small = 4 * 1024
    a = PresenceEngine(A, SECRET, 0, {"b"}, frame_bytes_max=small)
    b = PresenceEngine(B, SECRET, 0, {"a"}, frame_bytes_max=small)
    a.open_session(1, TTL_MS, 0)
    for index in range(200):
        a.track(1, b"room", b"user%d" % index, b"meta" * 10, 0)
    a.tick(0)                          # the push is lost
    assert b.list(b"room") == {}
    exchange({"a": a, "b": b}, [a.tick(1_000)], 1_000)   # the heartbeat shows b is behind
    assert b.list(b"room") == a.list(b"room") and len(b.list(b"room")) == 200
    assert b.counters["wants_out"] == 1 and a.counters["wants_in"] == 1


def test_an_engine_refuses_frames_from_strangers_and_counts_bad_ones():
    a = PresenceEngine(A, SECRET, 0, {"b"})
    stranger = PresenceEngine(OwnerId("z", 1), SECRET, 0, {"a"})
    for _, data in stranger.tick(0).frames:
        a.receive(data, 0)
    a.receive(b"\x01" + b"\x00" * 40, 0)
    assert a.counters["refused_sender"] == 1 and a.counters["rejected_bad_mac"] == 1
    assert a.replica.owners() == [A]
