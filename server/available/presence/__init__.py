"""Presence, the pure core: who is tracked in which topic, with what
metadata, replicated to every node without Raft, and the diffs (joins,
leaves) a watcher sees. Each node owns the entries tracked through it
(owner.py); every node holds a copy of each live owner's entries, moved
forward by version only (replica.py); the frames between nodes are in
wire.py, and engine.py puts one node together, sans-I/O. No threads,
sockets, gRPC or event loop. docs/presence.md has the model and the bounds.
"""

from tandemkv.server.available.presence.engine import Output, PresenceEngine
from tandemkv.server.available.presence.model import (Diff, EntryId, Listing, Meta, OwnerId, Ref, apply_diff,
                                                      check_key, check_meta, check_session, check_topic,
                                                      check_ttl_ms)
from tandemkv.server.available.presence.owner import OwnerLog, Transfer
from tandemkv.server.available.presence.replica import Outcome, Replica
from tandemkv.server.available.presence.wire import Frame, Rejected

__all__ = ["Diff", "EntryId", "Frame", "Listing", "Meta", "Output", "Outcome", "OwnerId", "OwnerLog",
           "PresenceEngine", "Ref", "Rejected", "Replica", "Transfer", "apply_diff", "check_key", "check_meta",
           "check_session", "check_topic", "check_ttl_ms"]
