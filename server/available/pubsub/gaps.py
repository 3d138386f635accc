"""`GapCounter`: what a receiver of messages can tell about what it missed,
from the messages alone.

Each message carries its publisher and its number among that publisher's
messages on its topic (messages.py), so a receiver sees a loss as a jump:
after 4 comes 7, two are missing. Where the loss happened decides who else
knows it: a slow subscriber's own buffer also says so in a `Lagged(n)`
notice, a peer's full relay queue and a lost connection are counted by the
relay (relay.py). A number that goes back or repeats is a broken order,
which best-effort delivery must never show: `out_of_order` stays 0.

The first message of a (publisher, topic) a counter sees sets where it
starts, unless `from_start`: then every pair starts at 0 (the receiver was
there before the publisher began, as in a test).

Memory grows with the (publisher, topic) pairs seen, up to `pairs_max`;
past it the longest-unheard pair is forgotten (its next message starts it
over, uncounted).
"""

from __future__ import annotations

from collections import OrderedDict

from tandemkv.server.available.pubsub.messages import Lagged, Message, PublisherId

# Pairs a counter follows unless told otherwise.
GAP_COUNTER_PAIRS_MAX = 1_000_000


class GapCounter:
    def __init__(self, *, from_start: bool = False, ignore: tuple[PublisherId, ...] = (),
                 pairs_max: int = GAP_COUNTER_PAIRS_MAX):
        self._last_seq: OrderedDict[tuple[PublisherId, bytes], int] = OrderedDict()
        self._from_start = from_start
        # Publishers whose jumps are no loss: the receiver's own, skipped by
        # publish_from.
        self._ignore = frozenset(ignore)
        self._pairs_max = pairs_max
        self.received = 0
        self.missing = 0
        self.lagged = 0
        self.out_of_order = 0

    def observe(self, item: Message | Lagged) -> int:
        """Counts one item of a subscriber's stream; the messages found
        missing just before it (by numbers, or by a notice)."""
        if isinstance(item, Lagged):
            self.lagged += item.missed
            return item.missed
        self.received += 1
        pair = (item.publisher, item.topic)
        last = self._last_seq.pop(pair, 0 if self._from_start else item.seq - 1)
        self._last_seq[pair] = max(last, item.seq)
        if len(self._last_seq) > self._pairs_max:
            self._last_seq.popitem(last=False)
        if item.seq <= last:
            self.out_of_order += 1
            return 0
        jump = item.seq - last - 1
        if item.publisher in self._ignore:
            return 0
        self.missing += jump
        return jump

    @property
    def unexplained(self) -> int:
        """Messages missing by numbers beyond what `Lagged` notices covered:
        lost between nodes (a full relay queue, a lost connection)."""
        return max(0, self.missing - self.lagged)
