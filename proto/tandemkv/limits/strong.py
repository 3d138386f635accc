"""The strong plane's limits: keys, values, transactions and commands; reads,
results, space and request ids; leases, registry, locks, elections and
watches; durable pub/sub topics.

The state machine (server/strong/) asserts them, the node and its API edge
check requests against them before anything is proposed.
"""

# -- keys, values, transactions, commands --
# LMDB refuses a stored key over 511 bytes (and an empty one).
LMDB_KEY_BYTES_MAX = 511
# Most bytes the store adds around a client's key or name in its longest
# composite key: an election candidate attached to a lease is stored under
# lease id (8) + attachment kind (1) + name length (2) + name + token (8).
# tests/test_store_limits.py builds every composite key at the limit.
STORE_KEY_OVERHEAD_BYTES_MAX = 19
# Keys, counter names, registry, lock and election names: what LMDB allows,
# less the longest prefix the store adds, so no stored key can exceed it.
KEY_SIZE_BYTES_MAX = LMDB_KEY_BYTES_MAX - STORE_KEY_OVERHEAD_BYTES_MAX
# A value travels inside one Raft log entry; keeping entries far below
# pysyncobj's append-entries batch size avoids its chunking bug.
VALUE_SIZE_BYTES_MAX = 32 * 1024
# Operations in one transaction, both branches together.
TXN_OPS_MAX = 128
# Compares in one transaction.
TXN_COMPARES_MAX = 128
# Bytes of one encoded command, and of one Raft log entry's payload (a
# batch of commands included).
COMMAND_SIZE_BYTES_MAX = 256 * 1024
# Writes proposed together in one Raft log entry (a CommandBatch).
RAFT_ENTRY_COMMANDS_MAX = 256

# -- reads, write results, space, request ids --
# Keys one Range returns; a larger or zero `limit` is clamped to this.
RANGE_KEYS_MAX = 10_000
# Encoded bytes one Range or RegistryList response holds at most; it stops
# with more=true before it would hold more.
RANGE_RESPONSE_BYTES_MAX = 4 * 1024 * 1024
# Keys one ranged Delete removes; larger deletes fail with INVALID_ARGUMENT.
DELETE_RANGE_KEYS_MAX = 10_000
# Bytes of one write's result: prev_kv values, and the reads inside a
# transaction (a range in a transaction stops with more=true at what is
# left). Results of writes are kept for request-id deduplication, so this
# also bounds one dedup record.
WRITE_RESULT_BYTES_MAX = 1024 * 1024
# Share of the LMDB map (map_size_bytes) the strong plane's logical size may
# reach; past it writes that add data are refused with RESOURCE_EXHAUSTED
# (reads, deletes, revokes and releases still work). The rest of the map
# holds LMDB's own overhead and what the allowed commands add, so applying a
# committed entry never meets a full map.
SPACE_QUOTA_PERCENT_OF_MAP = 50
# Request ids are 16 random bytes (reused on retry).
REQUEST_ID_BYTES = 16
# Longest a client may keep retrying one request id: the dedup table keeps
# results this long (measured in the log's own clock).
DEDUP_RETENTION_MS = 10 * 60 * 1000
# Dedup records collected per applied command, so GC never stalls apply.
DEDUP_GC_PER_COMMAND_MAX = 32

