"""`tandemkv lease|registry|lock|elect|watch`: leases, names, locks,
elections and watches on the command line, through `tandemkv.client`.

Commands that hold something (`lease keepalive`, `registry register`,
`elect`) keep it until Ctrl-C or SIGTERM, then give it up and exit 0; if
the hold is lost meanwhile (the lease expired) they exit 3. `lock` runs a
command while holding the lock and exits with the command's code. `watch`
prints one line per event until Ctrl-C (or `--count` events). Exit codes
and one-line errors are those of `cli_client`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
from typing import Any

from tandemkv.client import AlreadyExists, Client, Lease, NotAcquired, WatchEvent
from tandemkv.client import _coordination_ops as cops
from tandemkv.server.cli_client import EXIT_NO, EXIT_OK, EXIT_UNAVAILABLE, _leaf, _text

# A held lease, name or leadership is checked this often while waiting for Ctrl-C.
HOLD_CHECK_SECONDS = 0.5
LOCK_TOKEN_ENV = "TANDEMKV_LOCK_TOKEN"
DEFAULT_TTL_SECONDS = 10.0
# What a command that printed its own output returns besides its exit code.
PRINTED = (None, None)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    lease = subparsers.add_parser("lease", help="leases").add_subparsers(dest="op", required=True)
    _leaf(lease, "grant", cmd_lease_grant, "grant a lease of TTL_S seconds, print its id", ("ttl_s:float",))
    keep = _leaf(lease, "keepalive", cmd_lease_keepalive, "renew a lease until Ctrl-C", ("id:int",))
    keep.add_argument("--once", action="store_true", help="renew once, print the TTL and exit")
    _leaf(lease, "revoke", cmd_lease_revoke, "revoke a lease (exit 1 if gone)", ("id:int",))
    _leaf(lease, "ttl", cmd_lease_ttl, "print a lease's remaining seconds (exit 1 if gone)", ("id:int",))
    registry = subparsers.add_parser("registry", help="the name registry").add_subparsers(dest="op", required=True)
    register = _leaf(registry, "register", cmd_register,
                     "register NAME, print the token, hold it until Ctrl-C", ("name", "value"))
    register.add_argument("--ttl", type=float, default=DEFAULT_TTL_SECONDS, metavar="S",
                          help="lease TTL: the name is freed this long after this process dies")
    _leaf(registry, "whereis", cmd_whereis, "print NAME's value (exit 1 if not registered)", ("name",))
    _leaf(registry, "unregister", cmd_unregister, "release NAME (exit 1 if TOKEN is not its)",
          ("name", "token:int"))
    listed = _leaf(registry, "list", cmd_registry_list, "list names starting with PREFIX", ())
    listed.add_argument("prefix", nargs="?", default="")
    lock = _leaf(subparsers, "lock", cmd_lock,
                 f"run COMMAND while holding lock NAME (token in ${LOCK_TOKEN_ENV})", ("name",))
    lock.add_argument("--ttl", type=float, default=DEFAULT_TTL_SECONDS, metavar="S")
    lock.add_argument("--wait", type=float, default=30.0, metavar="S", help="give up after S seconds")
    lock.set_defaults(argv=[])  # the words after "--": see split_command
    lock.usage = "tandemkv lock NAME [--ttl S] [--wait S] [--endpoints ...] -- COMMAND..."
    elect = _leaf(subparsers, "elect", cmd_elect, "campaign in NAME, print when elected, lead until Ctrl-C",
                  ("name", "value"))
    elect.add_argument("--ttl", type=float, default=DEFAULT_TTL_SECONDS, metavar="S")
    watch = _leaf(subparsers, "watch", cmd_watch, "print one line per change of a key (or --prefix)",
                  ("key",))
    watch.add_argument("--prefix", action="store_true", help="watch every key starting with KEY")
    watch.add_argument("--from", dest="start", type=int, default=0, metavar="REV",
                       help="first revision to print (default: changes from now on)")
    watch.add_argument("--count", type=int, default=0, metavar="N", help="exit after N events")


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """`tandemkv lock ... -- COMMAND...`: (tandemkv's words, the command's)."""
    if argv[:1] == ["lock"] and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def _emit(args, data: Any, text: str) -> None:
    print(json.dumps(data) if getattr(args, "output", "text") == "json" else text, flush=True)


def _announce_and_hold(args, data: Any, text: str, lost) -> int:
    """Prints that the hold began, then waits for Ctrl-C or SIGTERM (exit 0)
    or for `lost` (exit 3). SIGTERM is handled before the line is printed:
    whoever reacts to the line may signal at once."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        _emit(args, data, text)
        while not lost.wait(HOLD_CHECK_SECONDS):
            pass
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("tandemkv: lost the lease (renewals failed); the hold has ended", flush=True)
    return EXIT_UNAVAILABLE


# -- lease --
def cmd_lease_grant(client: Client, args) -> tuple[int, Any, str]:
    lease = client.lease(args.ttl_s)
    return EXIT_OK, {"id": lease.id, "ttl_s": args.ttl_s}, str(lease.id)


