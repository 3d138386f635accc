"""The composition root: `Node(config)` wires storage, the Raft replica, the
strong plane's reads and waits, and the available plane, and starts and
stops them. `node.py` holds the wiring and the write path, `kv.py` the KV and
counter calls, `coordination.py` leases, the registry, locks and elections,
`crdt.py` the CRDT tables (`node.crdt`), `host.py` the state the Raft
replica applies committed entries to (on its tick thread), `config.py` the
settings a node is built from.

The names below load on first use: `config.py` is plain data, and the
command line and the process settings read it without loading the node,
pysyncobj or LMDB (tests/test_purity.py)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tandemkv.server.node.config import Member, NodeConfig, RaftTimings
    from tandemkv.server.node.node import Node, NodeStatus

_LAZY = {
    "Member": "tandemkv.server.node.config",
    "NodeConfig": "tandemkv.server.node.config",
    "RaftTimings": "tandemkv.server.node.config",
    "Node": "tandemkv.server.node.node",
    "NodeStatus": "tandemkv.server.node.node",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tandemkv.server.node' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
