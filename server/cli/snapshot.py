"""`tandemkv snapshot save|status|restore`: backups (docs/backup.md).

    tandemkv snapshot save FILE [--endpoints ...]     # a backup of the running cluster
    tandemkv snapshot status FILE [--json]            # check it; what it holds
    tandemkv snapshot restore FILE --data-dir DIR --name N --raft HOST:PORT --client HOST:PORT \\
        [--peers 'n2=RAFT,CLIENT;n3=RAFT,CLIENT']      # one member of a new cluster

`save` goes through `Client.maintenance.snapshot` (the leader's backup,
written to FILE.part, checked, fsynced, renamed). `status` and `restore`
work on the file alone, no cluster needed; they run in `process`
(backup_files.py), imported only when they run, so that building the
command line loads no LMDB.

Exit codes, beyond the shared ones (main.py):
  1  `status` or `restore`: FILE is not a whole backup (truncated, damaged,
     not a backup); the message says what is wrong. Nothing was written.
  2  bad usage: FILE unreadable, data dir not empty, a member named twice.
  3  `save`: no node could take the backup, or the stream broke (retry);
     FILE is left as it was.
  5  `restore`: writing the data dir failed (the disk?); nothing was left.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from tandemkv.client import Client
from tandemkv.client._maintenance_core import SNAPSHOT_TIMEOUT_S
from tandemkv.server.cli import client as cli_client
from tandemkv.server.cli.client import EXIT_ERROR, EXIT_NO, EXIT_OK, EXIT_USAGE, Reply, fail

EPILOG = ("exit codes: 0 ok, 1 FILE is not a whole backup, 2 usage (unreadable FILE, data dir not "
          "empty), 3 unavailable (save: retry), 5 other error")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    snapshot = subparsers.add_parser("snapshot", help="backups: save from a cluster, check, restore",
                                     epilog=EPILOG)
    ops = snapshot.add_subparsers(dest="op", required=True)
    save = cli_client._leaf(ops, "save", cmd_save, "write a backup of the running cluster to FILE "
                            "(taken on the leader; FILE.part until checked)", ("file",), read=True)
    _json_flag(save)
    status = ops.add_parser("status", help="check FILE and print what it holds", epilog=EPILOG,
                            description="Check FILE (size, SHA-256, format) and print its revision, "
                                        "applied index, key count and sizes. Reads FILE only.")
    status.add_argument("file", type=Path)
    _output_flags(status)
    status.set_defaults(run=run_status)
    restore = ops.add_parser("restore", help="seed one member of a new cluster from FILE", epilog=EPILOG,
                             description="Seed DIR (new or empty) for member NAME of a new cluster from "
                                         "FILE. Restore the same FILE for every member, each with its own "
                                         "name and addresses and the others as --peers; every member then "
                                         "starts at the backup's revision.")
    restore.add_argument("file", type=Path)
    restore.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    restore.add_argument("--name", required=True, help="this member's name")
    restore.add_argument("--raft", required=True, metavar="HOST:PORT", help="this member's Raft address")
    restore.add_argument("--client", required=True, metavar="HOST:PORT", help="this member's client address")
    restore.add_argument("--peers", default="", metavar="'n2=RAFT,CLIENT;...'",
                         help="the new cluster's other members (as `serve --peers`)")
    _output_flags(restore)
    restore.set_defaults(run=run_restore)


def _output_flags(parser: argparse.ArgumentParser) -> None:
    """--output and --json: these commands work on a file, so they take
    none of the cluster's flags (--endpoints, --timeout)."""
    parser.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="output format (default text)")
    _json_flag(parser)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", dest="output", action="store_const", const="json", default=argparse.SUPPRESS,
                        help="print JSON (as --output json)")


def cmd_save(client: Client, args) -> Reply:
    try:
        info = client.maintenance.snapshot(args.file, timeout_s=getattr(args, "timeout", SNAPSHOT_TIMEOUT_S))
    except OSError as error:  # FILE.part could not be written
        raise ValueError(f"cannot write {args.file}: {error.strerror or error}") from None
    data = {"file": str(info.path), "endpoint": info.endpoint, "node": info.node, "revision": info.revision,
            "applied_index": info.applied_index, "key_count": info.key_count, "file_bytes": info.file_bytes,
            "sha256": info.sha256}
    text = (f"saved {info.path}: revision {info.revision}, {info.key_count} keys, {info.file_bytes} bytes "
            f"(from {info.node} at {info.endpoint}; sha256 {info.sha256[:16]}...)")
    return Reply(EXIT_OK, data, text)


def run_status(args) -> int:
    from tandemkv.server.process import backup_files

    if not args.file.is_file():
        return fail(EXIT_USAGE, f"{args.file}: no such file")
    try:
        info = backup_files.status(args.file)
    except backup_files.BackupInvalid as error:
        return fail(EXIT_NO, f"not a whole backup: {error}")
    except OSError as error:
        return fail(EXIT_USAGE, f"cannot read {args.file}: {error.strerror or error}")
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"file": str(args.file), **info.as_dict()}), flush=True)
    else:
        print(_describe(args.file, info), flush=True)
    return EXIT_OK


def _describe(path: Path, info) -> str:
    taken = datetime.datetime.fromtimestamp(info.taken_unix_ms / 1000, datetime.timezone.utc)
    return "\n".join([
        f"file:           {path} ({info.file_bytes} bytes; SHA-256 checked: {info.sha256})",
        f"taken on:       {info.node} at {taken.isoformat(timespec='seconds')}",
        f"revision:       {info.revision}",
        f"applied index:  {info.applied_index}",
        f"keys:           {info.key_count}",
        f"state image:    {info.state_image_bytes} bytes",
        f"CRDT image:     {info.crdt_image_bytes} bytes",
    ])


def run_restore(args) -> int:
    from tandemkv.server.process import backup_files, settings

    if not args.file.is_file():
        return fail(EXIT_USAGE, f"{args.file}: no such file")
    try:
        peers = settings.parse_peers(args.peers)
        restored = backup_files.restore(args.file, args.data_dir, (args.name, args.raft, args.client), peers)
    except backup_files.BackupInvalid as error:
        return fail(EXIT_NO, f"not a whole backup, nothing restored: {error}")
    except ValueError as error:
        return fail(EXIT_USAGE, str(error))
    except OSError as error:
        return fail(EXIT_ERROR, f"restoring into {args.data_dir} failed, nothing was left there: "
                                f"{error.strerror or error}")
    info = restored.info
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"data_dir": str(restored.data_dir), "name": args.name,
                          "serve": restored.serve_command(), **info.as_dict()}), flush=True)
    else:
        print(f"restored {args.name} into {restored.data_dir}: revision {info.revision}, {info.key_count} keys "
              f"(backup of {info.node})\nstart it with (and the cluster's secret, if it has one):\n  "
              f"{restored.serve_command()}", flush=True)
    return EXIT_OK
