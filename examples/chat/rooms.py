"""One instance's view of its rooms: for each room a reader of the room's
durable topic (the message store: replayed from its first retained offset,
then followed live) and a presence watch (who is online), fanned out to the
instance's browsers.

Why a durable topic and not KV keys per message: the topic's log gives one
order per room on every node, survives any node's loss like any Raft write,
and a reader that loses its node resumes at its offset with nothing lost or
repeated. The instance keeps the last `HISTORY_MESSAGES_MAX` of each room
for the browsers that join; everything older stays in the log.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import Any

from tandemkv import errors
from tandemkv.client import AsyncClient, Message

log = logging.getLogger("examples.chat")

# The messages a browser gets when it joins a room (the seed's MessageStore kept 100).
HISTORY_MESSAGES_MAX = 100
# Events waiting for one browser's socket; a browser this far behind is closed (it reloads).
SOCKET_QUEUE_EVENTS_MAX = 256
# Rooms one instance follows at once.
ROOMS_PER_INSTANCE_MAX = 1_000
# Pause before a room's reader or watch opens again after its node failed.
REOPEN_DELAY_MS = 500


def messages_topic(room: str) -> str:
    return f"chat:{room}:messages"


def presence_topic(room: str) -> str:
    return f"chat:{room}:online"


class Room:
    """A room as this instance follows it: the last messages, who is online,
    and the browsers' queues to tell."""

    def __init__(self, client: AsyncClient, name: str):
        self.client = client
        self.name = name
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY_MESSAGES_MAX)
        self.online: list[dict[str, Any]] = []
        self.queues: set[asyncio.Queue] = set()
        self._tasks = [asyncio.get_running_loop().create_task(self._read_messages(), name=f"room {name} messages"),
                       asyncio.get_running_loop().create_task(self._watch_online(), name=f"room {name} online")]

    def join(self) -> asyncio.Queue:
        """A queue of events for one browser, starting with the room's state
        (no await between the snapshot and the registration: nothing is
        missed or repeated)."""
        queue: asyncio.Queue = asyncio.Queue(SOCKET_QUEUE_EVENTS_MAX)
        queue.put_nowait({"type": "history", "messages": list(self.history)})
        queue.put_nowait({"type": "online", "users": self.online})
        self.queues.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue) -> None:
        self.queues.discard(queue)

    def _tell(self, event: dict[str, Any]) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a browser that stopped reading: told so, its socket closes
                self.queues.discard(queue)
                queue.get_nowait()
                queue.put_nowait({"type": "lagged"})

    async def _read_messages(self) -> None:
        from_offset = 0  # the first retained message, then each one as it is published
        while True:
            try:
                async with await self.client.pubsub.subscribe(messages_topic(self.name), durable=True,
                                                              from_offset=from_offset) as subscription:
                    async for event in subscription:
                        if isinstance(event, Message):
                            message = _decoded(event)
                            if message is not None:
                                self.history.append(message)
                                self._tell({"type": "message", **message})
                        from_offset = subscription.next_offset or from_offset
            except Exception as error:  # noqa: BLE001 - a node gone or stopping: read again elsewhere
                log.warning("room %s: messages from offset %d: %s; reading again", self.name, from_offset, error)
            await asyncio.sleep(REOPEN_DELAY_MS / 1000)

    async def _watch_online(self) -> None:
        while True:
            try:
                watch = await self.client.presence.watch(presence_topic(self.name))
                try:
                    self._set_online(watch.state)
                    async for _diff in watch:
                        self._set_online(watch.state)
                finally:
                    watch.close()
            except Exception as error:  # noqa: BLE001 - a node gone or stopping: watch again elsewhere
                log.warning("room %s: presence watch: %s; watching again", self.name, error)
            await asyncio.sleep(REOPEN_DELAY_MS / 1000)

    def _set_online(self, listing: Any) -> None:
        users = []
        for key, metas in sorted(listing.items()):
            instances = sorted({str((m.meta or {}).get("instance", "?")) for m in metas})
            users.append({"user": key.decode(errors="replace"), "instances": instances})
        self.online = users
        self._tell({"type": "online", "users": users})

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def _decoded(message: Message) -> dict[str, Any] | None:
    try:
        body = json.loads(message.payload)
        return {"user": str(body["user"]), "text": str(body["text"]), "sent_ms": int(body["sent_ms"]),
                "offset": message.offset}
    except (ValueError, KeyError, TypeError):
        log.warning("room message at offset %d is not chat JSON: skipped", message.offset)
        return None


def encoded(user: str, text: str) -> bytes:
    return json.dumps({"user": user, "text": text, "sent_ms": int(time.time() * 1000)}).encode()


class Rooms:
    """The rooms this instance follows, and who it tracks online in them
    (one presence entry per user and room, however many of the user's tabs
    are open here)."""

    def __init__(self, client: AsyncClient, instance: str):
        self.client = client
        self.instance = instance
        self._rooms: dict[str, Room] = {}
        self._tracked: dict[tuple[str, str], tuple[int, Any]] = {}
        self._presence_lock = asyncio.Lock()

    def room(self, name: str) -> Room:
        if name not in self._rooms:
            if len(self._rooms) >= ROOMS_PER_INSTANCE_MAX:
                raise errors.ResourceExhausted(
                    f"this instance follows ROOMS_PER_INSTANCE_MAX={ROOMS_PER_INSTANCE_MAX} rooms: use another")
            self._rooms[name] = Room(self.client, name)
        return self._rooms[name]

    async def arrive(self, room: str, user: str) -> None:
        async with self._presence_lock:
            count, handle = self._tracked.get((room, user), (0, None))
            if handle is None:
                handle = await self.client.presence.track(presence_topic(room), user, {"instance": self.instance})
            self._tracked[(room, user)] = (count + 1, handle)

    async def depart(self, room: str, user: str) -> None:
        async with self._presence_lock:
            count, handle = self._tracked.pop((room, user), (0, None))
            if count > 1:
                self._tracked[(room, user)] = (count - 1, handle)
            elif handle is not None:
                await handle.untrack()

    async def say(self, room: str, user: str, text: str) -> None:
        await self.client.pubsub.publish(messages_topic(room), encoded(user, text), durable=True)

    def close(self) -> None:
        for room in self._rooms.values():
            room.close()
