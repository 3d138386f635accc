"""`tandemkv txn`: one transaction (compares, then the ops of the branch
they choose, applied atomically) on the command line, etcdctl-like.

The transaction comes from flags or, without them, from stdin as three
blocks separated by an empty line: compares, success ops, failure ops
(each ended by one empty line, so an empty line first means no compares;
`#` starts a comment line). Words split like a
shell's (quote a value with spaces):

    tandemkv txn <<'EOF'
    value config == v1
    version lock == 0

    put config v2
    incr config-changes

    get config
    EOF

    tandemkv txn --compare 'value config == v1' --success 'put config v2' --failure 'get config'

Compares: `value KEY OP VALUE`, `version KEY OP N` (0: missing),
`create KEY OP REV`, `mod KEY OP REV`, `counter NAME OP N`; OP is one of
== (or =), !=, >, <. Ops: `put KEY VALUE`, `get KEY`, `del KEY [--prefix]`,
`range PREFIX [LIMIT]`, `incr NAME [N]`, `counter-get NAME`,
`counter-set NAME N`, `counter-del NAME`.

Output: SUCCESS or FAILURE, then one line per op of the branch that ran;
exit 0 when the compares held, 1 when they did not (the failure ops ran).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any, Callable

from tandemkv import limits
from tandemkv.client import Client, Op, TxnOp
from tandemkv.server.cli.client import EXIT_NO, EXIT_OK, Reply, _kv_json, _leaf, _text

COMPARE_OPS = {"==": "==", "=": "==", "!=": "!=", ">": ">", "<": "<"}
COMPARES = {"value": "compare_value", "version": "compare_version", "create": "compare_create_revision",
            "mod": "compare_mod_revision", "counter": "compare_counter"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    txn = _leaf(subparsers, "txn", cmd_txn, "run a transaction: compares, then success or failure ops "
                "(from the flags, else from stdin in three blocks; see the README)", ())
    txn.add_argument("--compare", action="append", default=[], metavar="COMPARE",
                     help="e.g. 'value KEY == VALUE', 'version KEY == 0', 'counter NAME > 5'")
    txn.add_argument("--success", action="append", default=[], metavar="OP",
                     help="an op if every compare holds: 'put K V', 'get K', 'del K', 'incr N 2', ...")
    txn.add_argument("--failure", action="append", default=[], metavar="OP", help="an op otherwise")


def _blocks(args) -> tuple[list[str], list[str], list[str]]:
    if args.compare or args.success or args.failure:
        return args.compare, args.success, args.failure
    data = sys.stdin.read(limits.TXN_INPUT_BYTES_MAX + 1)
    if len(data) > limits.TXN_INPUT_BYTES_MAX:
        raise ValueError(f"the transaction on stdin is longer than TXN_INPUT_BYTES_MAX={limits.TXN_INPUT_BYTES_MAX}")
    blocks: list[list[str]] = [[]]
    for line in data.splitlines():
        if not line.strip():
            blocks.append([])  # each empty line ends a block
        elif not line.lstrip().startswith("#"):
            blocks[-1].append(line)
    while len(blocks) > 3 and not blocks[-1]:
        blocks.pop()
    if len(blocks) > 3:
        raise ValueError("a transaction on stdin is at most three blocks (compares, success ops, "
                         "failure ops), each ended by one empty line")
    compares, success, failure = (blocks + [[], [], []])[:3]
    return compares, success, failure


def _words(line: str, what: str) -> list[str]:
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise ValueError(f"{what} {line!r}: {error}") from None
    if not words:
        raise ValueError(f"{what} is empty")
    return words


def _number(word: str, line: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"{line!r}: {word!r} is not an integer") from None


def _add_compare(txn, line: str) -> None:
    words = _words(line, "compare")
    if len(words) != 4 or words[0] not in COMPARES or words[2] not in COMPARE_OPS:
        raise ValueError(f"compare {line!r}: expected 'value|version|create|mod|counter KEY OP OPERAND' "
                         f"with OP one of == != > <")
    kind, key, op, operand = words
    getattr(txn, COMPARES[kind])(key, COMPARE_OPS[op], operand if kind == "value" else _number(operand, line))


# Each op: (the words it takes after its name, how to build it).
OPS: dict[str, tuple[str, Callable[..., TxnOp]]] = {
    "put": ("KEY VALUE", lambda key, value: Op.put(key, value)),
    "get": ("KEY", lambda key: Op.get(key)),
    "del": ("KEY [--prefix]", lambda key, *flag: Op.delete(key, prefix=_prefix_flag(flag))),
    "range": ("PREFIX [LIMIT]", lambda prefix, limit="0": Op.range(prefix, limit=int(limit))),
    "incr": ("NAME [N]", lambda name, delta="1": Op.incr(name, int(delta))),
    "counter-get": ("NAME", lambda name: Op.counter_get(name)),
    "counter-set": ("NAME N", lambda name, value: Op.counter_set(name, int(value))),
    "counter-del": ("NAME", lambda name: Op.counter_delete(name)),
}


def _prefix_flag(words: tuple[str, ...]) -> bool:
    if words not in ((), ("--prefix",)):
        raise ValueError(f"unexpected {' '.join(words)!r}")
    return bool(words)


def _op(line: str) -> tuple[str, TxnOp]:
    words = _words(line, "op")
    if words[0] not in OPS:
        raise ValueError(f"op {line!r}: expected one of {', '.join(OPS)}")
    shape, build = OPS[words[0]]
    try:
        return words[0], build(*words[1:])
    except (TypeError, ValueError):
        raise ValueError(f"op {line!r}: expected '{words[0]} {shape}'") from None


def cmd_txn(client: Client, args) -> Reply:
    compares, success_lines, failure_lines = _blocks(args)
    if not (success_lines or failure_lines):
        raise ValueError("a transaction needs at least one op (--success/--failure, or blocks on stdin)")
    txn = client.txn()
    for line in compares:
        _add_compare(txn, line)
    success = [_op(line) for line in success_lines]
    failure = [_op(line) for line in failure_lines]
    txn.on_success(*(op for _, op in success)).on_failure(*(op for _, op in failure))
    result = txn.commit()
    kinds = [kind for kind, _ in (success if result.succeeded else failure)]
    answers = [_answer(kind, response) for kind, response in zip(kinds, result.responses)]
    data = {"succeeded": result.succeeded, "revision": result.revision,
            "responses": [{"op": kind, **json_answer} for kind, (json_answer, _) in zip(kinds, answers)]}
    text = "\n".join(["SUCCESS" if result.succeeded else "FAILURE", *(line for _, line in answers)])
    return Reply(EXIT_OK if result.succeeded else EXIT_NO, data, text)


def _answer(kind: str, response: Any) -> tuple[dict[str, Any], str]:
    """One op's answer: (its JSON fields, its text line)."""
    if kind == "put":
        return {"revision": response.revision}, "OK"
    if kind == "get":
        if response is None:
            return {"kv": None}, "(not found)"
        return {"kv": _kv_json(response)}, _text(response.value)
    if kind == "range":
        pairs = ", ".join(f"{_text(kv.key)} = {_text(kv.value)}" for kv in response)
        return {"kvs": [_kv_json(kv) for kv in response], "more": response.more}, pairs or "(no keys)"
    if kind == "del":
        return {"deleted": response}, f"deleted {response}"
    if kind == "counter-set":
        return {"prev_value": response}, f"was {response}"
    if kind == "counter-del":
        return {"deleted": response}, f"deleted {int(response)}"
    return {"value": response}, str(response)  # incr, counter-get
