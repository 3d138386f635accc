"""`SubscriberBuffer`: the messages one subscriber has not taken yet, bounded
in messages and in bytes, and never silently short.

When a push passes either bound, the OLDEST messages go, and one count
grows in their place; the reader's next take starts with `Lagged(count)`,
then the messages kept, in order. Why the oldest: a live subscriber (a chat
room, a price, presence) that falls behind wants what is true now more than
what was true a buffer ago, and what it reads is never older than one
buffer; it is what tokio's broadcast channel does (`RecvError::Lagged(n)`).
It also keeps the notice in its place for free: dropping only ever happens
at the head, so every loss sits just before the head, and one counter is
the whole record of it (a full buffer costs O(1) per push, however far
behind the reader is). Dropping the newest instead would keep a backlog the
reader must wade through before anything current, and for a reader that
never catches up, would deliver only the past.
"""

from __future__ import annotations

import collections

from tandemkv import limits

from tandemkv.server.available.pubsub.messages import Lagged, Message


class SubscriberBuffer:
    def __init__(self, messages_max: int = limits.PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX,
                 bytes_max: int = limits.PUBSUB_SUBSCRIBER_BUFFER_BYTES_MAX):
        assert messages_max >= 1 and bytes_max >= 1, (messages_max, bytes_max)
        self._messages: collections.deque[Message] = collections.deque()
        self._bytes = 0
        self._messages_max = messages_max
        self._bytes_max = bytes_max
        # Messages dropped just before the head, not yet reported.
        self._missed_unreported = 0
        self.missed_total = 0
        self.delivered_total = 0

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    @property
    def readable(self) -> bool:
        """Whether a take would return anything (a message or a notice)."""
        return bool(self._messages) or self._missed_unreported > 0

    def push(self, message: Message) -> bool:
        """Buffers `message`, dropping the oldest past a bound. True when the
        buffer had nothing to read before (the reader needs a wake-up)."""
        was_readable = self.readable
        self._messages.append(message)
        self._bytes += message.counted_bytes
        while len(self._messages) > self._messages_max or self._bytes > self._bytes_max:
            dropped = self._messages.popleft()
            self._bytes -= dropped.counted_bytes
            self._missed_unreported += 1
            self.missed_total += 1
        # The newest message always fits an empty buffer (messages.py asserts
        # PUBSUB_MESSAGE_BYTES_MAX against the bytes bound).
        assert self._messages and self._messages[-1] is message
        return not was_readable

    def take(self, messages_max: int, bytes_max: int | None = None) -> list[Message | Lagged]:
        """Up to `messages_max` messages (and, if given, about `bytes_max`
        counted bytes: always at least one message), oldest first, after a
        `Lagged` notice when messages went since the last take."""
        assert messages_max >= 1, messages_max
        taken: list[Message | Lagged] = []
        if self._missed_unreported:
            taken.append(Lagged(self._missed_unreported))
            self._missed_unreported = 0
        taken_bytes = 0
        count = 0
        while self._messages and count < messages_max:
            size = self._messages[0].counted_bytes
            if bytes_max is not None and count and taken_bytes + size > bytes_max:
                break
            message = self._messages.popleft()
            self._bytes -= size
            taken_bytes += size
            count += 1
            taken.append(message)
        self.delivered_total += count
        return taken
