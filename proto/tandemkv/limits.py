"""Every limit TandemKV enforces, by name, with its unit.

The API edge checks requests against these before anything is proposed, and
the state machine asserts them again, so a limit is stated once, here.
"""

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
# Entry bytes a leader packs into one append-entries message (plus one entry past it).
RAFT_APPEND_BATCH_BYTES = 4 * COMMAND_SIZE_BYTES_MAX
# Declared bytes of one Raft port frame (that batch, pickled, compressed and encrypted, with room); more drops the connection unread.
RAFT_FRAME_BYTES_MAX = 4 * (RAFT_APPEND_BATCH_BYTES + COMMAND_SIZE_BYTES_MAX)
# Bytes of a snapshot file one append-entries message carries to a follower
# that installs it (pysyncobj's default; such a frame fits in RAFT_FRAME_BYTES_MAX).
RAFT_SNAPSHOT_CHUNK_BYTES = 1 << 16
# Kernel buffers of each Raft connection's socket, each direction.
RAFT_SOCKET_BUFFER_BYTES = 1 << 20
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
# Server-side cap on any call's deadline, and the deadline of a call that
# sets none.
DEADLINE_S_MAX = 30.0
# Below this much remaining deadline nothing is proposed.
DEADLINE_S_MIN = 0.005
# Part of the remaining deadline the API edge keeps back from the node, so
# that the node times out (and the handler answers "outcome unknown") before
# the caller gives up on the call: this share, at most DEADLINE_MARGIN_S_MAX.
DEADLINE_MARGIN_S_MAX = 0.1
DEADLINE_MARGIN_FRACTION = 0.1
# Commands waiting for the Raft tick thread on one node.
RAFT_QUEUE_COMMANDS_MAX = 20_000
# Concurrent RPCs one node serves; more get RESOURCE_EXHAUSTED.
CONCURRENT_RPCS_MAX = 1024
# Health checks and Cluster.Status/Members served at once on one node, apart
# from CONCURRENT_RPCS_MAX, so an operator can still see an overloaded node.
OPERATOR_RPCS_MAX = 16
# Streams (every streaming RPC: watches, watch streams, lease keepalives,
# election observes, CRDT subscriptions, health watches) open at once on one
# node; more get RESOURCE_EXHAUSTED. A stream waits on the server's event
# loop and holds no thread, so this is a memory bound: an idle stream costs
# some tens of KiB (benchmarks/RESULTS.md, "Streams that cost no thread").
STREAMS_OPEN_MAX = 8_192
# Streams from other members (the pub/sub relay, one per peer, two while a
# peer reconnects) open at once on one node, apart from STREAMS_OPEN_MAX so
# clients can never crowd the members out, nor the members the clients.
PEER_STREAMS_OPEN_MAX = 2 * 64
# Calls that have reached a node's gRPC core but not yet its handlers (a
# burst of streams opening at once waits here); past it grpcio cancels the
# newest. As many as the lanes can admit, so a burst the lanes would take
# is never cancelled before they see it (grpcio's own default is 1,000).
GRPC_PENDING_CALLS_MAX = STREAMS_OPEN_MAX + PEER_STREAMS_OPEN_MAX + CONCURRENT_RPCS_MAX + OPERATOR_RPCS_MAX
# gRPC message size, both directions.
GRPC_MESSAGE_BYTES_MAX = 8 * 1024 * 1024
# Threads for the calls that block in the node (lock and campaign waits,
# CRDT catalog changes, gossip deliveries); writes and reads wait on the
# event loop without one. Calls beyond it queue (and count towards
# CONCURRENT_RPCS_MAX) until a thread frees up.
GRPC_CALL_THREADS_MAX = 128
# Nesting of protobuf messages in one request: the protobuf runtime's default
# recursion limit; the edge's check of a request's encoding stops at it too.
PROTOBUF_NESTING_DEPTH_MAX = 100
# Operations in one batched call (Batch.Call, Node.batch, one SDK flush).
BATCH_OPS_MAX = 1024
# Encoded requests of one batched call; the SDK closes a batch before it.
BATCH_REQUEST_BYTES_MAX = 4 * 1024 * 1024
# Answers of one batched call; an op whose answer would pass it gets a
# retryable error instead (a write has applied: its retry, with the same
# request id, returns the stored answer).
BATCH_RESPONSE_BYTES_MAX = 6 * 1024 * 1024