def cmd_lease_keepalive(client: Client, args):
    info = client.run(cops.lease_info(args.id))
    if not info.found:
        return EXIT_NO, {"found": False}, f"(lease {args.id} not found)"
    lease = Lease(client, args.id, info.granted_ttl_ms / 1000)
    ttl_s = lease.keepalive()
    if args.once:
        return EXIT_OK, {"id": args.id, "ttl_s": ttl_s}, f"{ttl_s:g}"
    lease.start_keepalive()
    try:
        return _announce_and_hold(args, {"id": args.id, "ttl_s": ttl_s},
                                  f"lease {args.id} kept alive (TTL {ttl_s:g} s); Ctrl-C to stop",
                                  lease.lost), *PRINTED
    finally:
        lease.stop_keepalive()


def cmd_lease_revoke(client: Client, args) -> tuple[int, Any, str]:
    revoked = client.run(cops.lease_revoke(args.id))
    if revoked:
        return EXIT_OK, {"revoked": True}, "revoked"
    return EXIT_NO, {"revoked": False}, f"(lease {args.id} not found)"


def cmd_lease_ttl(client: Client, args) -> tuple[int, Any, str]:
    remaining_s = client.run(cops.lease_ttl(args.id))
    if remaining_s is None:
        return EXIT_NO, {"found": False}, f"(lease {args.id} not found)"
    return EXIT_OK, {"found": True, "remaining_s": remaining_s}, f"{remaining_s:g}"


# -- registry --
def cmd_register(client: Client, args):
    hold = client.registry.hold(args.name, args.value, ttl=args.ttl)
    try:
        with hold as token:
            return _announce_and_hold(args, {"registered": True, "token": token},
                                      f"registered {args.name} (token {token}); holding until Ctrl-C",
                                      hold.lost), *PRINTED
    except AlreadyExists as error:
        owner = _text(error.owner or b"")
        return EXIT_NO, {"registered": False, "owner": owner, "token": error.token}, \
            f"taken by {owner} (token {error.token})"


def cmd_whereis(client: Client, args) -> tuple[int, Any, str]:
    found = client.registry.whereis(args.name)
    if found is None:
        return EXIT_NO, None, f"({args.name!r} is not registered)"
    return EXIT_OK, _claim_json(found), _text(found.value)


def _claim_json(claim) -> dict[str, Any]:
    return {"name": _text(claim.name), "value": _text(claim.value), "token": claim.token, "lease": claim.lease}


def cmd_unregister(client: Client, args) -> tuple[int, Any, str]:
    if client.registry.unregister(args.name, args.token):
        return EXIT_OK, {"unregistered": True}, "OK"
    return EXIT_NO, {"unregistered": False}, f"not unregistered: {args.token} is not {args.name!r}'s token"


def cmd_registry_list(client: Client, args) -> tuple[int, Any, str]:
    claims = client.registry.list(args.prefix)
    lines = [f"{_text(c.name)} = {_text(c.value)} (token {c.token})" for c in claims]
    return EXIT_OK, {"claims": [_claim_json(c) for c in claims]}, "\n".join(lines) or "(no names)"


# -- lock, elect --
def cmd_lock(client: Client, args):
    argv = args.argv
    if not argv:
        raise ValueError("no command to run: tandemkv lock NAME -- COMMAND...")
    try:
        with client.lock(args.name, ttl=args.ttl, wait=args.wait) as token:
            env = {**os.environ, LOCK_TOKEN_ENV: str(token)}
            return subprocess.run(argv, env=env).returncode, *PRINTED
    except NotAcquired as error:
        return EXIT_NO, {"acquired": False, "token": error.token}, f"not acquired: {error.message}"
    except FileNotFoundError as error:
        raise ValueError(f"cannot run {argv[0]!r}: {error.strerror}") from None


def cmd_elect(client: Client, args):
    with client.election(args.name) as election:
        token = election.campaign(args.value, ttl=args.ttl)
        return _announce_and_hold(args, {"elected": True, "token": token},
                                  f"elected in {args.name} (token {token}); leading until Ctrl-C",
                                  election.lost), *PRINTED


# -- watch --
def cmd_watch(client: Client, args):
    printed = 0
    with client.watch(args.key, prefix=args.prefix, start_revision=args.start) as events:
        try:
            for event in events:
                _emit(args, _event_json(event), _event_text(event))
                printed += 1
                if printed == args.count:
                    break
        except KeyboardInterrupt:
            pass
    return EXIT_OK, *PRINTED


def _event_json(event: WatchEvent) -> dict[str, Any]:
    return {"type": event.type, "key": _text(event.key), "value": _text(event.value),
            "revision": event.revision, "version": event.version}


def _event_text(event: WatchEvent) -> str:
    if event.type == "put":
        return f"{event.revision} PUT {_text(event.key)} = {_text(event.value)}"
    return f"{event.revision} {event.type.upper()} {_text(event.key)}"

