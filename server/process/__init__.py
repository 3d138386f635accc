"""The node as a process: `serve.py` runs one node and its gRPC server until
a stop signal, `settings.py` reads its configuration (flags, environment,
TOML), `stop_signals.py` turns signals into an orderly stop, and
`local_cluster.py` is the developer's `tandemkv up` and `down`."""
