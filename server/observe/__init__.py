"""Observability of one node: Prometheus metrics, `/livez` and `/readyz`,
structured logs and a live dashboard page, served over HTTP on the node's
event loop (http.py). Everything here reads the node (its `status()` and
its planes' status) at the time it is asked; what must be counted as it
happens (RPCs, Raft proposals, log fsyncs, leader changes) is counted
through hooks the node and the gRPC dispatcher call.
"""
