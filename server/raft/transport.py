"""The Raft transport: pysyncobj's TCP transport, except that a message
which promises durability waits until the log is durable.

`FlushingTransport.send` holds back every message but a leader's
append-entries until the log changes made before it are durable (the log's
flusher thread fsyncs them while the tick thread goes on): an entry is on
disk before a follower acknowledges it, and a term or vote before it is
asked for or granted. Messages to one peer keep their order. A leader sends
new entries at once and fsyncs while followers do the same; nothing of an
entry becomes visible (applied, acknowledged to a client, or sent as
committed) before the wait for durability that opens every apply
(member.py). A pipe wakes the tick thread (new commands, finished fsyncs).
"""

from __future__ import annotations

from pysyncobj.pipe_notifier import PipeNotifier
from pysyncobj.transport import TCPTransport

# A leader's own copy of an entry needs to be on disk only before the entry
# is applied, not before it is replicated.
LEADER_MESSAGES_WITHOUT_FLUSH = frozenset({"append_entries"})


class FlushingTransport(TCPTransport):
    """Holds each message that promises durability (in order, per peer)
    until the log is durable up to where it was sent."""

    def __init__(self, syncObj, selfNode, otherNodes):  # noqa: N803 (pysyncobj's names)
        super().__init__(syncObj, selfNode, otherNodes)
        self.wakeup = PipeNotifier(syncObj._poller)
        self._held: dict = {}  # peer -> [(durable seq needed, message)]

    def addNode(self, node):  # noqa: N802 (pysyncobj's name)
        """Adds a peer once: a second call (a learner promoted, a snapshot's
        members) would replace its connection and leave the old one open."""
        if node in self._nodes:
            return
        super().addNode(node)

    def send(self, node, message):
        if message.get("type") == "next_node_idx":
            message = self._syncObj._stamped_reply(message)
        raft_log = self._syncObj._raft_log
        needed = 0
        if message.get("type") not in LEADER_MESSAGES_WITHOUT_FLUSH:
            needed = raft_log.request_flush()
        if self._held.get(node) or needed > raft_log.durable_seq:
            self._held.setdefault(node, []).append((needed, message))
            return True
        return super().send(node, message)

    def release_held(self) -> None:
        """Sends held messages whose log changes are now durable (tick thread)."""
        durable = self._syncObj._raft_log.durable_seq
        for node, held in list(self._held.items()):
            while held and held[0][0] <= durable:
                super().send(node, held.pop(0)[1])
            if not held:
                del self._held[node]
