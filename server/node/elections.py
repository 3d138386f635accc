"""Election observes of one node: every observer's feed (tandemkv.server.
feeds) of an election's leader, and the one thread that follows applied
state for all of them.

Candidacies are claims, not keys: they leave no events in the watch
history, so the watch hub cannot see a leader change. Instead, after each
apply batch (coalesced: a burst of batches is one pass), the thread reads
the leader of every observed election once, in one read view, and offers
it to that election's feeds only if it differs from the last one read. A
pass costs one read per observed election, not one per observer, and an
observer costs a feed, not a thread: the gRPC server waits on its feeds on
the event loop, `Node.observe` on a thread of its caller's.

An observer's first value is its own read, made after its feed is
registered, so whichever of the two reads is newer wins (feeds keep the
highest revision): no change between the two is missed.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, Callable

from tandemkv.server.feeds import Feed
from tandemkv.server.strong.coordination import read_leader
from tandemkv.v1 import coordination_pb2 as co
from tandemkv.v1 import kv_pb2

if TYPE_CHECKING:
    from tandemkv.server.node.node import Node

log = logging.getLogger(__name__)

# Longest the thread waits for an apply before it looks at the stop flag.
FOLLOW_WAIT_SLICE_S = 0.5


def same_leader(a: co.LeaderResponse, b: co.LeaderResponse) -> bool:
    """Whether two answers name the same leader with the same value (a
    newer revision alone is no change)."""
    return (a.found, a.leader.token, a.leader.value) == (b.found, b.leader.token, b.leader.value)


class ElectionObservers:
    """Every election observe of one node. Needs of its node: `query`,
    `_state`, `_stopping`, `_wait_applied_after` and `config.name`."""

    def __init__(self, node: "Node") -> None:
        self._node = node
        self._lock = threading.Lock()
        self._feeds: dict[bytes, set[Feed[co.LeaderResponse]]] = collections.defaultdict(set)
        # The newest answer read for each observed election.
        self._known: dict[bytes, co.LeaderResponse] = {}
        self._head = 0
        self._ended = False  # the node stops: feeds end, new ones too
        self._thread = threading.Thread(target=self._run, name="election-observers", daemon=True)
        self._thread.start()

    def feed(self, election: bytes, wake: Callable[[], None]) -> Feed[co.LeaderResponse]:
        """A feed of `election`'s leader: the leader now, then after each
        change; `wake` is called when it has news. Raises what a stale
        Leader read raises (InvalidArgument, Unavailable)."""
        feed: Feed[co.LeaderResponse] = Feed(wake, same=same_leader,
                                             on_close=lambda: self._forget(election, feed))
        with self._lock:
            self._feeds[election].add(feed)
            ended = self._ended
        if ended:
            feed.end()
        try:
            now = self._node.query(co.LeaderRequest(election=election, consistency=kv_pb2.STALE))
        except BaseException:
            feed.close()
            raise
        with self._lock:
            self._publish(election, now)
            latest = self._known.get(election, now)
        feed.offer(latest.header.revision, latest)
        return feed

    def _forget(self, election: bytes, feed: Feed[co.LeaderResponse]) -> None:
        with self._lock:
            feeds = self._feeds.get(election)
            if feeds is None:
                return
            feeds.discard(feed)
            if not feeds:
                del self._feeds[election]
                self._known.pop(election, None)

    def _publish(self, election: bytes, response: co.LeaderResponse) -> None:
        """Keeps `response` if it is the newest read of `election`, and
        offers it to the election's feeds if the leader changed. Under
        `_lock`."""
        if election not in self._feeds:
            return
        known = self._known.get(election)
        if known is not None and known.header.revision >= response.header.revision:
            return
        self._known[election] = response
        if known is None or not same_leader(known, response):
            for feed in self._feeds[election]:
                feed.offer(response.header.revision, response)

    def _run(self) -> None:
        node = self._node
        try:
            while not node._stopping.is_set():
                try:
                    node._wait_applied_after(self._head, FOLLOW_WAIT_SLICE_S)
                    self._pass()
                except Exception:  # noqa: BLE001 - local state closing, or a bug: logged
                    if node._stopping.is_set():
                        break
                    log.exception("election observers: a pass failed; the next one retries")
                    node._stopping.wait(FOLLOW_WAIT_SLICE_S)
        finally:
            with self._lock:
                self._ended = True
                feeds = [feed for group in self._feeds.values() for feed in group]
            for feed in feeds:
                feed.end()

    def _pass(self) -> None:
        """Reads every observed election's leader once, in one read view."""
        node = self._node
        with node._state.read_view() as view:
            head = view.last_applied()
            if head <= self._head:
                return
            # Listed after the view opened: an election observed from now
            # on is read by its observer at this revision or a later one.
            with self._lock:
                elections = list(self._feeds)
            answers = [(election, read_leader(view, co.LeaderRequest(election=election), head))
                       for election in elections]
        self._head = head
        with self._lock:
            for election, answer in answers:
                answer.header.node = node.config.name
                self._publish(election, answer)
