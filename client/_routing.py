"""Which endpoint the next attempt goes to, and where endpoints come from.

The router prefers the leader (writes and linearizable reads are served
there without a hop), learns it from `Cluster.Status` and from the
`tandemkv-leader` hint on UNAVAILABLE, forgets it when it fails, and
otherwise rotates through the endpoints. An endpoint that answered
NodeRemoved (its node left the cluster, and may keep running for a
while) goes to the back of the rotation until it answers again: a
removed node knows no leader, and asking it first on every lookup
spends a call's whole deadline there. Available-plane calls (CRDT
tables) need no leader: `LocalEndpoints` keeps the node that answered
last. Pure bookkeeping: no I/O (a lock keeps a router shared by threads
consistent; it is never held across a call).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterable

from tandemkv.errors import NodeRemoved, TandemKVError, Unavailable

ENDPOINTS_ENV = "TANDEMKV_ENDPOINTS"
DEFAULT_CLUSTER_FILE = Path("tandemkv-data") / "cluster.json"


def resolve_endpoints(endpoints: Iterable[str] | str | None) -> list[str]:
    """Endpoints as given ('host:port', a list or a comma-separated string);
    else `$TANDEMKV_ENDPOINTS`; else the client addresses in
    `./tandemkv-data/cluster.json` (written by `tandemkv up`)."""
    if endpoints is None:
        endpoints = os.environ.get(ENDPOINTS_ENV) or _from_cluster_file(DEFAULT_CLUSTER_FILE)
    if isinstance(endpoints, str):
        endpoints = endpoints.split(",")
    found = [e.strip() for e in endpoints if e and e.strip()]
    if not found:
        raise ValueError(
            f"no endpoints: pass them ('host:port,...'), set {ENDPOINTS_ENV}, "
            f"or start a local cluster with `tandemkv up` (writes {DEFAULT_CLUSTER_FILE})"
        )
    return found


def _from_cluster_file(path: Path) -> list[str]:
    try:
        cluster = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read endpoints from {path}: {error}") from error
    return [node["client_address"] for node in cluster.get("nodes", [])]


class Router:
    def __init__(self, endpoints: list[str]):
        assert endpoints, "a router needs at least one endpoint"
        self.endpoints = list(endpoints)
        self.leader: str | None = None
        # Endpoints whose node said it was removed from the cluster.
        self.removed: set[str] = set()
        self._next = 0
        self._lock = threading.Lock()

    def order(self) -> list[str]:
        """Every endpoint, from the next one in turn; removed nodes last."""
        with self._lock:
            count = len(self.endpoints)
            turn = [self.endpoints[(self._next + k) % count] for k in range(count)]
            removed = self.removed
        return [e for e in turn if e not in removed] + [e for e in turn if e in removed]

    def pick(self) -> str:
        """The leader if known, else the next endpoint in turn."""
        if self.leader is not None:
            return self.leader
        return self.order()[0]

    def learn_leader(self, endpoint: str | None) -> bool:
        """Adopts `endpoint` as leader; returns whether that changed anything.
        A serving node named it: if it was removed, it was added again."""
        with self._lock:
            if not endpoint or endpoint == self.leader:
                return False
            if endpoint not in self.endpoints:
                self.endpoints.append(endpoint)
            self.removed.discard(endpoint)
            self.leader = endpoint
            return True

    def answered(self, endpoint: str) -> None:
        """`endpoint` served a call: it is a member (again, if it was removed)."""
        if endpoint in self.removed:
            with self._lock:
                self.removed.discard(endpoint)

    def failed(self, endpoint: str, error: TandemKVError) -> bool:
        """Records that `endpoint` failed with a retryable `error`; returns
        True when the error named a new leader to try at once."""
        if isinstance(error, Unavailable) and error.leader_hint and error.leader_hint != endpoint:
            return self.learn_leader(error.leader_hint)
        with self._lock:
            if isinstance(error, NodeRemoved):
                self.removed.add(endpoint)
            if self.leader == endpoint:
                self.leader = None
            if endpoint in self.endpoints:
                self._next = self.endpoints.index(endpoint) + 1
        return False


class LocalEndpoints:
    """Which node answers available-plane calls first: the last one that did."""

    def __init__(self, endpoints: list[str]):
        assert endpoints, "local calls need at least one endpoint"
        self.endpoints = list(endpoints)
        self.index = 0

    def order(self) -> list[str]:
        """Every endpoint, starting from the one that answered last."""
        count = len(self.endpoints)
        return [self.endpoints[(self.index + k) % count] for k in range(count)]

    def answered(self, endpoint: str) -> None:
        self.index = self.endpoints.index(endpoint)
