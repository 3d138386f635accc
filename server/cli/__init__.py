"""The `tandemkv` command: `main.py` builds the parser; `client.py` the KV,
counter and status commands and the output and exit-code conventions they
all share; `txn.py`, `crdt.py` and `coordination.py` their command groups;
`hold.py` commands that hold a claim until interrupted. `serve` and `up`
run code from `tandemkv.server.process`."""
