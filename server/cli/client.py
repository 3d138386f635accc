"""`tandemkv kv ...`, `tandemkv counter ...` and `tandemkv status`: the SDK
on the command line. Owns argument shapes, output (text or JSON) and the
mapping from SDK errors to exit codes and one-line messages; every call
goes through `tandemkv.client.Client`.

Output: stdout carries only data (a value, a count, JSON); every message,
"not found" and the like included, is one line on stderr starting with
`tandemkv:`. In JSON, bytes (keys, values, names) are a string when they
are valid UTF-8 and otherwise `{"base64": "..."}`, so no two byte strings
print alike.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import getpass
import json
import os
import sys
from typing import Any, Callable, NamedTuple

from tandemkv import errors, limits
from tandemkv.client import Client, KeyValue, NodeInfo, Retry, TLSConfig

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3, 4, 5
# Refused by auth: no or wrong credentials (UNAUTHENTICATED), or a permission missing (PERMISSION_DENIED).
EXIT_DENIED = 6
EXIT_CODES = (
    (errors.InvalidArgument, EXIT_USAGE),
    (errors.Unavailable, EXIT_UNAVAILABLE),
    (errors.OutcomeUnknown, EXIT_UNKNOWN),
    (errors.Unauthenticated, EXIT_DENIED),
    (errors.PermissionDenied, EXIT_DENIED),
)
# `kv put KEY -` reads the value from stdin: one byte more than a value may
# hold is read, so a longer input is refused rather than cut.
STDIN_VALUE = "-"


class Reply(NamedTuple):
    """What a command answers: its exit code, its data (for --output json),
    its text for stdout (None: it printed as it went) and a note for stderr
    in text mode (why there is no data: "key 'k' not found")."""

    code: int
    data: Any
    text: str | None
    note: str = ""


def positive_seconds(word: str) -> float:
    """`--timeout`'s type: a number of seconds above zero."""
    try:
        seconds = float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {word!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {word!r}")
    return seconds


def add_common(parser: argparse.ArgumentParser) -> None:
    """The flags every client command takes, before or after its words."""
    parser.add_argument("--endpoints", default=argparse.SUPPRESS,
                        help="host:port,... (default: $TANDEMKV_ENDPOINTS, else ./tandemkv-data/cluster.json)")
    parser.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="output format (default text)")
    parser.add_argument("--timeout", type=positive_seconds, default=argparse.SUPPRESS, metavar="SECONDS",
                        help="give up after this long, retries included (default 20)")
    # TLS (docs/security.md): each flag beats its environment variable.
    parser.add_argument("--ca", dest="tls_ca", default=argparse.SUPPRESS, metavar="FILE",
                        help="PEM CA bundle that signed the nodes' certificates: speak TLS (env TANDEMKV_CA)")
    parser.add_argument("--cert", dest="tls_cert", default=argparse.SUPPRESS, metavar="FILE",
                        help="PEM client certificate, for nodes that require one (env TANDEMKV_CERT)")
    parser.add_argument("--key", dest="tls_key", default=argparse.SUPPRESS, metavar="FILE",
                        help="PEM private key of --cert (env TANDEMKV_KEY)")
    # Credentials (docs/security.md): each flag beats its environment variable.
    parser.add_argument("--user", dest="auth_user", default=argparse.SUPPRESS, metavar="NAME",
                        help="authenticate as NAME; the password is asked for unless given (env TANDEMKV_USER)")
    parser.add_argument("--password", dest="auth_password", default=argparse.SUPPRESS, metavar="PASSWORD",
                        help="--user's password (env TANDEMKV_PASSWORD; visible to other local users in ps: "
                             "prefer the prompt or the environment)")
    parser.add_argument("--token", dest="auth_token", default=argparse.SUPPRESS, metavar="TOKEN",
                        help="a token from `tandemkv auth token` instead of --user (env TANDEMKV_TOKEN)")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    kv = subparsers.add_parser("kv", help="keys and values").add_subparsers(dest="op", required=True)
    put = _leaf(kv, "put", cmd_put, "set a key (VALUE - reads it from stdin)", ("key", "value"))
    put.add_argument("--lease", type=int, default=0, metavar="ID",
                     help="attach the key to lease ID: deleted when the lease ends")
    _leaf(kv, "get", cmd_get, "print a key's value (exit 1 if missing)", ("key",), read=True)
    delete = _leaf(kv, "del", cmd_delete, "delete a key", ("key",))
    delete.add_argument("--prefix", action="store_true", help="delete every key starting with KEY")
    ranged = _leaf(kv, "range", cmd_range, "list keys starting with PREFIX", (), read=True)
    ranged.add_argument("prefix", nargs="?", default="")
    ranged.add_argument("--limit", type=int, default=0)
    counter = subparsers.add_parser("counter", help="int64 counters").add_subparsers(dest="op", required=True)
    incr = _leaf(counter, "incr", cmd_incr, "add N (default 1), print the new value", ("name",))
    incr.add_argument("delta", nargs="?", type=int, default=1)
    _leaf(counter, "get", cmd_counter_get, "print a counter (0 if never set)", ("name",), read=True)
    _leaf(counter, "set", cmd_counter_set, "set a counter, print the previous value", ("name", "value:int"))
    _leaf(counter, "cas", cmd_cas, "set to NEW if it is OLD (exit 1 if not)", ("name", "old:int", "new:int"))
    _leaf(subparsers, "status", cmd_status,
          "members, leader, term, commit and applied index, gossip peers heard per node", (), read=True)


