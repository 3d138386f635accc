"""The Python SDK's limits (client/) that a node need not know: what one watch
buffers, how long and how widely status calls look, keepalive attempts.
"""

# -- watches --
# Events, and bytes of responses, the SDK buffers for one watch its user has not
# read yet; past either the watch overflows (resynced, or WatchOverflow raised).
WATCH_CLIENT_BUFFER_EVENTS_MAX = 4_096
WATCH_CLIENT_BUFFER_BYTES_MAX = 4 * 1024 * 1024

# -- status and keepalives --
# How long a leader lookup or a status call waits for one node.
STATUS_TIMEOUT_S_MAX = 2.0
# Nodes one status() call asks (the endpoints and the members they report).
STATUS_NODES_MAX = 64
# Longest one lease keepalive attempt may take.
KEEPALIVE_ATTEMPT_S_MAX = 5.0
