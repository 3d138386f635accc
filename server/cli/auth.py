"""`tandemkv user ...`, `tandemkv role ...` and `tandemkv auth ...`: users,
roles and auth on the command line, through the SDK's `client.auth`
(client/_auth.py). docs/security.md gives the model and the bootstrap of
the first admin:

    tandemkv user add root                 # asks for the new user's password
    tandemkv user grant-role root root
    tandemkv auth enable --user root       # from now on, calls need credentials

Passwords of new users come from `--new-password`, else a prompt (no echo
on a terminal; one line of stdin otherwise); `--no-password` makes a user
that signs in only by a client certificate's CN. Exit codes are the CLI's
(server/cli/client.py): 6 when refused by auth (no or wrong credentials,
or not root), 5 for a user or role that exists or does not, or enabling
without a root user (the message says which).
"""

from __future__ import annotations

import argparse
import dataclasses

from tandemkv.client import Client
from tandemkv.client._auth import KINDS, MODES, RoleInfo, UserInfo
from tandemkv.server.cli.client import EXIT_OK, Reply, _leaf, _text, ask_password, bytes_json


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    user = subparsers.add_parser("user", help="add, delete and list users; set passwords; grant roles",
                                 description="Users (docs/security.md); changes need the root role once "
                                             "auth is enabled.").add_subparsers(dest="op", required=True)
    add = _leaf(user, "add", cmd_user_add, "add a user (asks for its password)", ("name",))
    _new_password(add, allow_none=True)
    _leaf(user, "delete", cmd_user_delete, "delete a user; its tokens end at once", ("name",))
    _new_password(_leaf(user, "passwd", cmd_user_passwd, "set a user's password; its tokens end at once",
                        ("name",)))
    _leaf(user, "grant-role", cmd_user_grant, "give a user a role", ("name", "role"))
    _leaf(user, "revoke-role", cmd_user_revoke, "take a role from a user", ("name", "role"))
    _leaf(user, "list", cmd_user_list, "list users and their roles", (), read=True)

    role = subparsers.add_parser("role", help="add, delete and list roles; grant and revoke permissions",
                                 description="Roles: read or write on a name prefix of one kind of resource "
                                             "(write implies read).").add_subparsers(dest="op", required=True)
    _leaf(role, "add", cmd_role_add, "add a role (with no permissions)", ("role",))
    _leaf(role, "delete", cmd_role_delete, "delete a role", ("role",))
    for name, handler, verb in (("grant", cmd_role_grant, "grant"), ("revoke", cmd_role_revoke, "revoke")):
        command = _leaf(role, name, handler, f"{verb} read or write on names of KIND starting with PREFIX",
                        ("role",))
        command.add_argument("mode", choices=tuple(MODES))
        command.add_argument("kind", choices=tuple(KINDS))
        command.add_argument("prefix", nargs="?", default="", help="name prefix (default: every name)")
    _leaf(role, "list", cmd_role_list, "list roles and their permissions", (), read=True)

    auth = subparsers.add_parser("auth", help="enable, disable and show auth; get a token",
                                 description="Auth on the cluster (docs/security.md).").add_subparsers(
        dest="op", required=True)
    _leaf(auth, "enable", cmd_enable, "require credentials from now on (needs user root with the root role)", ())
    _leaf(auth, "disable", cmd_disable, "allow every call again (root only)", ())
    _leaf(auth, "status", cmd_status, "whether auth is on, its revision, and who you are to it", (), read=True)
    _leaf(auth, "token", cmd_token, "print a token of --user for --token / TANDEMKV_TOKEN", (), read=True)


def _new_password(parser: argparse.ArgumentParser, allow_none: bool = False) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--new-password", metavar="PASSWORD",
                       help="the password to set (default: asked for; visible in ps)")
    if allow_none:
        group.add_argument("--no-password", action="store_true",
                           help="no password: the user signs in only by a client certificate's CN")


def _password_of(args: argparse.Namespace) -> str | None:
    if getattr(args, "no_password", False):
        return None
    if args.new_password is not None:
        return args.new_password
    return ask_password(f"new password for {args.name}")


def _changed(revision: int, what: str) -> Reply:
    return Reply(EXIT_OK, {"auth_revision": revision}, what)


