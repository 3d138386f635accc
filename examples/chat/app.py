"""The chat's web face (Starlette): the page at `/`, and `/ws?room=R&user=U`,
a WebSocket per open tab.

On the socket the server sends JSON events: `history` (the room's last
messages), `message` (one new message), `online` (who is in the room, with
the instances they are on), `error` (a send that failed, and why); and it
closes with code 1008 and a reason for a bad room or user name, 1011 when
the browser stopped reading. The browser sends `{"text": "..."}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from examples.chat.rooms import Rooms
from tandemkv.client import AsyncClient
from tandemkv.client._routing import resolve_endpoints

# A room or user name: letters, digits, '_' and '-'.
NAME_CHARS_MAX = 32
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{NAME_CHARS_MAX}}}")
# One message's text.
MESSAGE_TEXT_CHARS_MAX = 2_000
# What a browser may send in one frame (the JSON around a message's text).
SOCKET_FRAME_CHARS_MAX = 3 * MESSAGE_TEXT_CHARS_MAX

PAGE = Path(__file__).parent / "static" / "index.html"
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def build_app(endpoints: str | None, instance: str) -> Starlette:
    """The app for one instance; `endpoints` as `AsyncClient` takes them
    (ValueError, saying what to pass, when there are none)."""
    resolved = resolve_endpoints(endpoints)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        client = AsyncClient(resolved)
        state["rooms"] = Rooms(client, instance)
        try:
            yield
        finally:
            state["rooms"].close()
            await client.close()  # the instance's users leave every list now, not at their TTL

    async def page(_request: Any) -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    async def socket(websocket: WebSocket) -> None:
        room_name = websocket.query_params.get("room", "")
        user = websocket.query_params.get("user", "")
        await websocket.accept()
        for what, value in (("room", room_name), ("user", user)):
            if not NAME_PATTERN.fullmatch(value):
                await websocket.close(POLICY_VIOLATION, f"{what} {value[:40]!r}: give 1 to {NAME_CHARS_MAX} "
                                                        "letters, digits, '_' or '-'")
                return
        await serve_tab(websocket, state["rooms"], room_name, user)

    return Starlette(routes=[Route("/", page), WebSocketRoute("/ws", socket)], lifespan=lifespan)


async def serve_tab(websocket: WebSocket, rooms: Rooms, room_name: str, user: str) -> None:
    """One tab in one room, until it closes: the room's events out, its
    messages in; its user is online while any of its tabs here is open."""
    try:
        room = rooms.room(room_name)
        await rooms.arrive(room_name, user)
    except Exception as error:  # noqa: BLE001 - the cluster unreachable or a limit: the tab is told
        await websocket.close(TRY_AGAIN_LATER, f"cannot join {room_name}: {error}"[:120])
        return
    queue = room.join()
    sender = asyncio.get_running_loop().create_task(send_events(websocket, queue))
    try:
        while True:
            frame = await websocket.receive_text()
            text = message_text(frame)
            if text.startswith("\0"):
                await websocket.send_json({"type": "error", "message": f"not sent: {text[1:]}"})
                continue
            try:
                await rooms.say(room_name, user, text)
            except Exception as error:  # noqa: BLE001 - e.g. no quorum: the tab shows why
                await websocket.send_json({"type": "error", "message": f"not sent: {error}"})
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        room.leave(queue)
        sender.cancel()
        with contextlib.suppress(Exception):
            await rooms.depart(room_name, user)


def message_text(frame: str) -> str:
    """The text of a browser's frame, or "\\0" + what is wrong with it."""
    if len(frame) > SOCKET_FRAME_CHARS_MAX:
        return f"\0a frame of {len(frame)} characters: at most {SOCKET_FRAME_CHARS_MAX}"
    try:
        text = json.loads(frame)["text"]
    except (ValueError, KeyError, TypeError):
        return '\0send {"text": "..."}'
    if not isinstance(text, str) or not text.strip():
        return "\0an empty message: type something"
    if len(text) > MESSAGE_TEXT_CHARS_MAX:
        return f"\0a message of {len(text)} characters: at most {MESSAGE_TEXT_CHARS_MAX}"
    return text


async def send_events(websocket: WebSocket, queue: asyncio.Queue) -> None:
    with contextlib.suppress(Exception):
        while True:
            event = await queue.get()
            if event["type"] == "lagged":
                await websocket.close(1011, "this tab fell too far behind: reload it")
                return
            await websocket.send_json(event)
