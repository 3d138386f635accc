"""LMDB storage of a node: the strong plane's state (kv, counters, dedup,
last applied index) and, in its own environment, the Raft log and term/vote."""
