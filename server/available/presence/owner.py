"""The owner's side: the sessions and entries tracked through this node, the
only place they change, and the transfers that carry them to replicas.

The owner's state has one counter, `version`, raised once by every change
(a session opened, renewed or closed, an entry tracked, updated or
untracked, expired sessions swept). Each entry and each session remembers
the version that last wrote it, and each removal leaves a tombstone with the
version that removed it. So the owner can say what changed after any
version a replica has: the entries and sessions written since, and the
removals since (a delta), or, when that replica is further behind than the
tombstones reach, everything (the full state). A replica keeps one version
per owner and takes only transfers that move it forward, so a stale copy
can never bring back an untracked entry: there is no log to replay and no
causal context to keep, only a number.

A session is a lease: it holds entries while its client renews it
(`keepalive`) within its TTL. `expire(now)` removes the sessions whose
deadline passed, with their entries. Deadlines are in the owner's clock and
travel with the session, so every replica hides an expired session's
entries by its own clock too, without waiting for the owner's sweep.

This module knows no I/O and no clock: time comes in as `now_ms`.
"""

from __future__ import annotations

import collections
import heapq
from dataclasses import dataclass, field

from tandemkv import limits
from tandemkv.errors import FailedPrecondition, NotFound, ResourceExhausted

from tandemkv.server.available.presence.model import (EntryId, OwnerId, check_key, check_meta, check_session,
                                                      check_topic, check_ttl_ms, entry_bytes)


@dataclass(frozen=True, slots=True)
class Transfer:
    """What a replica needs to bring its copy of `owner` from `base_version`
    to `version`. A full transfer replaces the copy whatever its version; a
    delta applies only to a copy at `base_version` or later."""

    owner: OwnerId
    base_version: int
    version: int
    full: bool
    sessions: dict[int, int] = field(default_factory=dict)      # session -> deadline, owner's clock (ms)
    closed: tuple[int, ...] = ()                                 # sessions gone since the base
    upserts: dict[EntryId, tuple[bytes, int]] = field(default_factory=dict)  # -> (meta, version written)
    removed: tuple[EntryId, ...] = ()                            # entries gone since the base


@dataclass(slots=True)
class _Session:
    ttl_ms: int
    expires_at_ms: int
    version: int
    entries: set[EntryId] = field(default_factory=set)


