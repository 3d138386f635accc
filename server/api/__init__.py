"""The client-facing gRPC API of a node: servicers, the edge checks they
share, and the server builder. Public: `build_server`, `ClientServer`."""

from tandemkv.server.api.server import ClientServer, build_server

__all__ = ["ClientServer", "build_server"]
