"""`SubscriptionIndex`: which subscribers a topic reaches, found in time that
does not grow with the number of topics or prefixes held.

Two maps: exact topic -> subscribers, and prefix -> subscribers. A topic's
matches are its own entry plus, for each length a held prefix has, the
entry of the topic cut to that length. So a lookup costs one map probe per
distinct prefix length (at most PUBSUB_TOPIC_BYTES_MAX + 1, in practice a
handful), plus the matches themselves: 100,000 topics cost memory, not time.

Topics are not catalogued anywhere else: a topic exists while someone holds
it here, and costs nothing once nobody does.
"""

from __future__ import annotations

import bisect

from tandemkv import limits
from tandemkv.errors import InvalidArgument, NotFound, ResourceExhausted


class SubscriptionIndex:
    def __init__(self, subscriptions_max: int = limits.PUBSUB_SUBSCRIPTIONS_MAX,
                 per_subscriber_max: int = limits.PUBSUB_SUBSCRIBER_TOPICS_MAX):
        self._exact: dict[bytes, set[int]] = {}
        self._prefixed: dict[bytes, set[int]] = {}
        # Prefix length -> distinct prefixes of that length held; `_lengths`
        # is its keys, sorted, so a lookup stops at the topic's own length.
        self._prefixes_of_length: dict[int, int] = {}
        self._lengths: list[int] = []
        # Subscriber -> (its topics, its prefixes), so a subscriber leaves whole.
        self._held: dict[int, tuple[set[bytes], set[bytes]]] = {}
        self._count = 0
        self._subscriptions_max = subscriptions_max
        self._per_subscriber_max = per_subscriber_max

    @property
    def subscriptions(self) -> int:
        """Topics and prefixes held, every subscriber's together."""
        return self._count

    def topics_of(self, subscriber: int) -> tuple[frozenset[bytes], frozenset[bytes]]:
        topics, prefixes = self._held_by(subscriber)
        return frozenset(topics), frozenset(prefixes)

    def add_subscriber(self, subscriber: int) -> None:
        assert subscriber not in self._held, subscriber
        self._held[subscriber] = (set(), set())

    def add(self, subscriber: int, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        """Holds `topics` and `prefixes` for `subscriber` (those it holds
        already are no-ops). All or nothing: past a limit nothing is added."""
        held_topics, held_prefixes = self._held_by(subscriber)
        new_topics = set(topics) - held_topics
        new_prefixes = set(prefixes) - held_prefixes
        added = len(new_topics) + len(new_prefixes)
        if len(held_topics) + len(held_prefixes) + added > self._per_subscriber_max:
            raise InvalidArgument(f"a subscriber holds at most {self._per_subscriber_max} topics and prefixes "
                                  "together: subscribe to a prefix instead of many topics, or open another "
                                  "subscription", limit="PUBSUB_SUBSCRIBER_TOPICS_MAX")
        if self._count + added > self._subscriptions_max:
            raise ResourceExhausted(f"this node holds {self._count} subscriptions of at most "
                                    f"{self._subscriptions_max} (PUBSUB_SUBSCRIPTIONS_MAX): subscribe on another "
                                    "node, or use prefixes")
        for topic in new_topics:
            self._exact.setdefault(topic, set()).add(subscriber)
        for prefix in new_prefixes:
            holders = self._prefixed.setdefault(prefix, set())
            if not holders:
                self._count_length(len(prefix), +1)
            holders.add(subscriber)
        held_topics |= new_topics
        held_prefixes |= new_prefixes
        self._count += added

    def remove(self, subscriber: int, topics: tuple[bytes, ...] = (), prefixes: tuple[bytes, ...] = ()) -> None:
        """Lets go of `topics` and `prefixes` (those not held are no-ops)."""
        held_topics, held_prefixes = self._held_by(subscriber)
        for topic in set(topics) & held_topics:
            self._drop(self._exact, topic, subscriber)
            held_topics.discard(topic)
            self._count -= 1
        for prefix in set(prefixes) & held_prefixes:
            if self._drop(self._prefixed, prefix, subscriber):
                self._count_length(len(prefix), -1)
            held_prefixes.discard(prefix)
            self._count -= 1

    def remove_subscriber(self, subscriber: int) -> None:
        topics, prefixes = self._held_by(subscriber)
        self.remove(subscriber, tuple(topics), tuple(prefixes))
        del self._held[subscriber]

    def match(self, topic: bytes) -> set[int]:
        """Every subscriber that holds `topic` or a prefix of it, once."""
        found = set(self._exact.get(topic, ()))
        for length in self._lengths:
            if length > len(topic):
                break
            holders = self._prefixed.get(topic[:length])
            if holders:
                found |= holders
        return found

    def _held_by(self, subscriber: int) -> tuple[set[bytes], set[bytes]]:
        held = self._held.get(subscriber)
        if held is None:
            raise NotFound(f"no subscriber {subscriber} on this node: it ended, or never began")
        return held

    @staticmethod
    def _drop(index: dict[bytes, set[int]], key: bytes, subscriber: int) -> bool:
        """Removes one holder; True when the key is left with none (and goes)."""
        holders = index[key]
        holders.discard(subscriber)
        if holders:
            return False
        del index[key]
        return True

    def _count_length(self, length: int, change: int) -> None:
        count = self._prefixes_of_length.get(length, 0) + change
        assert count >= 0, (length, count)
        if count == 0:
            del self._prefixes_of_length[length]
            self._lengths.pop(bisect.bisect_left(self._lengths, length))
        else:
            if length not in self._prefixes_of_length:
                bisect.insort(self._lengths, length)
            self._prefixes_of_length[length] = count
