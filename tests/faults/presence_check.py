"""Checks a presence fault run's record: no entry outlives its bound, and
after the heal every node lists the same entries as the model.

Pure: it takes what the workload recorded (presence_workload.py) and the
nemesis's faults, opens no socket and starts nothing. Times are seconds
since the run started, on the one clock every process of the run shares.

What a listed entry is. Every entry a node lists names its write by its
ref, `node.incarnation.session.version` (hex). The clients record every
session they opened and every write they sent, with its ref when it was
acknowledged; a write of unknown outcome makes its client close the
session (and stop writing in it), so an entry is either an acknowledged
write's or a write of unknown outcome in a session that then ended.

When it must be gone: at the earliest of these, plus `margin_s` for a
loaded machine (a list answered late, a tick not yet run):

- replaced or removed: the next acknowledged update or untrack of the same
  key in the session, or the session's acknowledged close, + the down
  bound + skew (a node cut off from the owner drops it by then; one that
  hears the owner learns the removal sooner);
- lease: the latest time any renewal of the session may have been applied,
  + its TTL + skew. An acknowledged renewal was applied by its answer; one
  of unknown outcome by the end of its call, or, if its node was paused
  meanwhile, by the end of that pause (a paused node takes its requests
  when it resumes);
- the owner killed: the kill + the down bound + skew;
- the owner stopped cleanly (SIGTERM): when its process had exited (its
  goodbye reached every peer, or was given up, before it exited).

An observation counts against a bound only if its request was sent after
the bound (the node answered some time between sending and receiving).

After the heal (`check_converged`): every node answered, their lists are
equal, and equal to the model (the entries of sessions still held, as
their last acknowledged writes left them) by the bound
`convergence_deadline` computes.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from tandemkv import limits

DOWN_S = limits.PRESENCE_NODE_DOWN_MS / 1000
SKEW_S = limits.PRESENCE_CLOCK_SKEW_MS_MAX / 1000
# How long after the heal a node may take to repair what it missed: heartbeats, a want/transfer round trip.
REPAIR_S = 3 * limits.PRESENCE_HEARTBEAT_MS / 1000
# What a loaded shared machine may add to any bound.
MARGIN_S = 3.0
# Violations reported at most (the count is always exact).
VIOLATIONS_SHOWN_MAX = 20

# Outcomes of a call.
OK, FAILED, UNKNOWN = "ok", "failed", "unknown"
# How a session ended; HELD: still renewed when the run ended.
HELD, CLOSED, LOST, ABANDONED = "held", "closed", "lost", "abandoned"

Listing = dict[str, list[tuple[str, str]]]   # key -> [(ref, meta)] sorted


@dataclasses.dataclass
class Call:
    kind: str            # open, keepalive, track, update, untrack, close
    start_s: float
    end_s: float
    outcome: str         # OK, FAILED (surely not applied) or UNKNOWN
    topic: str = ""
    key: str = ""
    meta: str = ""
    ref: str = ""        # of an acknowledged track or update


@dataclasses.dataclass
class Session:
    session: int
    node: str
    ttl_s: float
    calls: list[Call] = dataclasses.field(default_factory=list)
    end: str = HELD
    end_s: float | None = None


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    targets: tuple[str, ...]
    start_s: float
    applied_s: float     # the fault was in place by then
    end_s: float         # healed by then


@dataclasses.dataclass(frozen=True)
class Observation:
    node: str
    topic: str
    sent_s: float
    received_s: float
    listing: Listing


def parse_ref(ref: str) -> tuple[str, int, int, int]:
    node, incarnation, session, version = ref.rsplit(".", 3)
    return node, int(incarnation, 16), int(session, 16), int(version, 16)


def _applied_by(call: Call, node: str, faults: list[Fault]) -> float | None:
    """The latest time `call` may have been applied; None if it surely was not."""
    if call.outcome == FAILED:
        return None
    if call.outcome == OK:
        return call.end_s
    paused = [f.end_s for f in faults if f.kind == "pause" and node in f.targets
              and f.start_s <= call.end_s and f.end_s >= call.start_s]
    return max([call.end_s, *paused])


def lease_end_s(session: Session, faults: list[Fault]) -> float:
    """When the session's last possible deadline passes (without the skew)."""
    applied = [_applied_by(c, session.node, faults) for c in session.calls if c.kind in ("open", "keepalive")]
    return max(a for a in applied if a is not None) + session.ttl_s


def owner_gone_s(node: str, after_s: float, faults: list[Fault]) -> float | None:
    """By when the first kill or clean stop of `node` after `after_s` must
    have taken its entries off the other nodes (before the margin)."""
    gone = [f.applied_s + (DOWN_S + SKEW_S if f.kind == "kill" else 0.0) for f in faults
            if f.kind in ("kill", "stop") and node in f.targets and f.applied_s >= after_s]
    return min(gone, default=None)