def _leaf(subparsers, name: str, handler: Callable, help_text: str, positionals: tuple[str, ...],
          read: bool = False):
    """A command; `read=True` marks one that changes nothing, so a lost
    answer is "unavailable" (exit 3), never "may have applied" (exit 4)."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    for positional in positionals:
        label, _, kind = positional.partition(":")
        parser.add_argument(label, type={"int": int, "float": float}.get(kind, str))
    add_common(parser)
    parser.set_defaults(run=lambda args: run(args, handler, read))
    return parser


def run(args: argparse.Namespace, handler: Callable[[Client, argparse.Namespace], tuple], read: bool = False) -> int:
    """Runs one command: data on stdout, one line on stderr for anything else."""
    json_output = getattr(args, "output", "text") == "json"
    retry = Retry(deadline_s=getattr(args, "timeout", Retry.deadline_s))
    try:
        with Client(getattr(args, "endpoints", None), retry=retry, tls=tls_of(args), **auth_of(args)) as client:
            reply = Reply(*handler(client, args))
    except ValueError as error:
        return fail(EXIT_USAGE, str(error))
    except errors.OutcomeUnknown as error:
        if not read:
            return fail(EXIT_UNKNOWN, f"OutcomeUnknown: {error.message}")
        # A read changes nothing: a lost answer is only "no answer".
        detail = error.message.partition("; it may have applied")[0]
        return fail(EXIT_UNAVAILABLE, f"Unavailable: no answer ({detail}); nothing was changed, retry")
    except errors.TandemKVError as error:
        code = next((c for cls, c in EXIT_CODES if isinstance(error, cls)), EXIT_ERROR)
        hint = " (is the cluster running? check --endpoints)" if code == EXIT_UNAVAILABLE else ""
        if isinstance(error, errors.Unauthenticated) and not auth_of_given(args):
            hint = " (pass --user NAME or --token TOKEN, or set TANDEMKV_USER)"
        return fail(code, f"{type(error).__name__}: {error.message}{hint}")
    if reply.text is not None:  # None: the command printed as it went
        if json_output:
            print(json.dumps(reply.data), flush=True)
        elif reply.text:
            print(reply.text, flush=True)
    if reply.note and not json_output:
        fail(reply.code, reply.note)
    return reply.code


def tls_of(args: argparse.Namespace) -> TLSConfig | None:
    """The TLS the command's flags ask for, each missing one from its
    environment variable; None (no flag): the SDK's default (environment,
    then `tandemkv up --tls`'s cluster.json, client/_tls.py)."""
    flags = {name: getattr(args, f"tls_{name}", None) for name in ("ca", "cert", "key")}
    if not any(flags.values()):
        return None
    found = TLSConfig.from_environment(os.environ) or TLSConfig()
    return TLSConfig(ca=flags["ca"] or found.ca, cert=flags["cert"] or found.cert, key=flags["key"] or found.key,
                     server_name=found.server_name)


def auth_of(args: argparse.Namespace) -> dict[str, str]:
    """The credentials the command's flags ask for, each missing one from
    its environment variable; the password is asked for (without echo on
    a terminal, else one line of stdin) when a user has none. Empty: the
    SDK's default (TANDEMKV_TOKEN, TANDEMKV_USER/_PASSWORD)."""
    token = getattr(args, "auth_token", None) or os.environ.get("TANDEMKV_TOKEN")
    user = getattr(args, "auth_user", None)
    password = getattr(args, "auth_password", None)
    if token and (user or password):
        raise ValueError("pass --token or --user (with --password), not both")
    if token:
        return {"token": token}
    user = user or os.environ.get("TANDEMKV_USER")
    password = password or os.environ.get("TANDEMKV_PASSWORD")
    if password and not user:
        raise ValueError("--password needs --user (or TANDEMKV_USER)")
    if not user:
        return {}
    return {"user": user, "password": password if password is not None else ask_password(f"password for {user}")}


