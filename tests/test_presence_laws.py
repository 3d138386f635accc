"""The laws of presence's state, over any history hypothesis can draw.

Goal:
- a delta is exact: a copy of an owner at any past version, given what the
  owner says it lacks (`transfer_since`), becomes the owner's state;
- a copy only ever moves forward along its owner's history: whatever its
  transfers' order, duplicates and losses, after every step a copy is
  exactly the owner's state at the copy's version (so nothing untracked
  comes back), and one catch-up makes it the owner's current state;
- the diffs a replica returns, folded from an empty listing, give its
  `list` after every step, with time passing and sessions expiring;
- frames and transfers survive their encoding.

Method: hypothesis draws an owner's history (sessions opened, renewed,
closed; entries tracked, updated, untracked; time moving, sessions
expiring) and the order transfers reach a replica in; every snapshot of the
owner is kept to compare with.
"""

from __future__ import annotations

from hypothesis import example, given, settings, strategies as st

from tandemkv.errors import TandemKVError
from tandemkv.server.available.presence import OwnerId, OwnerLog, Replica, apply_diff
from tandemkv.server.available.presence import wire

A = OwnerId("a", 3)
B = OwnerId("b", 1)
TTL_MS = 1_000
TOPICS = (b"t", b"u")
KEYS = (b"k1", b"k2", b"k3")

sessions = st.integers(1, 3)
operations = st.lists(st.one_of(
    st.tuples(st.just("open"), sessions),
    st.tuples(st.just("keepalive"), sessions),
    st.tuples(st.just("close"), sessions),
    st.tuples(st.just("track"), sessions, st.sampled_from(TOPICS), st.sampled_from(KEYS), st.binary(max_size=3)),
    st.tuples(st.just("update"), sessions, st.sampled_from(TOPICS), st.sampled_from(KEYS), st.binary(max_size=3)),
    st.tuples(st.just("untrack"), sessions, st.sampled_from(TOPICS), st.sampled_from(KEYS)),
    st.tuples(st.just("wait"), st.integers(1, 600)),
), max_size=40)


def run(log: OwnerLog, history: list[tuple]) -> tuple[list, dict[int, object], int]:
    """Plays `history` on `log`: the transfers it made, the full state at
    every version, and the clock at the end."""
    now_ms = 0
    transfers = []
    snapshots = {0: log.full_state()}
    for operation in history:
        name, *args = operation
        try:
            if name == "wait":
                now_ms += args[0]
                made = log.expire(now_ms)
            elif name == "open":
                made = log.open_session(args[0], TTL_MS, now_ms)
            elif name == "keepalive":
                made = log.keepalive(args[0], now_ms)
            elif name == "close":
                made = log.close_session(args[0])
            else:
                made = getattr(log, name)(*args)
        except TandemKVError:
            made = None
        if made is not None:
            transfers.append(made)
            snapshots[log.version] = log.full_state()
    return transfers, snapshots, now_ms


def fresh_replica() -> Replica:
    replica = Replica(B, 0, node_down_ms=10**12)
    assert replica.heard(A, 0, 0)[0]
    return replica


def same_state(replica: Replica, snapshot) -> bool:
    held = replica.copy_state(A)
    return (held.version, held.sessions, held.upserts) == (snapshot.version, snapshot.sessions, snapshot.upserts)


@settings(max_examples=150, deadline=None)
@given(operations, st.integers(0, 10), st.integers(1, 3))
# A removal whose tombstone is gone: the replica at version 2 needs the full state.
@example([("open", 1), ("track", 1, b"t", b"k1", b""), ("untrack", 1, b"t", b"k1"),
          ("track", 1, b"t", b"k2", b""), ("untrack", 1, b"t", b"k2")], 2, 1)
def test_a_copy_at_any_past_version_plus_what_the_owner_says_it_lacks_is_the_owner(history, pick, tombstones):
    log = OwnerLog(A, tombstones_max=tombstones)
    _, snapshots, _ = run(log, history)
    base = sorted(snapshots)[pick % len(snapshots)]
    replica = fresh_replica()
    if base:
        replica.apply(snapshots[base], 0)
    lacking = log.transfer_since(base)
    if lacking is not None:
        replica.apply(lacking, 0)
        assert lacking.full or lacking.base_version == base
    assert same_state(replica, snapshots[log.version])
    if log.version:
        assert wire.decode_transfer(wire.encode_transfer(log.full_state())) == log.full_state()


@settings(max_examples=150, deadline=None)
@given(operations, st.data())
def test_a_copy_is_always_a_past_state_of_its_owner_whatever_the_order_and_one_catch_up_ends_it(history, data):
    log = OwnerLog(A)
    transfers, snapshots, _ = run(log, history)
    delivered = data.draw(st.lists(st.sampled_from(transfers), max_size=3 * len(transfers)) if transfers
                          else st.just([]))
    replica = fresh_replica()
    version = 0
    for transfer in delivered:
        replica.apply(transfer, 0)
        assert replica.version_of(A) >= version
        version = replica.version_of(A)
        assert same_state(replica, snapshots[version])
    lacking = log.transfer_since(replica.version_of(A))
    if lacking is not None:
        replica.apply(lacking, 0)
    assert same_state(replica, snapshots[log.version])


@settings(max_examples=150, deadline=None)
@given(operations, st.integers(0, 1_500))
def test_the_diffs_folded_from_nothing_are_the_listing_at_every_step(history, replica_lag_ms):
    log = OwnerLog(A)
    replica = fresh_replica()
    folded = {topic: {} for topic in TOPICS}
    transfers, _, end_ms = run(log, history)
    clock_ms = 0
    for transfer in transfers + [None]:
        clock_ms = min(clock_ms + replica_lag_ms // 4, end_ms + replica_lag_ms)
        diffs = replica.advance(clock_ms) if transfer is None else replica.apply(transfer, clock_ms)[1]
        for diff in diffs:
            assert not diff.is_empty()
            folded[diff.topic] = apply_diff(folded[diff.topic], diff)
        for topic in TOPICS:
            assert folded[topic] == replica.list(topic)
            for key, metas in replica.list(topic).items():
                assert len({meta.ref.session for meta in metas}) == len(metas)   # one per session


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
       st.one_of(st.none(), st.tuples(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))),
       st.one_of(st.none(), st.tuples(st.integers(0, 9), st.integers(1, 10), st.binary(max_size=50))))
def test_every_frame_survives_its_bytes(node, heartbeat_ms, version, want, chunk):
    frame = wire.Frame(OwnerId(node, 5), "b", heartbeat_ms, version,
                       None if want is None else wire.Want(*want),
                       None if chunk is None or chunk[0] >= chunk[1] else wire.Chunk(1, *chunk))
    assert wire.open_frame(wire.seal(frame, b"k"), b"k", "b") == frame
