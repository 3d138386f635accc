"""`tandemkv presence ...`: presence on the command line, through
`Client.presence`. Arguments, output and exit codes follow `cli_client`:

    tandemkv presence track TOPIC KEY [--meta JSON] [--ttl SECONDS]   # holds until Ctrl-C / SIGTERM
    tandemkv presence list TOPIC
    tandemkv presence watch TOPIC [--count N]

`track` prints one line once the entry is tracked (JSON: topic, key and
ref), then holds it, renewing its session, until SIGINT or SIGTERM, when it
untracks it (exit 0); killed harder, the entry leaves every node when its
session's TTL runs out. `list` prints one line per meta, `KEY REF META`
(JSON: {key: [{"ref", "meta"}]}). `watch` prints the topic's state as
`= KEY REF META` lines, then `+ KEY REF META` per join and `- KEY REF META`
per leave as they happen (JSON: one object per diff, with "resync" true
where the node dropped diffs the watch read too slowly), until Ctrl-C or,
with `--count`, after N diffs. Keys and metas that are not text are shown
escaped. A bad topic, key or meta exits 2 in one line.
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

from tandemkv import limits
from tandemkv.client import Client
from tandemkv.client._presence import Presence
from tandemkv.client._presence_core import Listing, PresenceDiff
from tandemkv.server.cli import client as cli_client, hold as cli_hold
from tandemkv.server.cli.client import EXIT_OK, Reply

PRINTED = (None, None)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    presence = subparsers.add_parser("presence", help="track who is here, list and watch (no Raft)")
    ops = presence.add_subparsers(dest="op", required=True)
    track = cli_client._leaf(ops, "track", cmd_track, "track KEY in TOPIC until Ctrl-C or SIGTERM",
                             ("topic", "key"))
    track.add_argument("--meta", default=None, metavar="JSON", help="the entry's metadata, as JSON")
    track.add_argument("--ttl", type=float, default=limits.PRESENCE_SESSION_TTL_MS / 1000, metavar="SECONDS",
                       help="the session's TTL: how long the entry outlives this command if it is killed "
                            f"(default {limits.PRESENCE_SESSION_TTL_MS / 1000:g})")
    cli_client._leaf(ops, "list", cmd_list, "print every key tracked in TOPIC with its metas", ("topic",),
                     read=True)
    watch = cli_client._leaf(ops, "watch", cmd_watch, "print TOPIC's state, then its joins and leaves",
                             ("topic",), read=True)
    watch.add_argument("--count", type=int, default=0, metavar="N", help="stop after N diffs")


def _meta_argument(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"--meta is JSON, e.g. '{{\"status\": \"away\"}}': {error}") from None


def _ttl_ms(seconds: float) -> int:
    low, high = limits.PRESENCE_SESSION_TTL_MS_MIN, limits.PRESENCE_SESSION_TTL_MS_MAX
    ttl_ms = round(seconds * 1000)
    if not low <= ttl_ms <= high:
        raise ValueError(f"--ttl is {low / 1000:g} to {high / 1000:g} seconds, not {seconds:g}")
    return ttl_ms


def cmd_track(client: Client, args) -> Reply:
    meta = _meta_argument(args.meta)
    presence = Presence(client, ttl_ms=_ttl_ms(args.ttl))
    cli_hold.interruptible()
    try:
        tracked = presence.track(args.topic, args.key, meta)
        data = {"topic": args.topic, "key": args.key, "ref": tracked.ref}
        never_lost = threading.Event()  # the session is opened again on another node rather than lost
        return cli_hold.announce_and_hold(args, data, f"tracked {args.key} in {args.topic} (ref {tracked.ref}); "
                                                      "holding until Ctrl-C",
                                          never_lost, f"presence of {args.key!r}"), *PRINTED
    except KeyboardInterrupt as interrupt:
        return Reply(cli_hold.exit_code(interrupt), None, None)
    finally:
        presence.close()  # untracks at once


def _meta_text(meta: Any) -> str:
    if isinstance(meta, bytes):
        return cli_client._text(meta)
    return json.dumps(meta)


def _listing_json(listing: Listing) -> dict:
    return {cli_client._text(key): [{"ref": m.ref, "meta": m.meta if not isinstance(m.meta, bytes)
                                     else cli_client.bytes_json(m.meta)} for m in metas]
            for key, metas in listing.items()}


def _lines(mark: str, listing: Listing) -> list[str]:
    return [f"{mark}{cli_client._text(key)} {m.ref} {_meta_text(m.meta)}"
            for key, metas in sorted(listing.items()) for m in metas]


def cmd_list(client: Client, args) -> Reply:
    listing = client.presence.list(args.topic)
    return Reply(EXIT_OK, _listing_json(listing), "\n".join(_lines("", listing)))


def _diff_json(diff: PresenceDiff) -> str:
    return json.dumps({"topic": cli_client.bytes_json(diff.topic), "joins": _listing_json(diff.joins),
                       "leaves": _listing_json(diff.leaves), "resync": diff.resync})


def cmd_watch(client: Client, args) -> Reply:
    if args.count < 0:
        raise ValueError(f"--count is a number of diffs, 0 (no end) or more; got {args.count}")
    cli_hold.interruptible()
    json_output = getattr(args, "output", "text") == "json"
    try:
        with client.presence.watch(args.topic) as watch:
            cli_client.fail(EXIT_OK, f"watching {args.topic} on {watch.node}")
            if json_output:
                print(json.dumps({"state": _listing_json(watch.state)}), flush=True)
            else:
                for line in _lines("= ", watch.state):
                    print(line, flush=True)
            for count, diff in enumerate(watch, start=1):
                if json_output:
                    print(_diff_json(diff), flush=True)
                else:
                    if diff.resync:
                        cli_client.fail(EXIT_OK, "resync: this watch was too slow; the changes since follow")
                    for line in _lines("- ", diff.leaves) + _lines("+ ", diff.joins):
                        print(line, flush=True)
                if count == args.count:
                    break
    except KeyboardInterrupt:
        return Reply(EXIT_OK, None, None)
    return Reply(EXIT_OK, None, None)
