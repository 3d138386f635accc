"""`tandemkv crdt ...`: CRDT tables on the command line, through
`Client.crdt`. Arguments, output and exit codes follow `cli_client`:

    tandemkv crdt create NAME TYPE      # pn_counter, g_counter, or_set, aw_lww_map, ...
    tandemkv crdt incr NAME [N]         # a counter (created as pn_counter on first use)
    tandemkv crdt add|remove NAME MEMBER
    tandemkv crdt put NAME KEY VALUE
    tandemkv crdt get NAME              # the answering node's current value
    tandemkv crdt scan NAME [PREFIX]
    tandemkv crdt watch NAME            # the value now and after every change, until Ctrl-C

In JSON, members, keys and values are encoded as `cli_client.bytes_json`
says, and a map is a list of {"key": ..., "value": ...} (a binary key
cannot be a JSON object's key).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tandemkv.client import Client
from tandemkv.client._crdt import TYPES, plain
from tandemkv.server.cli import client as cli_client, hold as cli_hold
from tandemkv.server.cli.client import EXIT_OK, Reply


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    crdt = subparsers.add_parser("crdt", help="CRDT tables (always writable, gossip-replicated)")
    ops = crdt.add_subparsers(dest="op", required=True)
    create = cli_client._leaf(ops, "create", cmd_create, "create a table (through Raft)", ("name",))
    create.add_argument("type", choices=sorted(TYPES))
    incr = cli_client._leaf(ops, "incr", cmd_incr, "add N (default 1) to a counter", ("name",))
    incr.add_argument("delta", nargs="?", type=int, default=1)
    cli_client._leaf(ops, "add", cmd_add, "add a member to a set", ("name", "member"))
    cli_client._leaf(ops, "remove", cmd_remove, "remove a member from a set", ("name", "member"))
    cli_client._leaf(ops, "put", cmd_put, "set a key of a map", ("name", "key", "value"))
    cli_client._leaf(ops, "get", cmd_get, "print this node's value of a table", ("name",), read=True)
    scan = cli_client._leaf(ops, "scan", cmd_scan, "list set members or map keys", ("name",), read=True)
    scan.add_argument("prefix", nargs="?", default="")
    cli_client._leaf(ops, "watch", cmd_watch, "print the value now and after every change", ("name",),
                     read=True)


def _text(value: Any) -> str:
    """A value for stdout: empty for an empty set or map or an unset register."""
    if isinstance(value, bytes):
        return cli_client._text(value)
    if isinstance(value, list):
        return "\n".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "\n".join(f"{_text(k)} = {_text(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _note(value: Any) -> str:
    """Why stdout is empty, for stderr."""
    return "not set" if value is None else "empty" if value in ([], {}) else ""


def _json(value: Any) -> Any:
    if isinstance(value, bytes):
        return cli_client.bytes_json(value)
    if isinstance(value, list):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return [{"key": _json(k), "value": _json(v)} for k, v in value.items()]
    return value


def cmd_create(client: Client, args) -> Reply:
    created = client.crdt.create(args.name, args.type)
    return Reply(EXIT_OK, {"created": created}, "created" if created else "exists")


def cmd_incr(client: Client, args) -> Reply:
    client.crdt.counter(args.name).incr(args.delta)
    return Reply(EXIT_OK, {"ok": True}, "OK")


def cmd_add(client: Client, args) -> Reply:
    client.crdt.set(args.name).add(args.member)
    return Reply(EXIT_OK, {"ok": True}, "OK")


def cmd_remove(client: Client, args) -> Reply:
    client.crdt.set(args.name).remove(args.member)
    return Reply(EXIT_OK, {"ok": True}, "OK")


def cmd_put(client: Client, args) -> Reply:
    client.crdt.map(args.name).put(args.key, args.value)
    return Reply(EXIT_OK, {"ok": True}, "OK")


def cmd_get(client: Client, args) -> Reply:
    value = plain(client.crdt.read(args.name))
    return Reply(EXIT_OK, {"value": _json(value)}, _text(value), _note(value))


def cmd_scan(client: Client, args) -> Reply:
    entries = client.crdt.scan(args.name, args.prefix)
    data = [{"key": _json(k), "value": _json(v)} for k, v in entries]
    text = "\n".join(_text(k) + (f" = {_text(v)}" if v else "") for k, v in entries)
    return Reply(EXIT_OK, data, text, "" if entries else "empty")


def cmd_watch(client: Client, args) -> Reply:
    cli_hold.interruptible()  # Ctrl-C ends it even when started in the background
    json_output = getattr(args, "output", "text") == "json"
    try:
        for value in client.crdt.subscribe(args.name):
            data = _json(plain(value))
            print(json.dumps({"node": value.node, "value": data}) if json_output
                  else f"[{value.node}] {_text(plain(value)) or '(' + _note(plain(value)) + ')'}", flush=True)
    except KeyboardInterrupt:
        return Reply(EXIT_OK, None, None)
    return Reply(EXIT_OK, None, None, "the stream ended")
