"""`tandemkv pubsub ...`: best-effort pub/sub on the command line, through
`Client.pubsub`. Arguments, output and exit codes follow `cli_client`:

    tandemkv pubsub publish TOPIC MESSAGE [--local | --durable]   # MESSAGE - reads it from stdin
    tandemkv pubsub subscribe TOPIC... [--prefix P]... [--count N]
    tandemkv pubsub subscribe TOPIC --durable [--from OFFSET] [--count N]

`publish` prints OK (JSON: the node that took it, the stamp and how many
subscribers there it reached); `--durable` prints the message's offset in
the topic's log. `subscribe` prints one line per message as it arrives,
`[TOPIC] MESSAGE` (durable: `[TOPIC@OFFSET] MESSAGE`; JSON: topic,
payload, and the publisher and seq, or the offset), until Ctrl-C or, with
`--count`, after N messages; it says on stderr which node it subscribed on
once it is open. A subscriber too slow for its buffer on the node is told
on stderr (JSON: a `{"lagged": N}` line) how many messages it missed,
where they were; a durable one is told where retention dropped messages
(JSON: `{"gap": {"from_offset": A, "first_offset": B}}`). A subscription
whose node goes away ends with exit 3 (a durable one resumes with `--from`
the last offset + 1).
"""

from __future__ import annotations

import argparse
import json
import sys

from tandemkv import limits
from tandemkv.client import Client, Gap, Lagged
from tandemkv.server.cli import client as cli_client, hold as cli_hold
from tandemkv.server.cli.client import EXIT_OK, STDIN_VALUE, Reply


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    pubsub = subparsers.add_parser("pubsub", help="publish and subscribe (best-effort, no Raft)")
    ops = pubsub.add_subparsers(dest="op", required=True)
    publish = cli_client._leaf(ops, "publish", cmd_publish,
                               "send a message to every subscriber of TOPIC on every node (MESSAGE - reads "
                               "stdin)", ("topic", "message"))
    mode = publish.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="only to the subscribers of the node that takes it")
    mode.add_argument("--durable", action="store_true",
                      help="append to the topic's log through Raft; prints the offset")
    subscribe = cli_client._leaf(ops, "subscribe", cmd_subscribe,
                                 "print each message of the TOPICs (and --prefix) as it arrives, until Ctrl-C",
                                 (), read=True)
    subscribe.add_argument("topics", nargs="*", metavar="TOPIC")
    subscribe.add_argument("--prefix", action="append", default=[], metavar="P",
                           help="also every topic starting with P (repeatable; '' matches every topic)")
    subscribe.add_argument("--count", type=int, default=0, metavar="N", help="stop after N messages")
    subscribe.add_argument("--durable", action="store_true", help="read one TOPIC's log (from now, or --from)")
    subscribe.add_argument("--from", dest="from_offset", type=int, default=None, metavar="OFFSET",
                           help="durable: start at OFFSET (0: the first retained message)")


def message_argument(message: str) -> bytes | str:
    """A message from the command line, or from stdin when it is `-`."""
    if message != STDIN_VALUE:
        return message
    data = sys.stdin.buffer.read(limits.PUBSUB_MESSAGE_BYTES_MAX + 1)
    if len(data) > limits.PUBSUB_MESSAGE_BYTES_MAX:
        raise ValueError(f"the message on stdin is longer than PUBSUB_MESSAGE_BYTES_MAX="
                         f"{limits.PUBSUB_MESSAGE_BYTES_MAX} bytes")
    return data


def cmd_publish(client: Client, args) -> Reply:
    published = client.pubsub.publish(args.topic, message_argument(args.message), local=args.local,
                                      durable=args.durable)
    publisher = published.publisher
    if publisher is None:
        return Reply(EXIT_OK, {"node": published.node, "offset": published.offset}, str(published.offset))
    data = {"node": published.node, "seq": published.seq, "delivered_locally": published.delivered_locally,
            "publisher": {"node": publisher.node, "incarnation": publisher.incarnation,
                          "session": publisher.session}}
    return Reply(EXIT_OK, data, "OK")


def cmd_subscribe(client: Client, args) -> Reply:
    if not args.topics and not args.prefix:
        raise ValueError("name at least one TOPIC or --prefix")
    if args.from_offset is not None and not args.durable:
        raise ValueError("--from is for --durable subscriptions: a best-effort one has no history")
    if args.count < 0:
        raise ValueError(f"--count is a number of messages, 0 (no end) or more; got {args.count}")
    cli_hold.interruptible()  # Ctrl-C ends it even when started in the background
    json_output = getattr(args, "output", "text") == "json"
    received = 0
    try:
        with client.pubsub.subscribe(args.topics, prefixes=args.prefix, durable=args.durable,
                                     from_offset=args.from_offset) as subscription:
            cli_client.fail(EXIT_OK, f"subscribed on {subscription.node}")
            for event in subscription:
                if isinstance(event, Lagged):
                    if json_output:
                        print(json.dumps({"lagged": event.missed}), flush=True)
                    else:
                        cli_client.fail(EXIT_OK, f"lagged: {event.missed} message(s) missed here")
                    continue
                if isinstance(event, Gap):
                    if json_output:
                        print(json.dumps({"gap": {"from_offset": event.from_offset,
                                                  "first_offset": event.first_offset}}), flush=True)
                    else:
                        cli_client.fail(EXIT_OK, f"gap: messages from offset {event.from_offset} up to "
                                                 f"{event.first_offset} were dropped by retention")
                    continue
                print(_message_json(event) if json_output else _message_text(event), flush=True)
                received += 1
                if received == args.count:
                    break
    except KeyboardInterrupt:
        return Reply(EXIT_OK, None, None)
    return Reply(EXIT_OK, None, None)


def _message_text(message) -> str:
    topic = cli_client._text(message.topic)
    where = topic if message.publisher is not None else f"{topic}@{message.offset}"
    return f"[{where}] {cli_client._text(message.payload)}"


def _message_json(message) -> str:
    data = {"topic": cli_client.bytes_json(message.topic), "payload": cli_client.bytes_json(message.payload)}
    publisher = message.publisher
    if publisher is None:
        data.update(offset=message.offset, publish_ms=message.publish_ms)
    else:
        data.update(publisher={"node": publisher.node, "incarnation": publisher.incarnation,
                               "session": publisher.session}, seq=message.seq)
    return json.dumps(data)
