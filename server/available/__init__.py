"""The available (AP) plane: CRDT tables that accept writes through
partitions and converge by gossip. Never waits on Raft."""
