"""`tandemkv lease|registry|lock|elect|watch`: leases, names, locks,
elections and watches on the command line, through `tandemkv.client`.

Commands that hold something (`lease keepalive`, `registry register`,
`elect`) keep it until SIGINT (Ctrl-C) or SIGTERM, then give it up and
exit 0; if the hold is lost meanwhile (the lease expired) they exit 3.
`lock` runs a command while holding the lock, passes those signals on to
it, and exits with the command's code once it has released the lock.
`watch` prints one line per event until Ctrl-C (or `--count` events). How
the signals are handled: cli_hold.py. Exit codes, output and one-line
errors are those of `cli_client`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from tandemkv.client import AlreadyExists, Client, Lease, NotAcquired, WatchEvent
from tandemkv.client import _coordination_ops as cops
from tandemkv.server.cli import hold as cli_hold
from tandemkv.server.cli.client import EXIT_NO, EXIT_OK, Reply, _leaf, _text, bytes_json

LOCK_TOKEN_ENV = "TANDEMKV_LOCK_TOKEN"
DEFAULT_TTL_S = 10.0
# What a command that printed its own output returns besides its exit code.
PRINTED = (None, None)
# Flags that every command takes with a value: skipped when looking for the
# command word (`tandemkv --endpoints X lock ...`).
GLOBAL_FLAGS_WITH_VALUE = ("--endpoints", "--output", "--timeout")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    lease = subparsers.add_parser("lease", help="leases").add_subparsers(dest="op", required=True)
    _leaf(lease, "grant", cmd_lease_grant, "grant a lease of TTL_S seconds, print its id", ("ttl_s:float",))
    keep = _leaf(lease, "keepalive", cmd_lease_keepalive, "renew a lease until Ctrl-C", ("id:int",))
    keep.add_argument("--once", action="store_true", help="renew once, print the TTL and exit")
    _leaf(lease, "revoke", cmd_lease_revoke, "revoke a lease (exit 1 if gone)", ("id:int",))
    _leaf(lease, "list", cmd_lease_list, "list every lease: id, granted TTL, seconds left", (),
          read=True)
    _leaf(lease, "ttl", cmd_lease_ttl, "print a lease's remaining seconds (exit 1 if gone)", ("id:int",),
          read=True)
    registry = subparsers.add_parser("registry", help="the name registry").add_subparsers(dest="op", required=True)
    register = _leaf(registry, "register", cmd_register,
                     "register NAME, print the token, hold it until Ctrl-C", ("name", "value"))
    register.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, metavar="S",
                          help="lease TTL: the name is freed this long after this process dies")
    _leaf(registry, "whereis", cmd_whereis, "print NAME's value (exit 1 if not registered)", ("name",),
          read=True)
    _leaf(registry, "unregister", cmd_unregister, "release NAME (exit 1 if TOKEN is not its)",
          ("name", "token:int"))
    listed = _leaf(registry, "list", cmd_registry_list, "list names starting with PREFIX", (), read=True)
    listed.add_argument("prefix", nargs="?", default="")
    lock = _leaf(subparsers, "lock", cmd_lock,
                 f"run COMMAND while holding lock NAME (token in ${LOCK_TOKEN_ENV})", ("name",))
    lock.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, metavar="S")
    lock.add_argument("--wait", type=float, default=30.0, metavar="S", help="give up after S seconds")
    lock.set_defaults(argv=[])  # the words after "--": see split_command
    lock.usage = "tandemkv lock NAME [--ttl S] [--wait S] [--endpoints ...] -- COMMAND..."
    elect = _leaf(subparsers, "elect", cmd_elect, "campaign in NAME, print when elected, lead until Ctrl-C",
                  ("name", "value"))
    elect.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, metavar="S")
    watch = _leaf(subparsers, "watch", cmd_watch, "print one line per change of a key (or --prefix)",
                  ("key",), read=True)
    watch.add_argument("--prefix", action="store_true", help="watch every key starting with KEY")
    watch.add_argument("--from", dest="start", type=int, default=0, metavar="REV",
                       help="first revision to print (default: changes from now on)")
    watch.add_argument("--count", type=int, default=0, metavar="N", help="exit after N events")


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """`tandemkv [flags] lock ... -- COMMAND...` (and `jobs worker ... --
    COMMAND...`): (tandemkv's words, the command's)."""
    position = 0
    while position < len(argv) and argv[position].startswith("-"):
        position += 2 if argv[position] in GLOBAL_FLAGS_WITH_VALUE else 1
    takes_command = argv[position:position + 1] == ["lock"] or argv[position:position + 2] == ["jobs", "worker"]
    if takes_command and "--" in argv[position:]:
        cut = argv.index("--", position)
        return argv[:cut], argv[cut + 1:]
    return argv, []


# -- lease --
def cmd_lease_grant(client: Client, args) -> Reply:
    lease = client.lease(args.ttl_s)
    return Reply(EXIT_OK, {"id": lease.id, "ttl_s": args.ttl_s}, str(lease.id))


def cmd_lease_keepalive(client: Client, args):
    cli_hold.interruptible()
    info = client.run(cops.lease_info(args.id))
    if not info.found:
        return Reply(EXIT_NO, {"found": False}, "", f"lease {args.id} not found")
    lease = Lease(client, args.id, info.granted_ttl_ms / 1000)
    ttl_s = lease.keepalive()
    if args.once:
        return Reply(EXIT_OK, {"id": args.id, "ttl_s": ttl_s}, f"{ttl_s:g}")
    lease.start_keepalive()
    try:
        return cli_hold.announce_and_hold(args, {"id": args.id, "ttl_s": ttl_s},
                                          f"lease {args.id} kept alive (TTL {ttl_s:g} s); Ctrl-C to stop",
                                          lease.lost, f"lease {args.id}"), *PRINTED
    finally:
        lease.stop_keepalive()


def cmd_lease_revoke(client: Client, args) -> Reply:
    if client.run(cops.lease_revoke(args.id)):
        return Reply(EXIT_OK, {"revoked": True}, "revoked")
    return Reply(EXIT_NO, {"revoked": False}, "", f"lease {args.id} not found")


def cmd_lease_ttl(client: Client, args) -> Reply:
    remaining_s = client.run(cops.lease_ttl(args.id))
    if remaining_s is None:
        return Reply(EXIT_NO, {"found": False}, "", f"lease {args.id} not found")
    return Reply(EXIT_OK, {"found": True, "remaining_s": remaining_s}, f"{remaining_s:g}")


def cmd_lease_list(client: Client, args) -> Reply:
    leases = client.leases()
    lines = [f"{lease.id} ttl {lease.granted_ttl_s:g} remaining {lease.remaining_s:g}"
             for lease in leases]
    listed = [{"id": lease.id, "granted_ttl_s": lease.granted_ttl_s, "remaining_s": lease.remaining_s}
              for lease in leases]
    return Reply(EXIT_OK, {"leases": listed}, "\n".join(lines), "" if lines else "no leases")


# -- registry --
def cmd_register(client: Client, args):
    cli_hold.interruptible()
    hold = client.registry.hold(args.name, args.value, ttl=args.ttl)
    try:
        with hold as token:
            return cli_hold.announce_and_hold(args, {"registered": True, "token": token},
                                              f"registered {args.name} (token {token}); holding until Ctrl-C",
                                              hold.lost, f"name {args.name!r}"), *PRINTED
    except AlreadyExists as error:
        owner = error.owner or b""
        return Reply(EXIT_NO, {"registered": False, "owner": bytes_json(owner), "token": error.token}, "",
                     f"taken by {_text(owner)} (token {error.token})")


def cmd_whereis(client: Client, args) -> Reply:
    found = client.registry.whereis(args.name)
    if found is None:
        return Reply(EXIT_NO, None, "", f"{args.name!r} is not registered")
    return Reply(EXIT_OK, _claim_json(found), _text(found.value))


def _claim_json(claim) -> dict[str, Any]:
    return {"name": bytes_json(claim.name), "value": bytes_json(claim.value), "token": claim.token,
            "lease": claim.lease}


def cmd_unregister(client: Client, args) -> Reply:
    if client.registry.unregister(args.name, args.token):
        return Reply(EXIT_OK, {"unregistered": True}, "OK")
    return Reply(EXIT_NO, {"unregistered": False}, "",
                 f"not unregistered: {args.token} is not {args.name!r}'s token")


def cmd_registry_list(client: Client, args) -> Reply:
    claims = client.registry.list(args.prefix)
    lines = [f"{_text(c.name)} = {_text(c.value)} (token {c.token})" for c in claims]
    return Reply(EXIT_OK, {"claims": [_claim_json(c) for c in claims]}, "\n".join(lines),
                 "" if lines else "no names")


# -- lock, elect --
def cmd_lock(client: Client, args):
    argv = args.argv
    if not argv:
        raise ValueError("no command to run: tandemkv lock NAME -- COMMAND...")
    cli_hold.interruptible()
    try:
        lock = client.lock(args.name, ttl=args.ttl, wait=args.wait)
        with lock as token:
            env = {**os.environ, LOCK_TOKEN_ENV: str(token)}
            return cli_hold.run_holding(argv, env, f"lock {args.name!r}", lock.lost), *PRINTED
    except NotAcquired as error:
        return Reply(EXIT_NO, {"acquired": False, "token": error.token}, "", f"not acquired: {error.message}")
    except OSError as error:  # the command could not start (not found, not executable)
        raise ValueError(f"cannot run {argv[0]!r}: {error.strerror}") from None


def cmd_elect(client: Client, args):
    cli_hold.interruptible()
    with client.election(args.name) as election:
        token = election.campaign(args.value, ttl=args.ttl)
        return cli_hold.announce_and_hold(args, {"elected": True, "token": token},
                                          f"elected in {args.name} (token {token}); leading until Ctrl-C",
                                          election.lost, f"leadership of {args.name!r}"), *PRINTED


# -- watch --
def cmd_watch(client: Client, args):
    cli_hold.interruptible()
    printed = 0
    with client.watch(args.key, prefix=args.prefix, start_revision=args.start) as events:
        try:
            for event in events:
                cli_hold.emit(args, _event_json(event), _event_text(event))
                printed += 1
                if printed == args.count:
                    break
        except KeyboardInterrupt:
            pass
    return EXIT_OK, *PRINTED


def _event_json(event: WatchEvent) -> dict[str, Any]:
    return {"type": event.type, "key": bytes_json(event.key), "value": bytes_json(event.value),
            "revision": event.revision, "version": event.version}


def _event_text(event: WatchEvent) -> str:
    if event.type == "put":
        return f"{event.revision} PUT {_text(event.key)} = {_text(event.value)}"
    return f"{event.revision} {event.type.upper()} {_text(event.key)}"