# Available plane (CRDT tables).
# How far ahead of local time a remote hybrid timestamp may be; a gossip
# message stamped, or carrying a write stamped, further ahead is rejected.
CLOCK_DRIFT_MS_MAX = 60_000
# Bytes of a CRDT table's name (UTF-8).
CRDT_TABLE_NAME_BYTES_MAX = 128
# CRDT tables one node holds.
CRDT_TABLES_MAX = 256
# Bytes of one CRDT element, map key or register value.
CRDT_VALUE_BYTES_MAX = 32 * 1024
# Nesting of lists and maps the canonical CRDT encoding decodes before it gives up.
CRDT_NESTING_DEPTH_MAX = 32
# Bytes of one key of a keyed CRDT table (the empty key is allowed).
KEYED_KEY_BYTES_MAX = 256
# Encoded bytes of one key's CRDT state; a local write past it is refused, so every key fits one sync frame.
KEYED_KEY_STATE_BYTES_MAX = 48 * 1024
# Keys (removed ones too) one keyed scan page looks at before it returns a continuation.
KEYED_SCAN_KEYS_EXAMINED_MAX = 100_000
# Keys (entries, key hashes, wanted keys) one keyed-sync frame carries.
KEYED_SYNC_FRAME_KEYS_MAX = 512
# Bucket digests one keyed-sync frame carries (one frame per step of a digest descent).
KEYED_SYNC_FRAME_DIGESTS_MAX = 4_096
# Keys one step of a keyed-sync exchange sends, over all its frames.
KEYED_SYNC_STEP_KEYS_MAX = 8_192
# Keys, and bytes of deltas, waiting for the next eager push, per keyed table; past either the oldest go (anti-entropy repairs them).
KEYED_PUSH_KEYS_MAX = 10_000
KEYED_PUSH_BYTES_MAX = 8 * 1024 * 1024
# Nodes in one gossip membership.
GOSSIP_MEMBERS_MAX = 64
# Bytes of one gossip frame, MAC included, both directions (the default of
# GossipConfig.message_bytes_max); frames are never cut smaller than the _MIN.
GOSSIP_MESSAGE_BYTES_MAX = 256 * 1024
GOSSIP_MESSAGE_BYTES_MIN = 2 * 1024
# The largest frame that fits one UDP datagram over IPv4 or IPv6, rounded
# down; the gossip core is configured to split payloads into frames of at
# most this size.
UDP_FRAME_BYTES_MAX = 60 * 1024
# Kernel buffers of the gossip socket, for bursts of frames (a full-state sync of a big table).
GOSSIP_SOCKET_BUFFER_BYTES = 4 << 20
# Deltas buffered per table for peers that lag; a peer further behind gets
# the whole state.
DELTA_BUFFER_ENTRIES_MAX = 1_024
DELTA_BUFFER_BYTES_MAX = 8 * 1024 * 1024
# Incomplete chunked gossip transfers: open per peer, bytes held per peer,
# and rounds before one is given up.
TRANSFERS_PER_PEER_MAX = 8
TRANSFER_BYTES_PER_PEER_MAX = 64 * 1024 * 1024
TRANSFER_ROUNDS_MAX = 5
# Deliveries (a datagram, or a Gossip.Deliver call of the injection hook)
# queued for the gossip thread; more are refused (RESOURCE_EXHAUSTED).
GOSSIP_INBOX_DELIVERIES_MAX = 256

# -- leases, registry, locks, elections, watches (strong plane) --
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
# Events, and bytes of responses, the SDK buffers for one watch its user has not
# read yet; past either the watch overflows (resynced, or WatchOverflow raised).
WATCH_CLIENT_BUFFER_EVENTS_MAX = 4_096
WATCH_CLIENT_BUFFER_BYTES_MAX = 4 * 1024 * 1024
# Events the history trims per applied command, beyond what it added.
WATCH_HISTORY_TRIM_PER_COMMAND_MAX = 64

