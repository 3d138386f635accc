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
