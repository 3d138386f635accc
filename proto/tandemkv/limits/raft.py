"""The Raft layer's limits (server/raft/): what one append-entries message and
one port frame carry, the Raft sockets, membership changes, the host names
of peers, and the commands waiting for the tick thread.
"""

from tandemkv.limits.strong import COMMAND_SIZE_BYTES_MAX

# -- log entries on the wire --
# Entry bytes a leader packs into one append-entries message (plus one entry past it).
RAFT_APPEND_BATCH_BYTES = 4 * COMMAND_SIZE_BYTES_MAX
# Declared bytes of one Raft port frame (that batch, pickled, compressed and encrypted, with room); more drops the connection unread.
RAFT_FRAME_BYTES_MAX = 4 * (RAFT_APPEND_BATCH_BYTES + COMMAND_SIZE_BYTES_MAX)
# Bytes of a snapshot file one append-entries message carries to a follower
# that installs it (pysyncobj's default; such a frame fits in RAFT_FRAME_BYTES_MAX).
RAFT_SNAPSHOT_CHUNK_BYTES = 1 << 16
# Kernel buffers of each Raft connection's socket, each direction.
RAFT_SOCKET_BUFFER_BYTES = 1 << 20

# -- membership --
# Longest a leader keeps sending entries to a removed member so it learns its removal committed.
MEMBER_RETIRE_WAIT_MS = 10_000
# A member's name and each of its addresses ('host:port'), in UTF-8 bytes.
MEMBER_NAME_BYTES_MAX = 128
MEMBER_ADDRESS_BYTES_MAX = 256
# Longest a leader asked to remove itself tries to hand leadership to a caught-up follower.
LEADER_HANDOVER_WAIT_MS = 5_000
# Longest `serve --join` tries to reach a member for the member set (and to be added) before it gives up.
JOIN_WAIT_MS = 30_000
# Log entries a learner may lag the leader's commit index by and still be promoted to voter.
LEARNER_PROMOTE_LAG_ENTRIES_MAX = 1_000
# How long a Raft peer's host name resolves to the same addresses before it is looked up again (a moved pod is found).
RAFT_DNS_CACHE_MS = 5_000
# How long a failed lookup of a Raft peer's host name stands before it is tried again.
RAFT_DNS_FAIL_CACHE_MS = 1_000

# -- the tick thread --
# Commands waiting for the Raft tick thread on one node.
RAFT_QUEUE_COMMANDS_MAX = 20_000