# -- CRDT tables (available plane), API edge --
# Members or keys one CRDT Scan returns; a larger or zero `limit` is clamped.
CRDT_SCAN_ENTRIES_MAX = 10_000
# Frames in one Gossip.Deliver call.
GOSSIP_DELIVER_FRAMES_MAX = 64
# Changed keys one keyed-table subscription holds unsent; past it they are dropped and it is told to resync.
CRDT_KEY_FEED_PENDING_KEYS_MAX = 10_000

# -- pub/sub, best effort (available plane) --
# Bytes of one topic, or of one prefix subscribed to (the empty prefix matches every topic).
PUBSUB_TOPIC_BYTES_MAX = 256
# Bytes of one published message's payload.
PUBSUB_MESSAGE_BYTES_MAX = 64 * 1024
# Messages, and bytes of messages, buffered for one subscriber; past either the oldest go, and one "lagged by N" notice takes their place.
PUBSUB_SUBSCRIBER_BUFFER_MESSAGES_MAX = 4_096
PUBSUB_SUBSCRIBER_BUFFER_BYTES_MAX = 4 * 1024 * 1024
# Subscribers on one node.
PUBSUB_SUBSCRIBERS_MAX = 100_000
# Topics and prefixes one subscriber holds.
PUBSUB_SUBSCRIBER_TOPICS_MAX = 100_000
# Topics and prefixes held on one node, every subscriber's together.
PUBSUB_SUBSCRIPTIONS_MAX = 1_000_000
# Distinct topics one publisher session numbers; past it the publisher goes on as a new session.
PUBSUB_PUBLISHER_TOPICS_MAX = 10_000
# Bytes of a node name inside a publisher id.
PUBSUB_NODE_NAME_BYTES_MAX = 128
# Messages, and bytes, queued for one peer's relay stream; past either the oldest go, counted, seen as a sequence gap.
PUBSUB_RELAY_QUEUE_MESSAGES_MAX = 16_384
PUBSUB_RELAY_QUEUE_BYTES_MAX = 16 * 1024 * 1024
# Bytes of messages one relay frame carries (a frame holds at least one message).
PUBSUB_RELAY_FRAME_BYTES_MAX = 256 * 1024
# Wait before a lost relay stream is opened again: doubles from the _MIN to the _MAX.
PUBSUB_RELAY_RECONNECT_MS_MIN = 50
PUBSUB_RELAY_RECONNECT_MS_MAX = 5_000
# Longest a peer may take to accept a relay stream's hello; a peer that holds the connection silent is tried again.
PUBSUB_RELAY_HELLO_MS_MAX = 5_000
# Origins (node incarnations) a node keeps relay sequence state for; the longest unheard goes first.
PUBSUB_RELAY_ORIGINS_MAX = 256
# Messages a subscription's stream may have sent that its client has not taken yet (the grants it holds); the rest wait in the subscriber's buffer.
PUBSUB_SUBSCRIBER_WINDOW_MESSAGES_MAX = 4_096
# Longest a node holds back waking its subscriptions' streams, so that busy ones send their events in fewer, larger writes.
PUBSUB_WAKE_DELAY_MS_MAX = 50
# Publishes one PublishStream request carries in its batch (answered by one response).
PUBSUB_PUBLISH_BATCH_MESSAGES_MAX = 1_024

