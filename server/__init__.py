"""A TandemKV node: the embeddable `Node`, its configuration, and (in
sub-packages) the strong plane, storage, and the gRPC API."""

from tandemkv.server.config import Member, NodeConfig, RaftTimings
from tandemkv.server.node import Node, NodeStatus

__all__ = ["Member", "Node", "NodeConfig", "NodeStatus", "RaftTimings"]
