"""A node's storage (LMDB) limits (server/storage/, server/available/storage):
map sizes, reader slots, how full the state map may get, snapshot headers.
"""

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