# -- presence (available plane) --
# Bytes of a presence topic, of a tracked key, and of one entry's metadata.
PRESENCE_TOPIC_BYTES_MAX = 256
PRESENCE_KEY_BYTES_MAX = 256
PRESENCE_META_BYTES_MAX = 4 * 1024
# Lease of a tracking session when the caller names none, and the range a caller may name; a session not kept alive for its TTL loses its entries on every node.
PRESENCE_SESSION_TTL_MS = 15_000
PRESENCE_SESSION_TTL_MS_MIN = 1_000
PRESENCE_SESSION_TTL_MS_MAX = 600_000
# Sessions, and entries, tracked through one node; past either a track is refused (RESOURCE_EXHAUSTED).
PRESENCE_SESSIONS_PER_NODE_MAX = 100_000
PRESENCE_ENTRIES_PER_NODE_MAX = 200_000
# Bytes of one node's tracked entries (topic, key, metadata and overhead), the most one full-state transfer carries.
PRESENCE_NODE_STATE_BYTES_MAX = 64 * 1024 * 1024
# How often a node tells each peer it is alive (its heartbeat, with its presence version).
PRESENCE_HEARTBEAT_MS = 1_000
# A node not heard from for this long is gone: every replica drops the entries tracked through it.
PRESENCE_NODE_DOWN_MS = 10_000
# How far nodes' clocks may disagree; a heartbeat from further ahead counts as now plus this, so a killed node's entries go within PRESENCE_NODE_DOWN_MS plus this.
PRESENCE_CLOCK_SKEW_MS_MAX = 2_000
# Removals an owner remembers for deltas; a peer further behind gets the owner's full state instead.
PRESENCE_TOMBSTONES_MAX = 10_000
# Owners (node incarnations) one replica holds entries of.
PRESENCE_OWNERS_MAX = 256
# Bytes of one presence gossip frame (one UDP datagram); larger transfers go as numbered chunks.
PRESENCE_FRAME_BYTES_MAX = 60 * 1024
# How often a running node lets presence time pass (expiries, heartbeats, pushing local changes to peers).
PRESENCE_TICK_MS = 50
# Frames waiting for one peer's Exchange call; past it the oldest go (counted; heartbeats and wants repair them).
PRESENCE_PEER_QUEUE_FRAMES_MAX = 1_024
# Longest one Exchange call (a batch of frames to a peer) may take before it is given up.
PRESENCE_EXCHANGE_TIMEOUT_MS = 2_000
# Longest a node that stops cleanly waits for its goodbye frames to reach its peers (as long as one Exchange call may take); one that misses it drops the node's entries by PRESENCE_NODE_DOWN_MS.
PRESENCE_GOODBYE_WAIT_MS = 2_000
# Diffs a presence watch stream holds for a slow reader; past it they go and the reader gets the topic's state (resync).
PRESENCE_WATCH_DIFFS_MAX = 1_024

# -- pub/sub, durable (the strong plane's per-topic log; topics and messages share the limits above) --
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

