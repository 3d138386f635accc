"""The sans-I/O gossip protocol (pure): `protocol.py` (`GossipNode`), the
per-table replica (`tables.py`), peer liveness (`liveness.py`), the
authenticated message framing (`wire.py`) and large payloads in bounded
frames (`transfer.py`). The sockets are in `tandemkv.server.available.transport`."""
