"""The one module that reaches into pysyncobj: fail loudly if the pinned
internals it relies on change, and check what it installs."""

from __future__ import annotations

import pytest

import pysyncobj.syncobj
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.server.strong import raft_adapter


def test_the_installed_pysyncobj_is_the_pinned_one_with_the_internals_used():
    raft_adapter.check_pinned_internals()


def test_a_different_pysyncobj_version_is_refused(monkeypatch):
    monkeypatch.setattr(raft_adapter, "PYSYNCOBJ_VERSION", "0.3.18")
    with pytest.raises(RuntimeError, match="pysyncobj==0.3.17"):
        raft_adapter.check_pinned_internals()


def test_a_missing_internal_is_refused(monkeypatch):
    monkeypatch.delattr(pysyncobj.syncobj.SyncObj, "_SyncObj__sendAppendEntries")
    with pytest.raises(RuntimeError, match="_SyncObj__sendAppendEntries"):
        raft_adapter.check_pinned_internals()


def test_pysyncobj_builds_its_journal_from_our_durable_log(tmp_path):
    log = DurableRaftLog(tmp_path / "raft", durable=True)
    assert pysyncobj.syncobj.createJournal(log) is log
    assert type(pysyncobj.syncobj.createJournal(None)).__name__ == "MemoryJournal"
    log._destroy()


def test_the_overrides_shadow_the_private_methods_pysyncobj_calls():
    # SyncObj calls self.__applyLogEntries(), i.e. self._SyncObj__applyLogEntries().
    replica = raft_adapter.RaftReplica
    assert "_SyncObj__applyLogEntries" in vars(replica)
    assert "_checkCommandsToApply" in vars(replica)
    assert getattr(replica, "_SyncObj__applyLogEntries") is not getattr(
        pysyncobj.syncobj.SyncObj, "_SyncObj__applyLogEntries")
    source = pysyncobj.syncobj.SyncObj._onTick.__code__.co_names
    assert "_SyncObj__applyLogEntries" in source and "_checkCommandsToApply" in source


class _FakeLog:
    def __init__(self):
        self.submitted = 0
        self.durable_seq = 0
        self.dirty = False

    def request_flush(self):
        if self.dirty:
            self.submitted += 1
            self.dirty = False
        return self.submitted


def test_messages_that_promise_durability_wait_for_the_disk_in_order(monkeypatch):
    sent = []
    monkeypatch.setattr(raft_adapter.TCPTransport, "send",
                        lambda self, node, message: sent.append((node, message["type"])) or True)
    transport = object.__new__(raft_adapter._FlushingTransport)
    transport._held = {}
    transport._syncObj = type("Replica", (), {})()
    transport._syncObj._raft_log = log = _FakeLog()
    log.dirty = True  # entries appended, not yet on disk
    transport.send("n2", {"type": "next_node_idx"})       # an acknowledgement: held
    transport.send("n2", {"type": "append_entries"})      # after a held one: held too
    transport.send("n3", {"type": "append_entries"})      # a leader's entries: go now
    assert sent == [("n3", "append_entries")]
    transport.release_held()
    assert len(sent) == 1, "still not durable"
    log.durable_seq = 1
    transport.release_held()
    assert sent[1:] == [("n2", "next_node_idx"), ("n2", "append_entries")]
    assert transport._held == {}
