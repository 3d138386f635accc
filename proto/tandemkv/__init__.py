"""TandemKV: a replicated state service.

`tandemkv.server` holds a node (the embeddable `Node`, the gRPC server and the
CLI), `tandemkv.client` the Python SDK, and `tandemkv.v1` the generated wire
types of the gRPC API.
"""

__version__ = "0.1.0"