def auth_of_given(args: argparse.Namespace) -> bool:
    """Whether the command was given credentials (flags or environment)."""
    return any(getattr(args, f"auth_{name}", None) for name in ("user", "token")) or any(
        os.environ.get(name) for name in ("TANDEMKV_USER", "TANDEMKV_TOKEN"))


def ask_password(prompt: str) -> str:
    """A password from the terminal without echo, or one line of stdin
    when it is not a terminal (a script piping it in)."""
    if sys.stdin.isatty():
        try:
            return getpass.getpass(f"tandemkv: {prompt}: ")
        except EOFError:
            raise ValueError(f"no {prompt} given") from None
    line = sys.stdin.readline(limits.AUTH_PASSWORD_BYTES_MAX + 2).rstrip("\r\n")
    if not line:
        raise ValueError(f"no {prompt} on stdin (pipe it in, or use --password / TANDEMKV_PASSWORD)")
    return line


def fail(code: int, message: str) -> int:
    print(f"tandemkv: {message}", file=sys.stderr, flush=True)
    return code


def _text(data: bytes) -> str:
    """Bytes for a human: UTF-8, other bytes as \\xNN escapes."""
    return data.decode("utf-8", errors="backslashreplace")


def bytes_json(data: bytes) -> str | dict[str, str]:
    """Bytes for JSON: the text when valid UTF-8, else {"base64": ...}."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _kv_json(kv: KeyValue) -> dict[str, Any]:
    return {"key": bytes_json(kv.key), "value": bytes_json(kv.value), "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision, "version": kv.version}


def value_argument(value: str) -> bytes | str:
    """A value from the command line, or from stdin when it is `-`."""
    if value != STDIN_VALUE:
        return value
    data = sys.stdin.buffer.read(limits.VALUE_SIZE_BYTES_MAX + 1)
    if len(data) > limits.VALUE_SIZE_BYTES_MAX:
        raise ValueError(f"the value on stdin is longer than VALUE_SIZE_BYTES_MAX="
                         f"{limits.VALUE_SIZE_BYTES_MAX} bytes")
    return data


def cmd_put(client: Client, args) -> Reply:
    result = client.put(args.key, value_argument(args.value), lease=args.lease)
    return Reply(EXIT_OK, {"revision": result.revision}, "OK")


def cmd_get(client: Client, args) -> Reply:
    kv = client.get_kv(args.key)
    if kv is None:
        return Reply(EXIT_NO, None, "", f"key {args.key!r} not found")
    return Reply(EXIT_OK, _kv_json(kv), _text(kv.value))


def cmd_delete(client: Client, args) -> Reply:
    deleted = client.delete(args.key, prefix=args.prefix)
    return Reply(EXIT_OK, {"deleted": deleted}, f"deleted {deleted}")


def cmd_range(client: Client, args) -> Reply:
    result = client.range(args.prefix, limit=args.limit)
    data = {"kvs": [_kv_json(kv) for kv in result], "more": result.more}
    lines = [f"{_text(kv.key)} = {_text(kv.value)}" for kv in result]
    note = "more keys match; use --limit or a longer prefix" if result.more else "" if lines else "no keys"
    return Reply(EXIT_OK, data, "\n".join(lines), note)


def cmd_incr(client: Client, args) -> Reply:
    value = client.counter(args.name).incr(args.delta)
    return Reply(EXIT_OK, {"value": value}, str(value))


def cmd_counter_get(client: Client, args) -> Reply:
    value = client.counter(args.name).get()
    return Reply(EXIT_OK, {"value": value}, str(value))


def cmd_counter_set(client: Client, args) -> Reply:
    previous = client.counter(args.name).set(args.value)
    return Reply(EXIT_OK, {"prev_value": previous}, f"was {previous}")


def cmd_cas(client: Client, args) -> Reply:
    succeeded = client.counter(args.name).compare_and_set(args.old, args.new)
    if succeeded:
        return Reply(EXIT_OK, {"succeeded": True}, "OK")
    return Reply(EXIT_NO, {"succeeded": False}, "", f"not changed: the counter is not {args.old}")


def cmd_status(client: Client, args) -> Reply:
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
    return Reply(code, {"leader": status.leader, "term": status.term, "nodes": nodes}, text,
                 "" if status.leader else "no leader: the cluster cannot serve writes or reads")


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
