"""`StubCache`: the generated stubs of one client, one per (service,
channel), shared by `Client` and `AsyncClient`.

A generated stub is cheap to call and dear to build: its constructor
registers a callable per RPC of the service (sixteen for Jobs), and
building one per call was a fifth of a job worker's GIL time. A stub holds
nothing but its channel, so one per (service, channel) serves every call
and thread. The key is the channel object itself: a channel closed and
opened again for the same endpoint is a new object and gets new stubs,
never one bound to the closed channel.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping


class StubCache:
    """`get(service, channel)`: the stub of `service` on `channel`, built the
    first time by `stubs[service](channel)`. Safe from many threads without
    a lock: two threads racing on a new key may each build a stub, and one
    of them is kept; both work."""

    def __init__(self, stubs: Mapping[str, Callable[[Any], Any]]):
        self._stubs = stubs
        self._built: dict[tuple[str, Any], Any] = {}

    def get(self, service: str, channel: Any) -> Any:
        key = (service, channel)
        stub = self._built.get(key)
        if stub is None:
            stub = self._built.setdefault(key, self._stubs[service](channel))
        return stub

    def clear(self) -> None:
        """Forgets every stub (the client closed its channels)."""
        self._built = {}
