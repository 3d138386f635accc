"""The relay's running part: one gRPC stream from this node to each peer,
carrying every message published here, once, in order; and the receiving
end of the peers' streams to this node.

Why a gRPC stream and not the gossip's UDP datagrams: gossip repairs a lost
datagram with the next round, because its state converges; a pub/sub
message has no next round, so a lost datagram would be a loss every time
the network drops one, with no partition to explain it. A TCP stream loses
messages only where the connection breaks, and HTTP/2 flow control turns a
slow peer into a full queue here, which drops the oldest and counts them.
The stream goes to the peer's client port (the gRPC server every node runs),
so no port is added.

`PeerSender` owns one peer's `OutboundQueue` (the pure part: numbering,
bounds, framing, pubsub/relay.py) and a task that opens the stream, sends a
hello (origin, incarnation, whether any frame reached that peer yet, and an
HMAC over them keyed by the cluster secret), then frames as the queue fills.
When the stream fails it waits (from PUBSUB_RELAY_RECONNECT_MS_MIN, doubling
to PUBSUB_RELAY_RECONNECT_MS_MAX, with jitter) and opens it again; the queue
keeps filling meanwhile, within its bounds.

`RelayReceiver` is the servicer of `PubSub.Relay`: it checks the hello, then
hands each frame's fresh messages to the hub (`InboundStreams` counts the
holes: so many dropped by the origin's full queue, the rest lost in transit).

Everything here runs on one asyncio loop, the one the plane runs on.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import random
from typing import Callable

import grpc

from tandemkv import limits
from tandemkv.server.security.member_channels import open_member_channel
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import pubsub_pb2, pubsub_pb2_grpc

from tandemkv.server.available.pubsub import (InboundStreams, Message, OutboundQueue, PublisherId, RelayFrame,
                                              check_payload, check_publisher, check_topic)

log = logging.getLogger(__name__)

RELAY_TOKEN_LABEL = b"tandemkv pubsub relay v1\x00"
# Each attempt opens a channel of its own, with subchannels of its own: gRPC
# shares subchannels between a process's channels by default, and a shared
# one that failed keeps failing every new channel at once until its own
# reconnect backoff (up to two minutes) runs out. The backoff is ours.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
                   ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
                   ("grpc.use_local_subchannel_pool", 1)]
# A frame, encoded, always fits one gRPC message.
assert limits.PUBSUB_RELAY_FRAME_BYTES_MAX * 2 <= limits.GRPC_MESSAGE_BYTES_MAX


def relay_token(secret: bytes, origin: str, incarnation: int, target: str) -> bytes:
    """What proves a relay stream comes from a member: an HMAC over who
    sends, as which incarnation, to whom."""
    text = b"\x00".join((origin.encode(), incarnation.to_bytes(8, "big"), target.encode()))
    return hmac.new(secret, RELAY_TOKEN_LABEL + text, hashlib.sha256).digest()


def encode_frame(frame: RelayFrame) -> pubsub_pb2.RelayFrame:
    return pubsub_pb2.RelayFrame(first_seq=frame.first_seq, overflowed=frame.overflowed, messages=[
        pubsub_pb2.RelayedMessage(topic=m.topic, payload=m.payload, session=m.publisher.session, seq=m.seq)
        for m in frame.messages])


def decode_frame(frame: pubsub_pb2.RelayFrame, origin: str, incarnation: int) -> RelayFrame:
    """The frame's messages, stamped with their publisher (the stream's
    origin, with each message's session); InvalidArgument if any breaks a
    limit or the numbering."""
    publishers: dict[int, PublisherId] = {}
    messages = []
    for relayed in frame.messages:
        publisher = publishers.get(relayed.session)
        if publisher is None:
            publisher = publishers[relayed.session] = PublisherId(origin, incarnation, relayed.session)
        if relayed.seq < 1:
            raise InvalidArgument("a relayed message's number starts at 1")
        messages.append(Message(check_topic(relayed.topic), check_payload(relayed.payload), publisher,
                                relayed.seq))
    if frame.first_seq < 1 or not messages:
        raise InvalidArgument("a relay frame carries at least one message, numbered from 1")
    return RelayFrame(frame.first_seq, tuple(messages), frame.overflowed)


class RelayStreamEnded(Exception):
    """The peer ended a relay stream (it refused it, or it stopped)."""


def describe(error: Exception) -> str:
    details = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
    return f"{type(error).__name__}: {details}"


class PeerSender:
    """One peer's queue and the task that streams it there."""

    def __init__(self, origin: str, incarnation: int, target: str, address: str, secret: bytes, *,
                 queue: OutboundQueue | None = None, rng: random.Random | None = None,
                 hello_ms_max: int = limits.PUBSUB_RELAY_HELLO_MS_MAX):
        self.origin, self.incarnation, self.target, self.address = origin, incarnation, target, address
        self.queue = queue if queue is not None else OutboundQueue()
        self.secret = secret
        self._rng = rng or random.Random()
        self._hello_ms_max = hello_ms_max
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._from_start = True
        self.connections = 0
        self.failures = 0
        self.frames_sent = 0
        # Messages of a frame whose write failed: surely lost (more may be,
        # in frames written before the connection broke; the peer counts).
        self.lost_on_failed_write = 0
        self.last_error = ""

    def put(self, message: Message) -> None:
        assert message.publisher.node == self.origin, "a node relays only what was published on it"
        if self.queue.put(message):
            self._wake.set()

    def start(self) -> None:
        assert self._task is None
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pubsub relay to {self.target}")

    async def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        backoff_ms = limits.PUBSUB_RELAY_RECONNECT_MS_MIN
        while not self._stopping:
            frames_before = self.frames_sent
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure of the stream: count it, wait, open another
                self.failures += 1
                self.last_error = describe(error)
                # Loud when a working stream breaks (or the first attempt
                # fails); quiet while a down peer keeps refusing.
                level = logging.WARNING if self.frames_sent > frames_before or self.failures == 1 else logging.DEBUG
                log.log(level, "pubsub relay to %s (%s) failed: %s", self.target, self.address, self.last_error)
            if self._stopping:
                return
            if self.frames_sent > frames_before:
                backoff_ms = limits.PUBSUB_RELAY_RECONNECT_MS_MIN
            await self._pause(backoff_ms * (0.5 + self._rng.random()) / 1000)
            backoff_ms = min(backoff_ms * 2, limits.PUBSUB_RELAY_RECONNECT_MS_MAX)

    async def _pause(self, seconds: float) -> None:
        """Waits out a backoff; a stop ends it early."""
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _stream_once(self) -> None:
        # Plaintext or TLS, as the cluster's client ports speak (server/security/member_channels.py).
        async with open_member_channel(self.address, CHANNEL_OPTIONS) as channel:
            call = pubsub_pb2_grpc.PubSubStub(channel).Relay()
            self.connections += 1
            try:
                await self._send(call)
            except Exception as error:
                # A write fails with whatever the transport saw; the peer's
                # own status (why it refused) is the call's, once it ended.
                code = await call.code() if call.done() else None
                if code == grpc.StatusCode.OK:  # the peer ended it: it stops
                    raise RelayStreamEnded("the peer closed the relay stream (stopping?)") from error
                if code is not None and code != grpc.StatusCode.CANCELLED:
                    raise RelayStreamEnded(f"{code.name}: {await call.details()}") from error
                raise
            finally:
                call.cancel()

    async def _send(self, call) -> None:
        hello = pubsub_pb2.RelayHello(origin=self.origin, incarnation=self.incarnation, target=self.target,
                                      from_start=self._from_start,
                                      token=relay_token(self.secret, self.origin, self.incarnation, self.target))
        # The receiver replies once it has accepted the hello; no frame goes
        # before, so a refused or absent peer costs no message, and a silent
        # one (the write waits for a connection, the read for the reply) is
        # given up after PUBSUB_RELAY_HELLO_MS_MAX.
        try:
            reply = await asyncio.wait_for(self._hello(call, hello), self._hello_ms_max / 1000)
        except asyncio.TimeoutError:
            raise RelayStreamEnded(f"no answer to the relay hello within {self._hello_ms_max} ms "
                                   "(PUBSUB_RELAY_HELLO_MS_MAX): is the address a TandemKV node's client port?")
        if reply is grpc.aio.EOF or not reply.accepted:
            raise RelayStreamEnded("the peer closed the relay stream without accepting it")
        # The peer says nothing more until the stream ends: a read that
        # returns means it ended (an error, or it stops), and another stream
        # is opened rather than waiting for a write to fail.
        ended = asyncio.ensure_future(call.read())
        try:
            while not self._stopping:
                frame = self.queue.next_frame()
                if frame is None:
                    self._wake.clear()
                    woken = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait((woken, ended), return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                    if ended.done():
                        ended.result()  # raises the peer's error, if it gave one
                        raise RelayStreamEnded("the peer ended the relay stream")
                    continue
                try:
                    await call.write(encode_frame(frame))
                except BaseException:
                    self.lost_on_failed_write += len(frame.messages)
                    raise
                self.frames_sent += 1
                self._from_start = False
            if not ended.done():
                await call.done_writing()
                await asyncio.wait_for(ended, self._hello_ms_max / 1000)
        finally:
            ended.cancel()

    @staticmethod
    async def _hello(call, hello: pubsub_pb2.RelayHello):
        await call.write(pubsub_pb2.RelayFrame(hello=hello))
        return await call.read()

    def status(self) -> dict[str, object]:
        return {**self.queue.status(), "address": self.address, "connections": self.connections,
                "failures": self.failures, "frames_sent": self.frames_sent,
                "lost_on_failed_write": self.lost_on_failed_write, "last_error": self.last_error}


class RelayReceiver(pubsub_pb2_grpc.PubSubServicer):
    """`PubSub.Relay`: the receiving end of every peer's stream to this node.
    Only Relay is served here; the client-facing methods belong to the API
    edge."""

    def __init__(self, node: str, secret: bytes, deliver: Callable[[Message], None],
                 streams: InboundStreams | None = None):
        self._node = node
        self._secret = secret
        self._deliver = deliver
        self.streams = streams if streams is not None else InboundStreams()
        # Streams and frames refused, by reason.
        self.refused: collections.Counter[str] = collections.Counter()
        # The nodes whose streams are taken (the committed members); None: any holder of the secret.
        self.members: frozenset[str] | None = None

    def set_members(self, members: frozenset[str], secret: bytes) -> None:
        """Follows the committed member set: streams from other nodes are
        refused from now on (an open one ends at its next frame), and their
        cursors are forgotten."""
        self.members, self._secret = members, secret
        self.streams.keep_origins(set(members))

    async def Relay(self, request_iterator, context):
        hello = None
        state = None
        async for frame in request_iterator:
            if state is None:
                hello = frame.hello
                state = await self._open(hello, frame, context)
                yield pubsub_pb2.RelayReply(accepted=True)
                continue
            if self.members is not None and hello.origin not in self.members:
                self._refuse("not_member")
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"node {hello.origin!r} is no longer a member of the cluster")
            try:
                decoded = decode_frame(frame, hello.origin, hello.incarnation)
            except InvalidArgument as error:
                self._refuse("malformed_frame")
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"relay frame refused: {error.message}")
            holes_before = (state.overflowed, state.lost_in_transit, state.stale_frames)
            for message in self.streams.accept(state, decoded):
                self._deliver(message)
            if (state.overflowed, state.lost_in_transit, state.stale_frames) != holes_before:
                log.warning("pubsub relay from %s: messages missing before number %d (its queue dropped %d "
                            "since its last frame); so far %d dropped by its queue, %d lost in transit, %d stale "
                            "frames", hello.origin, decoded.first_seq, decoded.overflowed, state.overflowed,
                            state.lost_in_transit, state.stale_frames)
        if state is not None:
            yield pubsub_pb2.RelayReply(accepted=True, received=state.received, overflowed=state.overflowed,
                                        lost_in_transit=state.lost_in_transit)

    def _refuse(self, reason: str) -> None:
        self.refused[reason] += 1
        log.info("pubsub relay: a stream refused (%s)", reason)

    async def _open(self, hello, frame, context):
        if not frame.HasField("hello") or frame.messages:
            self._refuse("malformed_hello")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "a relay stream opens with a hello frame, and only the hello")
        expected = relay_token(self._secret, hello.origin, hello.incarnation, hello.target)
        if not hmac.compare_digest(expected, hello.token):
            self._refuse("unauthenticated")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "relay hello refused: its token is not the cluster's (is the cluster secret "
                                "the same on every node?)")
        if hello.target != self._node or hello.origin == self._node:
            self._refuse("wrong_target")
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"this is node {self._node!r}; the relay stream from {hello.origin!r} was meant "
                                f"for {hello.target!r}: check the peer addresses")
        if self.members is not None and hello.origin not in self.members:
            self._refuse("not_member")
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"node {hello.origin!r} is not a member of the cluster (as of the member set "
                                f"{self._node!r} applied): its relay stream is refused")
        try:
            check_publisher(PublisherId(hello.origin, hello.incarnation, 0))
        except InvalidArgument as error:
            self._refuse("malformed_hello")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
        state = self.streams.open(hello.origin, hello.incarnation, hello.from_start)
        log.info("pubsub relay from %s (incarnation %016x, from_start %s): stream accepted, next number %d",
                 hello.origin, hello.incarnation, hello.from_start, state.next_seq)
        return state
