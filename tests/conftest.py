"""Shared fixtures: the `view` fixture runs a test once over the in-memory
view and once over an LMDB view in a temporary directory."""

from __future__ import annotations

import pytest

from tandemkv.server.storage.state_store import StateStore
from tandemkv.server.strong.view import MemoryView


@pytest.fixture(params=["memory", "lmdb"])
def view(request, tmp_path):
    if request.param == "memory":
        yield MemoryView()
        return
    store = StateStore(tmp_path / "state", map_size_bytes=64 << 20, durable=False)
    store.begin_batch()
    try:
        yield store.batch_view()
    finally:
        store.commit_batch()
        store.close()