# -- leases, registry, locks, elections, watches --
# A lease's time to live.
LEASE_TTL_MS_MIN = 1_000
LEASE_TTL_MS_MAX = 7 * 24 * 3600 * 1000
# How often the leader proposes a lease tick (advances the lease clock).
LEASE_TICK_INTERVAL_MS = 250
# Most one tick may advance the lease clock, 1.2 x the tick interval: a leader
# whose clock runs fast or jumps ages leases at most 1.2 x as fast as its tick
# timer, and a stall past it is not counted (leases live longer, never shorter).
LEASE_TICK_ADVANCE_MS_MAX = LEASE_TICK_INTERVAL_MS * 6 // 5
# Leases one tick expires; the rest go with the next ticks.
LEASE_EXPIRIES_PER_TICK_MAX = 256
# Leases one LeaseList response carries.
LEASE_LIST_MAX = 10_000
# Keys, names, locks and candidacies attached to one lease.
LEASE_ATTACHMENTS_MAX = 1_000
# Registry names, lock names and election names share the key size limit
# (KEY_SIZE_BYTES_MAX); claims in one RegistryList.
REGISTRY_LIST_MAX = 10_000
# Candidates queued in one election.
ELECTION_CANDIDATES_MAX = 1_000
# Longest a lock acquire or a campaign may wait, in ms.
CLAIM_WAIT_MS_MAX = int(30.0 * 1000)
# Kept back from a waiting lock acquire's or campaign's deadline for each
# proposal around the wait (the first try, and the one after the wait ends):
# this share of the call's timeout, at most CLAIM_PROPOSE_RESERVE_S_MAX.
CLAIM_PROPOSE_RESERVE_S_MAX = 2.0
CLAIM_PROPOSE_RESERVE_FRACTION = 0.25
# Revisions of change history kept for watches; older ones are compacted.
WATCH_HISTORY_REVISIONS_MAX = 100_000
# Share of the space quota the change history may take; past it the oldest
# events are compacted, so deleting keys frees space even though each delete
# records the deleted value in the history.
WATCH_HISTORY_QUOTA_PERCENT = 25
# Events one watch response carries.
WATCH_RESPONSE_EVENTS_MAX = 1_000
# Watches open at once on one node (every stream together); more get
# RESOURCE_EXHAUSTED. An idle watch holds a few hundred bytes.
WATCHES_OPEN_MAX = 20_000
# Watches open at once on one multiplexed watch stream.
WATCHES_PER_STREAM_MAX = 10_000
# Shortest interval a watch stream may ask its progress responses at, in ms.
WATCH_STREAM_PROGRESS_INTERVAL_MS_MIN = 10
# Events, and bytes of encoded events, buffered for one watch whose reader
# has not taken them yet; past either the watch ends with an explicit
# overflow naming the revision to watch again from.
WATCH_BUFFER_EVENTS_MAX = 4_096
WATCH_BUFFER_BYTES_MAX = 1024 * 1024
# Bytes buffered for every watch of a node together (an event shared by
# many watches counts once for each); the watch that would pass it overflows.
WATCH_HUB_BUFFERED_BYTES_MAX = 64 * 1024 * 1024
# Events the history trims per applied command, beyond what it added.
WATCH_HISTORY_TRIM_PER_COMMAND_MAX = 64

# -- pub/sub, durable (the per-topic log; topics and messages share pub/sub's limits, in `available`) --
# A topic's retention by count: the newest this many messages are kept (the default, and the most a publish may ask).
TOPIC_RETAINED_MESSAGES_DEFAULT = 10_000
TOPIC_RETAINED_MESSAGES_MAX = 1_000_000
# A topic's retention by age, in log-clock ms: messages younger than this are kept (the default, and the most).
TOPIC_RETENTION_MS_DEFAULT = 24 * 3600 * 1000
TOPIC_RETENTION_MS_MAX = 30 * 24 * 3600 * 1000
# Messages retention drops per applied log entry (the rest go with the next entries).
TOPIC_PRUNE_PER_ENTRY_MAX = 256
# Messages, and bytes of messages, one topic read returns; it stops with more=true before either.
TOPIC_READ_MESSAGES_MAX = 1_000
TOPIC_READ_BYTES_MAX = 4 * 1024 * 1024
# Revisions of the publish log kept so a node's subscriptions learn which topics moved (older ones are trimmed).
TOPIC_CHANGES_REVISIONS_MAX = 100_000
# Durable topic subscriptions open at once on one node; more get RESOURCE_EXHAUSTED.
TOPIC_SUBSCRIPTIONS_MAX = 100_000
