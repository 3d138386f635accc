"""Whether a node should take traffic, and why not: what `/readyz` answers
(the gRPC health service follows the same rules, api/health_follower.py).
Pure: reads a status, decides."""

from __future__ import annotations

from typing import Any


def not_ready_reason(status: Any, stopping: bool = False) -> str | None:
    """None when the node is ready; else one line saying why not.

    `status` is the node's `NodeStatus` (None: the node could not say,
    which happens once it stops)."""
    if stopping or status is None:
        return "stopping: this node is shutting down"
    if not status.leader:
        return "no leader: this node knows no leader (an election is running, or it cannot reach a majority)"
    if not status.has_quorum:
        return f"no quorum: this node does not hear a majority of the {len(status.members)} members"
    if not status.ready:
        return (f"behind: applied index {status.applied_index} has not caught up with "
                f"commit index {status.commit_index}")
    return None
