"""The sans-I/O gossip protocol (pure): `protocol.py` (`GossipNode`, its
round), what one exchange says and answers (`exchange.py`), its frames
(`packing.py`), its configuration and status (`records.py`), the per-table
replica (`tables.py`), peer liveness (`liveness.py`), the authenticated
message framing (`wire.py`) and large payloads in bounded frames
(`transfer.py`); the keyed tables' replication is `keyed_sync.py` (`KeyedSync`)
and the `keyed_*` modules beside it. The sockets are in
`tandemkv.server.available.transport`."""
