"""`tandemkv kv ...`, `tandemkv counter ...` and `tandemkv status`: the SDK
on the command line. Owns argument shapes, output (text or JSON) and the
mapping from SDK errors to exit codes and one-line messages; every call
goes through `tandemkv.client.Client`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Callable

from tandemkv import errors
from tandemkv.client import Client, KeyValue, NodeInfo, Retry

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3, 4, 5
EXIT_CODES = (
    (errors.InvalidArgument, EXIT_USAGE),
    (errors.Unavailable, EXIT_UNAVAILABLE),
    (errors.OutcomeUnknown, EXIT_UNKNOWN),
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoints", default=argparse.SUPPRESS,
                        help="host:port,... (default: $TANDEMKV_ENDPOINTS, else ./tandemkv-data/cluster.json)")
    parser.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="output format (default text)")
    parser.add_argument("--timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS",
                        help="give up after this long, retries included (default 20)")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    kv = subparsers.add_parser("kv", help="keys and values").add_subparsers(dest="op", required=True)
    _leaf(kv, "put", cmd_put, "set a key", ("key", "value"))
    _leaf(kv, "get", cmd_get, "print a key's value (exit 1 if missing)", ("key",))
    delete = _leaf(kv, "del", cmd_delete, "delete a key", ("key",))
    delete.add_argument("--prefix", action="store_true", help="delete every key starting with KEY")
    ranged = _leaf(kv, "range", cmd_range, "list keys starting with PREFIX", ())
    ranged.add_argument("prefix", nargs="?", default="")
    ranged.add_argument("--limit", type=int, default=0)
    counter = subparsers.add_parser("counter", help="int64 counters").add_subparsers(dest="op", required=True)
    incr = _leaf(counter, "incr", cmd_incr, "add N (default 1), print the new value", ("name",))
    incr.add_argument("delta", nargs="?", type=int, default=1)
    _leaf(counter, "get", cmd_counter_get, "print a counter (0 if never set)", ("name",))
    _leaf(counter, "set", cmd_counter_set, "set a counter, print the previous value", ("name", "value:int"))
    _leaf(counter, "cas", cmd_cas, "set to NEW if it is OLD (exit 1 if not)", ("name", "old:int", "new:int"))
    _leaf(subparsers, "status", cmd_status,
          "members, leader, term, commit and applied index, gossip peers heard per node", ())


def _leaf(subparsers, name: str, handler: Callable, help_text: str, positionals: tuple[str, ...]):
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    for positional in positionals:
        label, _, kind = positional.partition(":")
        parser.add_argument(label, type={"int": int, "float": float}.get(kind, str))
    _common(parser)
    parser.set_defaults(run=lambda args: run(args, handler))
    return parser


def run(args: argparse.Namespace, handler: Callable[[Client, argparse.Namespace], tuple[int, Any, str]]) -> int:
    """Runs one command: exit code, and one line on stderr for any error."""
    output = getattr(args, "output", "text")
    retry = Retry(deadline_s=getattr(args, "timeout", Retry.deadline_s))
    try:
        with Client(getattr(args, "endpoints", None), retry=retry) as client:
            code, data, text = handler(client, args)
    except ValueError as error:
        return _fail(EXIT_USAGE, str(error))
    except errors.TandemKVError as error:
        code = next((c for cls, c in EXIT_CODES if isinstance(error, cls)), EXIT_ERROR)
        hint = " (is the cluster running? check --endpoints)" if code == EXIT_UNAVAILABLE else ""
        return _fail(code, f"{type(error).__name__}: {error.message}{hint}")
    if text is not None:  # None: the command printed as it went
        print(json.dumps(data) if output == "json" else text, flush=True)
    return code


def _fail(code: int, message: str) -> int:
    print(f"tandemkv: {message}", file=sys.stderr)
    return code


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _kv_json(kv: KeyValue) -> dict[str, Any]:
    return {"key": _text(kv.key), "value": _text(kv.value), "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision, "version": kv.version}


def cmd_put(client: Client, args) -> tuple[int, Any, str]:
    result = client.put(args.key, args.value)
    return EXIT_OK, {"revision": result.revision}, "OK"


def cmd_get(client: Client, args) -> tuple[int, Any, str]:
    kv = client.get_kv(args.key)
    if kv is None:
        return EXIT_NO, None, f"(key {args.key!r} not found)"
    return EXIT_OK, _kv_json(kv), _text(kv.value)


def cmd_delete(client: Client, args) -> tuple[int, Any, str]:
    deleted = client.delete(args.key, prefix=args.prefix)
    return EXIT_OK, {"deleted": deleted}, f"deleted {deleted}"


def cmd_range(client: Client, args) -> tuple[int, Any, str]:
    result = client.range(args.prefix, limit=args.limit)
    data = {"kvs": [_kv_json(kv) for kv in result], "more": result.more}
    lines = [f"{_text(kv.key)} = {_text(kv.value)}" for kv in result]
    if result.more:
        lines.append("(more keys match; use --limit or a longer prefix)")
    return EXIT_OK, data, "\n".join(lines) if lines else "(no keys)"


def cmd_incr(client: Client, args) -> tuple[int, Any, str]:
    value = client.counter(args.name).incr(args.delta)
    return EXIT_OK, {"value": value}, str(value)


def cmd_counter_get(client: Client, args) -> tuple[int, Any, str]:
    value = client.counter(args.name).get()
    return EXIT_OK, {"value": value}, str(value)


def cmd_counter_set(client: Client, args) -> tuple[int, Any, str]:
    previous = client.counter(args.name).set(args.value)
    return EXIT_OK, {"prev_value": previous}, f"was {previous}"


def cmd_cas(client: Client, args) -> tuple[int, Any, str]:
    counter = client.counter(args.name)
    succeeded = counter.compare_and_set(args.old, args.new)
    if succeeded:
        return EXIT_OK, {"succeeded": True}, "OK"
    return EXIT_NO, {"succeeded": False}, f"not changed: the counter is not {args.old}"


def cmd_status(client: Client, args) -> tuple[int, Any, str]:
    """One row per node (Raft state and how many gossip peers it hears),
    then one `gossip` line per node that hears a peer as suspect or dead or
    has rejected gossip frames."""
    status = client.status()
    nodes = [dataclasses.asdict(node) for node in status.nodes]
    header = (f"{'NAME':6} {'ENDPOINT':21} {'ROLE':9} {'TERM':>5} {'COMMIT':>8} {'APPLIED':>8}  "
              f"{'GOSSIP':11} LEADER")
    rows = [f"{n.name or '?':6} {n.endpoint:21} {n.role or 'down':9} {n.term:>5} {n.commit_index:>8} "
            f"{n.applied_index:>8}  {_gossip_cell(n):11} {n.leader or '-'}"
            + (f"  ({n.error})" if n.error else "")
            for n in status.nodes]
    notes = [note for note in map(_gossip_note, status.nodes) if note]
    text = "\n".join([f"leader: {status.leader or '(none)'}  term: {status.term}", header, *rows, *notes])
    code = EXIT_OK if status.leader else EXIT_UNAVAILABLE
    return code, {"leader": status.leader, "term": status.term, "nodes": nodes}, text


def _gossip_cell(node: NodeInfo) -> str:
    """`alive/peers alive`; `-` when the node's available plane did not answer."""
    if node.gossip is None:
        return "-"
    return f"{node.gossip.alive}/{len(node.gossip.peers)} alive"


def _gossip_note(node: NodeInfo) -> str:
    """What the GOSSIP column hides: which peers are not alive, and the
    rejected frames by reason; empty when there is nothing to say."""
    if node.gossip is None:
        return ""
    parts = [f"{p.name} {p.state} ({p.rounds_silent} rounds silent)"
             for p in node.gossip.peers if p.state != "alive"]
    if node.gossip.rejected:
        parts.append("rejected " + " ".join(f"{r}={c}" for r, c in node.gossip.rejected.items()))
    return (f"gossip {node.name}: " + "; ".join(parts)) if parts else ""
