"""The `tandemkv` command: parses the command line and hands off to the
module that owns each command (serve, up/down, kv/counter/status,
lease/registry/lock/elect/watch).

Exit codes (shared by every command):
  0  done
  1  a "no" answer: key or counter not found, compare-and-set failed
  2  bad usage or invalid argument (fix the command)
  3  the cluster is unavailable or unreachable (safe to retry)
  4  outcome unknown: a write may or may not have applied
  5  any other error reported by the cluster
"""

from __future__ import annotations

import argparse
import sys

from tandemkv.server import cli_crdt
from tandemkv.server import cli_client, cli_coordination, local_cluster, serve

EPILOG = "exit codes: 0 ok, 1 not found / compare failed, 2 usage or invalid argument, " \
         "3 unavailable, 4 outcome unknown, 5 other error"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandemkv", epilog=EPILOG,
        description="TandemKV: a Raft-backed replicated key-value store.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(subparsers)
    local_cluster.add_parsers(subparsers)
    cli_client.add_parsers(subparsers)
    cli_crdt.add_parsers(subparsers)
    cli_coordination.add_parsers(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    words, command = cli_coordination.split_command(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(words)
    if command:
        args.argv = command
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