class OwnerLog:
    """The authoritative state of one node incarnation's entries."""

    def __init__(self, owner: OwnerId, *, tombstones_max: int = limits.PRESENCE_TOMBSTONES_MAX,
                 sessions_max: int = limits.PRESENCE_SESSIONS_PER_NODE_MAX,
                 entries_max: int = limits.PRESENCE_ENTRIES_PER_NODE_MAX,
                 state_bytes_max: int = limits.PRESENCE_NODE_STATE_BYTES_MAX):
        assert tombstones_max >= 1
        self.owner = owner
        self.version = 0
        self._sessions: dict[int, _Session] = {}
        self._entries: dict[EntryId, tuple[bytes, int]] = {}
        # (deadline, session) at each open and renewal, so a tick finds the
        # expired sessions without looking at every one; a row whose session
        # was renewed or closed since is skipped when it comes due.
        self._deadlines: list[tuple[int, int]] = []
        # ("s", session) or ("e", EntryId) -> the version that removed it, oldest first.
        self._tombstones: collections.OrderedDict[tuple, int] = collections.OrderedDict()
        # A delta from a base below this would miss a forgotten removal.
        self._delta_floor = 0
        self._bytes = 0
        self._tombstones_max = tombstones_max
        self._sessions_max = sessions_max
        self._entries_max = entries_max
        self._state_bytes_max = state_bytes_max

    # -- sessions ---------------------------------------------------------

    def open_session(self, session: int, ttl_ms: int, now_ms: int) -> Transfer:
        """Opens `session` with a lease of `ttl_ms` from now (or renews it
        with that TTL, if it is open)."""
        check_session(session)
        check_ttl_ms(ttl_ms)
        if session not in self._sessions and len(self._sessions) >= self._sessions_max:
            raise ResourceExhausted(f"this node holds {self._sessions_max} presence sessions, the most it "
                                    f"may (PRESENCE_SESSIONS_PER_NODE_MAX): close idle ones or use another node")
        self._bump()
        state = self._sessions.get(session)
        if state is None:
            self._sessions[session] = state = _Session(ttl_ms, now_ms + ttl_ms, self.version)
            self._tombstones.pop(("s", session), None)
        state.ttl_ms, state.expires_at_ms, state.version = ttl_ms, now_ms + ttl_ms, self.version
        heapq.heappush(self._deadlines, (state.expires_at_ms, session))
        return self._delta(sessions={session: state.expires_at_ms})

    def keepalive(self, session: int, now_ms: int) -> Transfer:
        """Moves `session`'s deadline to now + its TTL."""
        state = self._session(session)
        self._bump()
        state.expires_at_ms, state.version = now_ms + state.ttl_ms, self.version
        heapq.heappush(self._deadlines, (state.expires_at_ms, session))
        return self._delta(sessions={session: state.expires_at_ms})

    def close_session(self, session: int) -> Transfer | None:
        """Ends `session` and untracks its entries; None if it is not open."""
        if session not in self._sessions:
            return None
        self._bump()
        removed = self._drop_session(session)
        return self._delta(closed=(session,), removed=removed)

    def expire(self, now_ms: int) -> Transfer | None:
        """Ends every session whose deadline is at or before `now_ms`, with
        its entries; None if none has."""
        due: set[int] = set()
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            _, session = heapq.heappop(self._deadlines)
            state = self._sessions.get(session)
            if state is not None and state.expires_at_ms <= now_ms:
                due.add(session)
        expired = sorted(due)
        if not expired:
            return None
        self._bump()
        removed: list[EntryId] = []
        for session in expired:
            removed += self._drop_session(session)
        return self._delta(closed=tuple(expired), removed=tuple(removed))

    def deadline_ms(self, session: int) -> int | None:
        state = self._sessions.get(session)
        return None if state is None else state.expires_at_ms

    # -- entries ----------------------------------------------------------

    def track(self, session: int, topic: bytes, key: bytes, meta: bytes) -> Transfer:
        """Tracks `key` in `topic` for `session` with `meta`."""
        entry = EntryId(check_topic(topic), check_key(key), session)
        check_meta(meta)
        state = self._session(session)
        if entry in self._entries:
            raise FailedPrecondition(f"session {session:x} already tracks key {key!r} in topic {topic!r}: "
                                     f"update it, or untrack it first")
        if len(self._entries) >= self._entries_max:
            raise ResourceExhausted(f"this node tracks {self._entries_max} presence entries, the most it may "
                                    f"(PRESENCE_ENTRIES_PER_NODE_MAX): untrack some or use another node")
        self._check_room(entry_bytes(entry, meta))
        self._bump()
        self._entries[entry] = (meta, self.version)
        self._bytes += entry_bytes(entry, meta)
        state.entries.add(entry)
        self._tombstones.pop(("e", entry), None)
        return self._delta(upserts={entry: (meta, self.version)})

    def update(self, session: int, topic: bytes, key: bytes, meta: bytes) -> Transfer:
        """Replaces the metadata of a tracked entry (a new ref)."""
        entry = EntryId(check_topic(topic), check_key(key), session)
        check_meta(meta)
        self._session(session)
        if entry not in self._entries:
            raise NotFound(f"session {session:x} does not track key {key!r} in topic {topic!r}: track it first")
        old_meta, _ = self._entries[entry]
        self._check_room(len(meta) - len(old_meta))
        self._bump()
        self._entries[entry] = (meta, self.version)
        self._bytes += len(meta) - len(old_meta)
        return self._delta(upserts={entry: (meta, self.version)})

    def untrack(self, session: int, topic: bytes, key: bytes) -> Transfer | None:
        """Stops tracking; None if the entry was not tracked."""
        entry = EntryId(check_topic(topic), check_key(key), session)
        if entry not in self._entries:
            return None
        self._bump()
        self._remove_entry(entry)
        self._sessions[session].entries.discard(entry)
        return self._delta(removed=(entry,))

    # -- transfers --------------------------------------------------------

    def transfer_since(self, base_version: int) -> Transfer | None:
        """What a replica at `base_version` lacks: a delta when the
        tombstones reach back that far, else the full state; None when it
        lacks nothing."""
        if base_version >= self.version:
            return None
        if base_version <= 0 or base_version < self._delta_floor:
            return self.full_state()
        sessions = {session: state.expires_at_ms for session, state in self._sessions.items()
                    if state.version > base_version}
        upserts = {entry: written for entry, written in self._entries.items() if written[1] > base_version}
        closed = tuple(name[1] for name, version in self._tombstones.items()
                       if version > base_version and name[0] == "s")
        removed = tuple(name[1] for name, version in self._tombstones.items()
                        if version > base_version and name[0] == "e")
        return Transfer(self.owner, base_version, self.version, False, sessions, closed, upserts, removed)

    def full_state(self) -> Transfer:
        return Transfer(self.owner, 0, self.version, True,
                        {session: state.expires_at_ms for session, state in self._sessions.items()},
                        (), dict(self._entries), ())

    def status(self) -> dict[str, int]:
        return {"version": self.version, "sessions": len(self._sessions), "entries": len(self._entries),
                "state_bytes": self._bytes, "tombstones": len(self._tombstones), "delta_floor": self._delta_floor}

    # -- inside -----------------------------------------------------------

    def _session(self, session: int) -> _Session:
        state = self._sessions.get(check_session(session))
        if state is None:
            raise NotFound(f"presence session {session:x} is not open here (it expired, was closed, or this "
                           f"node restarted): open a session and track again")
        return state

    def _check_room(self, more_bytes: int) -> None:
        if self._bytes + more_bytes > self._state_bytes_max:
            raise ResourceExhausted(f"this node's presence entries would pass {self._state_bytes_max} bytes "
                                    f"(PRESENCE_NODE_STATE_BYTES_MAX): use smaller metadata or another node")

    def _bump(self) -> None:
        self.version += 1

    def _delta(self, *, sessions: dict[int, int] | None = None, closed: tuple[int, ...] = (),
               upserts: dict[EntryId, tuple[bytes, int]] | None = None,
               removed: tuple[EntryId, ...] = ()) -> Transfer:
        return Transfer(self.owner, self.version - 1, self.version, False, sessions or {}, closed,
                        upserts or {}, removed)

    def _drop_session(self, session: int) -> tuple[EntryId, ...]:
        state = self._sessions.pop(session)
        for entry in state.entries:
            self._remove_entry(entry)
        self._bury(("s", session))
        return tuple(sorted(state.entries))

    def _remove_entry(self, entry: EntryId) -> None:
        meta, _ = self._entries.pop(entry)
        self._bytes -= entry_bytes(entry, meta)
        self._bury(("e", entry))

    def _bury(self, name: tuple) -> None:
        self._tombstones.pop(name, None)
        self._tombstones[name] = self.version
        while len(self._tombstones) > self._tombstones_max:
            _, version = self._tombstones.popitem(last=False)
            self._delta_floor = max(self._delta_floor, version)