# -- jobs (the durable job queue, docs/jobs.md) --
# Bytes of a job queue's name.
JOB_QUEUE_BYTES_MAX = 256
# Bytes of a job's unique_key (unique within its queue while the job is unfinished);
# with the longest queue name its stored key stays within LMDB_KEY_BYTES_MAX.
JOB_UNIQUE_KEY_BYTES_MAX = 128
# Bytes of a job's args, and of the result it is completed with.
JOB_ARGS_BYTES_MAX = 256 * 1024
# Bytes of the error a failed job keeps (longer errors are refused).
JOB_ERROR_BYTES_MAX = 4 * 1024
# Jobs one claim may take.
JOB_CLAIM_JOBS_MAX = 256
# Highest job priority (0 runs first).
JOB_PRIORITY_MAX = 9
# Failures a job may be allowed before it is dead, and the default.
JOB_MAX_ATTEMPTS_MAX = 1_000
JOB_MAX_ATTEMPTS_DEFAULT = 20
# Longest a claimed job may run (its timeout_ms) on the lease clock.
JOB_TIMEOUT_MS_MAX = 24 * 3600 * 1000
# Backoff after a job's first failure; it doubles per failure up to the max.
JOB_BACKOFF_MIN_MS = 1_000
JOB_BACKOFF_MAX_MS = 3600 * 1000
# How long a finished job (completed, dead, cancelled) is kept, on the log clock.
JOB_RETENTION_MS = 7 * 24 * 3600 * 1000
# Finished jobs kept at most; beyond it the oldest finished go first.
JOB_RETAINED_FINISHED_MAX = 100_000
# Jobs the per-entry sweep may promote, time out or prune in one log entry.
JOB_SWEEP_PER_ENTRY_MAX = 256
# Recurring (cron) jobs at most, the bytes of a name, and of a cron expression.
JOB_CRONS_MAX = 1_000
JOB_CRON_NAME_BYTES_MAX = 64
JOB_CRON_EXPRESSION_BYTES_MAX = 256
# Bytes of a recurring job's args (small, so one list of every cron fits an answer).
JOB_CRON_ARGS_BYTES_MAX = 1024
# Jobs (or queues) one List (or Stats) answer carries, and records one List may look at.
JOB_LIST_MAX = 1_000
JOB_LIST_SCAN_MAX = 10_000
# Claims a job may lose (its lease ended while it ran: the worker crashed or stalled) before it is dead, and the default.
JOB_MAX_LOST_CLAIMS_MAX = 1_000
JOB_MAX_LOST_CLAIMS_DEFAULT = 10
# Bytes of the note a job's progress report carries (available plane, docs/jobs.md).
JOB_PROGRESS_NOTE_BYTES_MAX = 256
# How long a job's progress entry stays without a new report before any node removes it.
JOB_PROGRESS_STALE_MS = 3600 * 1000
# Bytes of a worker's id in its heartbeat.
JOB_WORKER_ID_BYTES_MAX = 128
# How long a worker stays listed after its last heartbeat; past it any node removes it.
JOB_WORKER_STALE_MS = 30 * 1000
# Least time between two sweeps of stale progress and worker entries on one node.
JOB_BOARD_SWEEP_INTERVAL_MS = 5 * 1000
# Progress or worker entries one sweep looks at (it goes on from there the next time).
JOB_BOARD_SWEEP_KEYS_MAX = 256
# Workers one Workers answer carries.
JOB_WORKERS_LIST_MAX = 1_000

# -- storage (LMDB), per node --
# Map size of the Raft log's environment, which holds only entries and meta:
# the entries between two snapshots at the largest command size.
RAFT_LOG_MAP_SIZE_BYTES = 8 << 30
# Reader slots of the state environment, beyond the RPC worker threads:
# barrier waiters, status, snapshots.
STATE_READERS_MAX = 2048
# Above this share of the state map in use, writes are refused before they
# are proposed (RESOURCE_EXHAUSTED), so an apply never meets a full map.
MAP_FILL_RATIO_WRITES_MAX = 0.9
# Bytes of a snapshot file's header: two entries (each at most one command)
# and the member list.
SNAPSHOT_HEADER_BYTES_MAX = 4 << 20
# Map size of the CRDT environment; CRDT_TABLES_MAX tables of a few MiB each.
CRDT_MAP_SIZE_BYTES = 1 << 30
# Reader slots of the CRDT environment; tables are served from memory, so a
# handful is plenty.
CRDT_READERS_MAX = 64
# Bytes of a backup file in each Maintenance.Snapshot message (well below
# GRPC_MESSAGE_BYTES_MAX).
BACKUP_CHUNK_BYTES = 1 << 20
# Maintenance.Snapshot calls one node serves at once; each holds a copy of
# the node's state on its disk while it streams. More get RESOURCE_EXHAUSTED.
BACKUPS_IN_FLIGHT_MAX = 2
# Bytes of a backup file's JSON header (revision, sizes, section table).
BACKUP_HEADER_BYTES_MAX = 64 << 10

# -- TLS on the client port (serve --tls-cert/--tls-key/--tls-ca) --
# How often, at most, a node looks at its certificate and key files' mtimes
# (at a new connection's handshake) to pick up a renewed certificate.
TLS_RELOAD_CHECK_INTERVAL_MS = 1_000
# Bytes of one PEM file (certificate chain, key or CA bundle) a node or client reads.
TLS_FILE_BYTES_MAX = 1 << 20

