"""The strong (CP) plane's pure core: a deterministic state machine,
`apply(view, command)`, over a store view. It imports no pysyncobj, gRPC,
sockets, LMDB or threads (tests/test_purity.py); the Raft replica that
feeds it committed entries is in `tandemkv.server.raft`."""
