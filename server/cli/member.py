"""`tandemkv member list|add|remove|promote`: the cluster's members on the
command line, through the SDK's `client.members` (client/_members.py).
`member add --learner` adds a learner (replicates the log, serves stale
reads, does not vote); `member promote NAME` makes a caught-up learner a
voter (exit 5 while it is behind, saying how far).

A change goes to the leader and is one at a time: a second change while
one is in progress fails (exit 5) with a message naming it. After `member
add`, start the new node with `tandemkv serve --name NAME ... --join
HOST:PORT` (any member's client address).
"""

from __future__ import annotations

import argparse
import dataclasses

from tandemkv.client import Client
from tandemkv.client._members import MemberList
from tandemkv.server.cli.client import EXIT_OK, Reply, _leaf


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    member = subparsers.add_parser(
        "member", help="list, add, promote and remove cluster members",
        description="List, add, promote and remove cluster members (one change at a time, made by "
                    "the leader).",
    ).add_subparsers(dest="op", required=True)
    _leaf(member, "list", cmd_list, "print the committed members", (), read=True)
    add = _leaf(member, "add", cmd_add,
                "add a voting member; then start it with `tandemkv serve ... --join HOST:PORT`", ("name",))
    add.add_argument("--raft", required=True, metavar="HOST:PORT", help="the new member's Raft address")
    add.add_argument("--client", required=True, metavar="HOST:PORT", help="the new member's client address")
    add.add_argument("--learner", action="store_true",
                     help="add it as a learner: it replicates the log and serves stale reads but does not "
                          "vote until `member promote`")
    _leaf(member, "promote", cmd_promote,
          "make a learner a voter once it caught up with the leader", ("name",))
    _leaf(member, "remove", cmd_remove,
          "remove a member (the leader hands over first); the removed node then refuses every call",
          ("name",))


def cmd_list(client: Client, args) -> Reply:
    return _reply(client.members.list())


def cmd_add(client: Client, args) -> Reply:
    return _reply(client.members.add(args.name, raft=args.raft, client=args.client, learner=args.learner))


def cmd_promote(client: Client, args) -> Reply:
    return _reply(client.members.promote(args.name))


def cmd_remove(client: Client, args) -> Reply:
    return _reply(client.members.remove(args.name))


def _reply(member_list: MemberList) -> Reply:
    header = f"{'NAME':8} {'RAFT':21} {'CLIENT':21} ROLE"
    rows = [f"{m.name:8} {m.raft_address:21} {m.client_address:21} {m.role}"
            for m in member_list.members]
    data = {"members": [dict(dataclasses.asdict(m), role=m.role) for m in member_list.members],
            "config_index": member_list.config_index, "leader": member_list.leader,
            "change_in_progress": member_list.change_in_progress}
    note = f"change in progress: {member_list.change_in_progress}" if member_list.change_in_progress else ""
    return Reply(EXIT_OK, data, "\n".join([header, *rows]), note)
