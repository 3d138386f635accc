"""TLS for a node: its client port's server credentials (reloaded when the
files change on disk), the channels members open to each other's client
ports, and the development CA that `tandemkv up --tls` makes."""