def entry_bound_s(session: Session, write: Call, faults: list[Fault]) -> float:
    """When the entry `write` made must be gone from every node (before the margin)."""
    bounds = [lease_end_s(session, faults) + SKEW_S]
    later = session.calls[session.calls.index(write) + 1:]
    for call in later:
        if call.outcome == OK and (call.kind == "close" or (call.kind in ("update", "untrack")
                                                            and (call.topic, call.key) == (write.topic, write.key))):
            bounds.append(call.end_s + DOWN_S + SKEW_S)
            break
    gone = owner_gone_s(session.node, session.calls[0].end_s, faults)
    if gone is not None:
        bounds.append(gone)
    return min(bounds)


@dataclasses.dataclass
class Verdict:
    violations: int = 0
    shown: list[str] = dataclasses.field(default_factory=list)
    entries_checked: int = 0

    def add(self, message: str) -> None:
        self.violations += 1
        if len(self.shown) < VIOLATIONS_SHOWN_MAX:
            self.shown.append(message)


def _writes_by_ref(sessions: Iterable[Session]) -> dict[str, tuple[Session, Call]]:
    return {call.ref: (session, call) for session in sessions for call in session.calls if call.ref}


def _write_of(ref: str, topic: str, key: str, by_ref: dict, by_id: dict[int, Session]) -> tuple | None:
    """The acknowledged write that made `ref`, or a write of unknown outcome that may have."""
    if ref in by_ref:
        return by_ref[ref]
    session = by_id.get(parse_ref(ref)[2])
    if session is None:
        return None
    maybe = [c for c in session.calls if c.outcome == UNKNOWN and c.kind in ("track", "update")
             and (c.topic, c.key) == (topic, key)]
    return (session, maybe[-1]) if maybe else None


def check_bounds(sessions: list[Session], observations: list[Observation], faults: list[Fault],
                 margin_s: float = MARGIN_S) -> Verdict:
    """Every listed entry was written by a recorded write before it was
    listed, and was not listed after its bound (module docs)."""
    verdict = Verdict()
    by_ref = _writes_by_ref(sessions)
    by_id = {session.session: session for session in sessions}
    bounds: dict[str, float] = {}
    for seen in observations:
        for key, metas in seen.listing.items():
            for ref, _ in metas:
                verdict.entries_checked += 1
                found = _write_of(ref, seen.topic, key, by_ref, by_id)
                if found is None:
                    verdict.add(f"{seen.node} listed {seen.topic}/{key} {ref} at {seen.sent_s:.2f}: no client wrote it")
                    continue
                session, write = found
                if write.start_s > seen.received_s:
                    verdict.add(f"{seen.node} listed {ref} at {seen.received_s:.2f}, before its write was sent "
                                f"({write.start_s:.2f})")
                if ref not in bounds:
                    bounds[ref] = entry_bound_s(session, write, faults) + margin_s
                if seen.sent_s > bounds[ref]:
                    verdict.add(f"{seen.node} listed {seen.topic}/{key} {ref} at {seen.sent_s:.2f}, past its bound "
                                f"{bounds[ref]:.2f} (session {session.session:x} on {session.node}, ended "
                                f"{session.end} at {session.end_s})")
    return verdict


def model(sessions: list[Session], topic: str) -> Listing:
    """What every node should list for `topic`: the held sessions' entries
    as their last acknowledged writes left them."""
    listing: dict[str, list[tuple[str, str]]] = {}
    for session in sessions:
        if session.end != HELD:
            continue
        current: dict[str, tuple[str, str]] = {}
        for call in session.calls:
            if call.outcome != OK or call.topic != topic:
                continue
            if call.kind in ("track", "update"):
                current[call.key] = (call.ref, call.meta)
            elif call.kind == "untrack":
                current.pop(call.key, None)
        for key, meta in current.items():
            listing.setdefault(key, []).append(meta)
    return {key: sorted(metas) for key, metas in listing.items()}


def convergence_deadline(sessions: list[Session], faults: list[Fault], healed_s: float,
                         margin_s: float = MARGIN_S) -> float:
    """By when, after the last heal at `healed_s`, every node must list the
    model: repair after the heal, and every ended session's entries gone."""
    deadline = healed_s + REPAIR_S
    for session in sessions:
        if session.end == HELD:
            continue
        gone = [lease_end_s(session, faults) + SKEW_S]
        owner_gone = owner_gone_s(session.node, session.calls[0].end_s, faults)
        if owner_gone is not None:
            gone.append(owner_gone)
        closes = [c.end_s for c in session.calls if c.kind == "close" and c.outcome == OK]
        if closes:
            gone.append(max(healed_s, closes[0]) + REPAIR_S)
        deadline = max(deadline, min(gone))
    return deadline + margin_s


def differences(expected: Listing, listings: dict[str, Listing | None]) -> list[str]:
    """How each node's listing differs from `expected` (empty: all equal it)."""
    found = []
    for node, listing in sorted(listings.items()):
        if listing is None:
            found.append(f"{node}: no answer")
            continue
        extra = {k: v for k, v in listing.items() if expected.get(k) != v}
        missing = {k: v for k, v in expected.items() if listing.get(k) != v}
        if extra or missing:
            found.append(f"{node}: lists {extra} where the model has {missing}")
    return found
