"""`serve --join HOST:PORT`: a new node asks any member (its client
address) for the committed member set, asks to be added if it is not a
member yet, and starts with that set as its peers; the leader then sends
it the log, or a snapshot when the log was compacted.

A node whose data dir already holds state skips this: it starts with the
member set it stored (a restart needs no member to answer). Asking is
retried until limits.JOIN_WAIT_MS; then serve exits saying what failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tandemkv import errors, limits
from tandemkv.server.node.config import Member


def has_state(data_dir: Path) -> bool:
    """Whether a node already ran in `data_dir` (its strong state is there)."""
    return (Path(data_dir) / "state").exists()


def members_at_join(values: dict[str, Any], report: Callable[[str], None]) -> dict[str, Any]:
    """`values` with `peers` (and `member_since_index`) from the member
    set a member at `values['join']` answers, this node added to it if it
    was not there. Raises ValueError saying what to fix."""
    address = values.get("join")
    if not address or not values.get("data_dir") or has_state(values["data_dir"]):
        return values
    missing = [key for key in ("name", "raft_address", "client_address") if not values.get(key)]
    if missing:
        raise ValueError(f"--join needs {', '.join(missing)} to ask for this node to be added")
    # The SDK is imported here: only a joining serve needs it.
    from tandemkv.client import Client, Retry
    from tandemkv.server.security.member_channels import client_tls_of

    name, raft, client_address = values["name"], values["raft_address"], values["client_address"]
    retry = Retry(deadline_s=limits.JOIN_WAIT_MS / 1000)
    try:
        with Client([address], retry=retry, tls=client_tls_of(values)) as client:
            listing = client.members.list()
            me = next((m for m in listing.members if m.name == name), None)
            if me is None:
                report(f"joining through {address}: asking to add {name} (raft {raft}, client "
                       f"{client_address})")
                listing = client.members.add(name, raft=raft, client=client_address)
            elif (me.raft_address, me.client_address) != (raft, client_address):
                raise ValueError(
                    f"member {name} is in the cluster with raft {me.raft_address}, client "
                    f"{me.client_address}, not raft {raft}, client {client_address}: start it with "
                    "those addresses, or remove it (`tandemkv member remove`) and join again")
    except errors.TandemKVError as error:
        raise ValueError(f"--join {address}: {type(error).__name__}: {error.message}") from None
    report(f"joined through {address}: members {', '.join(listing.names)} (set of entry "
           f"{listing.config_index})")
    return dict(values, peers=tuple(Member(m.name, m.raft_address, m.client_address)
                                    for m in listing.members if m.name != name),
                member_since_index=listing.config_index)
