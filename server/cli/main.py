"""The `tandemkv` command: parses the command line and hands off to the
module that owns each command (serve, up/down, kv/counter/status, txn,
crdt, lease/registry/lock/elect/watch, pubsub, presence).

`--endpoints`, `--output` and `--timeout` may come before the command
words or after them. A usage error is one line on stderr and exit 2.

Exit codes (shared by every command):
  0  done
  1  a "no" answer: key or counter not found, compare-and-set failed;
     `health`: degraded (a leader, but a member unreachable or behind)
  2  bad usage or invalid argument (fix the command)
  3  the cluster is unavailable or unreachable (safe to retry);
     `health`: no leader
  4  outcome unknown: a write may or may not have applied
  5  any other error reported by the cluster
  6  refused by auth: no or wrong credentials, or a permission missing
  128+N  stopped by signal N before it finished
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from typing import NoReturn

from tandemkv.server.cli import client as cli_client, coordination as cli_coordination, crdt as cli_crdt
from tandemkv.server.cli import hold as cli_hold, pubsub as cli_pubsub, txn as cli_txn
from tandemkv.server.cli import health as cli_health, member as cli_member
from tandemkv.server.cli import presence as cli_presence, snapshot as cli_snapshot
from tandemkv.server.cli import jobs as cli_jobs
from tandemkv.server.cli import auth as cli_auth
from tandemkv.server.process import local_cluster, serve

EPILOG = "exit codes: 0 ok, 1 not found / compare failed, 2 usage or invalid argument, " \
         "3 unavailable, 4 outcome unknown, 5 other error, 6 refused by auth, 128+N stopped by signal N"


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), pointing to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(cli_client.EXIT_USAGE, f"tandemkv: {message} (see: {self.prog} --help)\n")


def version() -> str:
    try:
        return importlib.metadata.version("tandemkv")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tandemkv", epilog=EPILOG,
        description="TandemKV: a Raft-backed replicated key-value store.",
    )
    parser.add_argument("--version", action="version", version=f"tandemkv {version()}")
    cli_client.add_common(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(subparsers)
    local_cluster.add_parsers(subparsers)
    cli_client.add_parsers(subparsers)
    cli_txn.add_parser(subparsers)
    cli_crdt.add_parsers(subparsers)
    cli_coordination.add_parsers(subparsers)
    cli_pubsub.add_parsers(subparsers)
    cli_jobs.add_parsers(subparsers)
    cli_presence.add_parsers(subparsers)
    cli_member.add_parsers(subparsers)
    cli_health.add_parser(subparsers)
    cli_snapshot.add_parsers(subparsers)
    cli_auth.add_parsers(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    words, command = cli_coordination.split_command(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(words)
    if command:
        args.argv = command
    try:
        return args.run(args)
    except KeyboardInterrupt as interrupt:
        return cli_hold.exit_code(interrupt)


if __name__ == "__main__":
    sys.exit(main())
