"""The available plane's limits (server/available/): CRDT tables and gossip,
keyed tables, best-effort pub/sub and presence.
"""

# -- CRDT tables and gossip --
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
