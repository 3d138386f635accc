"""A TandemKV node. Where things live:

- `node/`: the composition root, `Node(config)`, and its KV, counter and
  coordination halves.
- `strong/`: the pure strong-plane core, `apply(view, command)`.
- `raft/`: the only code that knows pysyncobj.
- `storage/`: LMDB, the state and the Raft log.
- `available/`: the CRDT types (`crdt/`), the gossip protocol (`gossip/`)
  and the running plane.
- `api/`: the gRPC servicers.
- `cli/` and `process/`: the `tandemkv` command and the node process.

`Node`, `NodeConfig`, `NodeStatus`, `Member` and `RaftTimings` are
importable from here; they load on first use, so importing a pure core
module (which imports this package first) does not load the node.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tandemkv.server.node.config import Member, NodeConfig, RaftTimings
    from tandemkv.server.node.node import Node, NodeStatus

__all__ = ["Member", "Node", "NodeConfig", "NodeStatus", "RaftTimings"]


def __getattr__(name: str) -> Any:
    """The node's public names, loaded on first use by tandemkv.server.node
    (importing this package alone loads none of it)."""
    if name not in __all__:
        raise AttributeError(f"module 'tandemkv.server' has no attribute {name!r}")
    return getattr(importlib.import_module("tandemkv.server.node"), name)
