"""A node's request edge (server/api/, server/node/): deadlines, calls and
streams served at once, gRPC's own bounds, and batched calls.
"""

# -- deadlines --
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

# -- calls and streams at once, gRPC --
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

# -- batched calls --
# Operations in one batched call (Batch.Call, Node.batch, one SDK flush).
BATCH_OPS_MAX = 1024
# Encoded requests of one batched call; the SDK closes a batch before it.
BATCH_REQUEST_BYTES_MAX = 4 * 1024 * 1024
# Answers of one batched call; an op whose answer would pass it gets a
# retryable error instead (a write has applied: its retry, with the same
# request id, returns the stored answer).
BATCH_RESPONSE_BYTES_MAX = 6 * 1024 * 1024