# -- authentication and roles (server/strong/auth.py) --
# scrypt's cost parameters for a stored password hash (n = 2**14 takes ~16 MiB and ~50 ms).
AUTH_SCRYPT_N = 1 << 14
# scrypt's block size and parallelism for a stored password hash.
AUTH_SCRYPT_R = 8
AUTH_SCRYPT_P = 1
# Bytes of a password's random salt and of its scrypt hash.
AUTH_SALT_BYTES = 16
AUTH_HASH_BYTES = 32
# Bytes of the HMAC key that signs tokens (kept in the strong plane).
AUTH_TOKEN_KEY_BYTES = 32
# How long a token from Authenticate is valid.
AUTH_TOKEN_TTL_MS = 10 * 60 * 1_000
# Bytes of a user or role name.
AUTH_NAME_BYTES_MAX = 64
# Bytes of a password.
AUTH_PASSWORD_BYTES_MAX = 1_024
# Bytes of one permission's name prefix.
AUTH_PREFIX_BYTES_MAX = 512
# Users, roles, roles per user and permissions per role the auth store holds.
AUTH_USERS_MAX = 10_000
AUTH_ROLES_MAX = 1_000
AUTH_ROLES_PER_USER_MAX = 64
AUTH_PERMISSIONS_PER_ROLE_MAX = 256
# Password hashings (Authenticate, user add, password change) a node runs at once; beyond: RESOURCE_EXHAUSTED.
AUTH_HASHINGS_IN_FLIGHT_MAX = 4
# Bytes `serve` reads of root_password_file (the password on its first line).
ROOT_PASSWORD_FILE_BYTES_MAX = 4_096
# How long one auth bootstrap change (add root, grant, enable) may wait to commit before the next try.
AUTH_BOOTSTRAP_STEP_TIMEOUT_MS = 10_000

# -- the command line --
# Bytes of a transaction `tandemkv txn` reads from stdin (the cluster bounds
# the ops and compares themselves: TXN_OPS_MAX, TXN_COMPARES_MAX).
TXN_INPUT_BYTES_MAX = 8 << 20
# Nodes `tandemkv up --nodes` starts at most.
LOCAL_CLUSTER_NODES_MAX = 9

# -- discovery (serve --discovery dns:NAME / dns-srv:NAME) --
# How often a running node asks DNS for the member list again.
DISCOVERY_POLL_INTERVAL_MS = 5_000
# Longest one DNS question (every nameserver and retry included) may take.
DISCOVERY_RESOLVE_TIMEOUT_MS = 2_000
# Longest pause between two start-up attempts (the pause doubles from 250 ms up to this).
DISCOVERY_RETRY_BACKOFF_MS_MAX = 8_000
# Members one DNS answer may list; a longer answer is refused as a misconfiguration.
DISCOVERY_MEMBERS_MAX = 64

# -- observability (serve --http-address: /metrics, /livez, /readyz, /dashboard) --
# How often a node samples itself for leader changes and the dashboard's rates.
OBSERVE_SAMPLE_INTERVAL_MS = 1_000
# Samples a node keeps for the dashboard (the newest; at one a second, two minutes).
OBSERVE_SAMPLES_MAX = 120
# Longest the dashboard's cluster view waits for one other member's status.
OBSERVE_PEER_STATUS_TIMEOUT_MS = 500
# How long one cluster view is reused, so many open dashboards ask the peers no more often.
OBSERVE_CLUSTER_VIEW_REUSE_MS = 500
# HTTP connections the observability port serves at once; more get 503.
OBSERVE_HTTP_CONNECTIONS_MAX = 64
# Longest a stopping node waits for its HTTP server to close its connections.
OBSERVE_HTTP_STOP_WAIT_MS = 5_000

# -- the Python SDK --
# How long a leader lookup or a status call waits for one node.
STATUS_TIMEOUT_S_MAX = 2.0
# Nodes one status() call asks (the endpoints and the members they report).
STATUS_NODES_MAX = 64
# Longest one lease keepalive attempt may take.
KEEPALIVE_ATTEMPT_S_MAX = 5.0
