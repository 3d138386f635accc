"""The composition root: `Node(config)` wires storage, the Raft replica, the
strong plane's reads and waits, and the available plane, and starts and
stops them. `node.py` holds the wiring and the write path, `kv.py` the KV and
counter calls, `coordination.py` leases, the registry, locks and elections,
`config.py` the settings a node is built from."""

from tandemkv.server.node.config import Member, NodeConfig, RaftTimings
from tandemkv.server.node.node import Node, NodeStatus

__all__ = ["Member", "Node", "NodeConfig", "NodeStatus", "RaftTimings"]