def cmd_user_add(client: Client, args) -> Reply:
    return _changed(client.auth.user_add(args.name, _password_of(args)), f"user {args.name} added")


def cmd_user_delete(client: Client, args) -> Reply:
    return _changed(client.auth.user_delete(args.name), f"user {args.name} deleted")


def cmd_user_passwd(client: Client, args) -> Reply:
    return _changed(client.auth.user_change_password(args.name, _password_of(args)),
                    f"password of {args.name} changed")


def cmd_user_grant(client: Client, args) -> Reply:
    return _changed(client.auth.user_grant_role(args.name, args.role), f"role {args.role} granted to {args.name}")


def cmd_user_revoke(client: Client, args) -> Reply:
    return _changed(client.auth.user_revoke_role(args.name, args.role),
                    f"role {args.role} revoked from {args.name}")


def cmd_user_list(client: Client, args) -> Reply:
    users, revision = client.auth.user_list()
    rows = [_user_row(user) for user in users]
    data = {"users": [dataclasses.asdict(user) for user in users], "auth_revision": revision}
    return Reply(EXIT_OK, data, "\n".join([f"{'USER':16} {'PASSWORD':8} ROLES", *rows]), "" if rows else "no users")


def _user_row(user: UserInfo) -> str:
    return f"{user.user:16} {'yes' if user.has_password else 'no':8} {','.join(user.roles) or '-'}"


def cmd_role_add(client: Client, args) -> Reply:
    return _changed(client.auth.role_add(args.role), f"role {args.role} added")


def cmd_role_delete(client: Client, args) -> Reply:
    return _changed(client.auth.role_delete(args.role), f"role {args.role} deleted")


def cmd_role_grant(client: Client, args) -> Reply:
    revision = client.auth.role_grant_permission(args.role, args.mode, args.kind, args.prefix)
    return _changed(revision, f"role {args.role} may {args.mode} {args.kind} {_prefix_words(args.prefix)}")


def cmd_role_revoke(client: Client, args) -> Reply:
    revision = client.auth.role_revoke_permission(args.role, args.mode, args.kind, args.prefix)
    return _changed(revision, f"role {args.role} no longer may {args.mode} {args.kind} "
                              f"{_prefix_words(args.prefix)}")


def _prefix_words(prefix: str | bytes) -> str:
    if not prefix:
        return "(every name)"
    return f"prefix {_text(prefix) if isinstance(prefix, bytes) else prefix}"


def cmd_role_list(client: Client, args) -> Reply:
    roles, revision = client.auth.role_list()
    rows = [row for role in roles for row in _role_rows(role)]
    data = {"roles": [{"role": role.role, "permissions": [
        {"mode": p.mode, "kind": p.kind, "prefix": bytes_json(p.prefix)} for p in role.permissions]}
        for role in roles], "auth_revision": revision}
    return Reply(EXIT_OK, data, "\n".join([f"{'ROLE':16} {'MODE':6} {'KIND':9} PREFIX", *rows]),
                 "" if rows else "no roles")


def _role_rows(role: RoleInfo) -> list[str]:
    if not role.permissions:
        return [f"{role.role:16} {'-':6} {'-':9} -"]
    return [f"{role.role:16} {p.mode:6} {p.kind:9} {_text(p.prefix) if p.prefix else '(every name)'}"
            for p in role.permissions]


def cmd_enable(client: Client, args) -> Reply:
    return _changed(client.auth.enable(), "auth enabled: calls need credentials from now on")


def cmd_disable(client: Client, args) -> Reply:
    return _changed(client.auth.disable(), "auth disabled: every call is allowed")


def cmd_status(client: Client, args) -> Reply:
    status = client.auth.status()
    text = (f"auth: {'enabled' if status.enabled else 'disabled'}  revision: {status.auth_revision}  "
            f"you: {status.caller or '(no credentials)'}")
    return Reply(EXIT_OK, dataclasses.asdict(status), text)


def cmd_token(client: Client, args) -> Reply:
    token = client.auth.token()
    return Reply(EXIT_OK, {"token": token.token, "expires_at_ms": token.expires_at_ms}, token.token)
