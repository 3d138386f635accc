"""The only package that knows pysyncobj. The node uses `replica.Replica`
(the façade) and the types of `contract.py`; behind them `member.py` (the
SyncObj subclass and its apply path), `submission.py` (commands queued and
batched, outcomes after commit), `snapshot_hooks.py` and
`snapshot_transfer.py` (snapshots written, read and received), `fatal.py`
(stopping a node that would diverge), `vote_guard.py` (an empty disk's
votes), `membership.py` and `learners.py`
(runtime member changes; learners), `progress.py` (how replies and appends
are read), `transport.py` (messages wait for the disk), `pinned.py` (the
internals relied on, checked at import), `port_guard.py` (the bound on the
Raft port's frames) and `read_barrier.py` (coalesced read barriers).
`testing.py` holds the hooks tests use to reach under the façade."""
