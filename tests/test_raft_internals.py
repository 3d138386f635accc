"""The pysyncobj internals server/raft/ relies on (pinned.py), and what its
overrides do (member.py, progress.py, transport.py): fail loudly if the
pinned internals change, and check what the overrides install. These tests
deliberately drive pysyncobj's private methods; they are the only tests
besides the port guard's that may (tests/test_raft_facade.py)."""

from __future__ import annotations

import pytest

import pysyncobj.config
from pysyncobj.config import FAIL_REASON
import pysyncobj.journal
import pysyncobj.syncobj
from tandemkv.server.storage.raft_log import DurableRaftLog
from tandemkv.server.raft import member, pinned, progress
from tandemkv.server.raft import transport as raft_transport


def test_the_installed_pysyncobj_is_the_pinned_one_with_the_internals_used():
    pinned.check_pinned_internals()


def test_a_different_pysyncobj_version_is_refused(monkeypatch):
    monkeypatch.setattr(pinned, "PYSYNCOBJ_VERSION", "0.3.18")
    with pytest.raises(RuntimeError, match="pysyncobj==0.3.17"):
        pinned.check_pinned_internals()


def test_a_missing_internal_is_refused(monkeypatch):
    monkeypatch.delattr(pysyncobj.syncobj.SyncObj, "_SyncObj__sendAppendEntries")
    with pytest.raises(RuntimeError, match="_SyncObj__sendAppendEntries"):
        pinned.check_pinned_internals()


def test_importing_the_raft_package_leaves_pysyncobjs_journal_factory_alone():
    assert pysyncobj.syncobj.createJournal is pysyncobj.journal.createJournal
    assert type(pysyncobj.syncobj.createJournal(None)).__name__ == "MemoryJournal"


def test_a_member_builds_its_journal_from_its_own_durable_log(tmp_path):
    log = DurableRaftLog(tmp_path / "raft", durable=True)
    init = member._syncobj_init_with_journal(log)
    assert init.__code__ is pysyncobj.syncobj.SyncObj.__init__.__code__
    assert init.__globals__["createJournal"]("ignored") is log
    assert init.__globals__["SyncObj"] is pysyncobj.syncobj.SyncObj, "every other name as pysyncobj's"
    log._destroy()


def test_a_constructor_that_builds_its_journal_otherwise_is_refused(monkeypatch):
    monkeypatch.setattr(pysyncobj.syncobj.SyncObj, "__init__", lambda self: None)
    with pytest.raises(RuntimeError, match="builds its journal differently"):
        pinned.check_pinned_internals()


def test_a_new_failure_code_is_refused(monkeypatch):
    monkeypatch.setattr(pysyncobj.config.FAIL_REASON, "OVERLOADED", 8, raising=False)
    with pytest.raises(RuntimeError, match="failure codes"):
        pinned.check_pinned_internals()


def test_each_failure_code_becomes_the_outcome_of_its_name():
    codes = {name: code for name, code in vars(pysyncobj.config.FAIL_REASON).items()
             if not name.startswith("_")}
    assert {code: outcome.name for code, outcome in member._OUTCOMES.items()} == \
        {code: name for name, code in codes.items()}


def test_the_overrides_shadow_the_private_methods_pysyncobj_calls():
    # SyncObj calls self.__applyLogEntries(), i.e. self._SyncObj__applyLogEntries().
    replica = member.RaftMember
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
    monkeypatch.setattr(raft_transport.TCPTransport, "send",
                        lambda self, node, message: sent.append((node, message["type"])) or True)
    transport = object.__new__(raft_transport.FlushingTransport)
    transport._held = {}
    transport._syncObj = type("Replica", (), {})()
    transport._syncObj._raft_log = log = _FakeLog()
    transport._syncObj._stamped_reply = lambda message: message
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


class _Entries(list):
    def first_index(self):
        return self[0][1]


def test_a_term_mismatch_hint_skips_the_whole_conflicting_term_above_the_commit_index():
    log = _Entries([(b"", i, t) for i, t in
                    [(5, 1), (6, 1), (7, 2), (8, 2), (9, 4), (10, 4), (11, 4)]])
    assert progress.backtrack_hint(log, 11, commit_index=6) == 9
    assert progress.backtrack_hint(log, 8, commit_index=6) == 7
    assert progress.backtrack_hint(log, 11, commit_index=9) == 10, "never at or below commit"
    assert progress.backtrack_hint(log, 30, commit_index=6) == 30, "not held: unchanged"


def _leader(monkeypatch, term=5):
    def original(self, node, message):  # what pysyncobj's leader does with a reply
        if message["reset"]:
            self._SyncObj__raftNextIndex[node] = message["next_node_idx"]
        elif message["success"]:
            self._SyncObj__raftNextIndex[node] = message["next_node_idx"]
            self._SyncObj__raftMatchIndex[node] = message["next_node_idx"] - 1

    monkeypatch.setattr(member.SyncObj, "_SyncObj__onMessageReceived", original)
    replica = object.__new__(member.RaftMember)
    replica._probe_floors = {}
    replica._peer_incarnations = {}
    replica._SyncObj__raftNextIndex = {"n3": 13_594}
    replica._SyncObj__raftMatchIndex = {"n3": 0}
    monkeypatch.setattr(member.RaftMember, "_isLeader", lambda self: True)
    monkeypatch.setattr(member.RaftMember, "raftCurrentTerm", term)
    return replica


def reply(next_index, success=False, reset=True):
    return {"type": "next_node_idx", "next_node_idx": next_index, "success": success,
            "reset": reset}


def test_while_backing_up_a_stale_reset_cannot_raise_the_next_index(monkeypatch):
    leader = _leader(monkeypatch)
    on = leader._SyncObj__onMessageReceived
    on("n3", reply(6_944))           # "my log ends at 6943"
    on("n3", reply(6_925))           # term mismatch: back up to the term's start
    on("n3", reply(6_944))           # answers an append sent before the back-up
    assert leader._SyncObj__raftNextIndex["n3"] == 6_925
    on("n3", reply(6_925, success=True, reset=False))
    on("n3", reply(7_000))           # after a success, a reset applies again
    assert leader._SyncObj__raftNextIndex["n3"] == 7_000


def test_a_new_term_forgets_the_previous_back_up(monkeypatch):
    leader = _leader(monkeypatch, term=5)
    leader._SyncObj__onMessageReceived("n3", reply(100))
    monkeypatch.setattr(member.RaftMember, "raftCurrentTerm", 6)
    leader._SyncObj__onMessageReceived("n3", reply(500))
    assert leader._SyncObj__raftNextIndex["n3"] == 500


def test_replies_of_another_term_and_resets_below_the_match_are_ignored(monkeypatch):
    leader = _leader(monkeypatch, term=5)
    on = leader._SyncObj__onMessageReceived
    on("n3", reply(20_000, success=True, reset=False))
    on("n3", dict(reply(33_844), tandemkv_term=4))   # from the previous term
    on("n3", reply(19_000))                          # below what n3 acknowledged
    assert leader._SyncObj__raftNextIndex["n3"] == 20_000
    on("n3", dict(reply(20_000), tandemkv_term=5))
    assert leader._SyncObj__raftNextIndex["n3"] == 20_000


def test_a_follower_stamps_its_replies_with_its_term(monkeypatch):
    follower = object.__new__(member.RaftMember)
    follower._answering = None
    follower._incarnation = "abc"
    monkeypatch.setattr(member.RaftMember, "raftCurrentTerm", 9)
    stamped = follower._stamped_reply(reply(10, success=True, reset=False))
    assert stamped["tandemkv_term"] == 9 and stamped["next_node_idx"] == 10


def test_a_restarted_follower_is_backed_up_even_below_its_old_match(monkeypatch):
    leader = _leader(monkeypatch, term=5)
    on = leader._SyncObj__onMessageReceived
    on("n3", dict(reply(20_000, success=True, reset=False), tandemkv_incarnation="a"))
    on("n3", dict(reply(2), tandemkv_incarnation="a"))      # same process: stale
    assert leader._SyncObj__raftNextIndex["n3"] == 20_000
    on("n3", dict(reply(2), tandemkv_incarnation="b"))      # wiped and restarted
    assert leader._SyncObj__raftNextIndex["n3"] == 2
    assert leader._SyncObj__raftMatchIndex["n3"] == 0


# -- a follower's log on an append: cut only where an entry conflicts --

class _Log(_Entries):
    def last_index(self):
        return self[-1][1] if self else 0


def _append(prev, prev_term, entries, commit):
    return {"type": "append_entries", "term": 3, "prevLogIdx": prev, "prevLogTerm": prev_term,
            "entries": [(b"", i, t) for i, t in entries], "commit_index": commit}


FOLLOWER_LOG = _Log([(b"", i, t) for i, t in [(5, 1), (6, 1), (7, 2), (8, 2), (9, 2)]])


def test_an_append_at_the_end_of_the_log_passes_unchanged():
    message = _append(9, 2, [(10, 3), (11, 3)], commit=10)
    assert progress.trim_append(FOLLOWER_LOG, message) == (message, None)


def test_entries_already_held_are_skipped_and_the_tail_after_them_is_kept():
    trimmed, keep_from = progress.trim_append(FOLLOWER_LOG, _append(5, 1, [(6, 1), (7, 2)], 9))
    assert (trimmed["prevLogIdx"], trimmed["prevLogTerm"], trimmed["entries"]) == (7, 2, [])
    assert keep_from == 8, "entries 8 and 9 conflict with nothing: kept"
    assert trimmed["commit_index"] == 7, "the kept tail is not known to match yet"


def test_the_log_is_cut_at_the_first_conflicting_entry():
    trimmed, keep_from = progress.trim_append(FOLLOWER_LOG,
                                                  _append(5, 1, [(6, 1), (7, 2), (8, 3)], 8))
    assert (trimmed["prevLogIdx"], [e[1:] for e in trimmed["entries"]]) == (7, [(8, 3)])
    assert keep_from is None and trimmed["commit_index"] == 8


def test_a_heartbeat_below_the_log_end_keeps_the_tail_and_caps_the_commit():
    trimmed, keep_from = progress.trim_append(FOLLOWER_LOG, _append(6, 1, [], commit=9))
    assert keep_from == 7 and trimmed["commit_index"] == 6 and trimmed["prevLogIdx"] == 6


def test_the_follower_skips_pysyncobjs_cut_only_where_nothing_conflicts(monkeypatch):
    cuts = []

    def pysyncobj_handler(self, node, message):  # what pysyncobj's follower does
        if len(self._raft_log) and self._raft_log.last_index() > message["prevLogIdx"]:
            self._SyncObj__deleteEntriesFrom(message["prevLogIdx"] + 1)

    monkeypatch.setattr(member.SyncObj, "_SyncObj__onMessageReceived", pysyncobj_handler)
    monkeypatch.setattr(member.SyncObj, "_SyncObj__deleteEntriesFrom",
                        lambda self, index: cuts.append(index))
    follower = object.__new__(member.RaftMember)
    follower._raft_log, follower._keep_log_from, follower._answering = FOLLOWER_LOG, None, None
    follower._SyncObj__raftLastApplied = follower._SyncObj__leaderCommitIndex = 5
    on = follower._SyncObj__onMessageReceived
    on("n1", _append(5, 1, [(6, 1), (7, 2)], 9))          # re-sent, all held: no cut
    on("n1", _append(5, 1, [(6, 1), (7, 2), (8, 3)], 9))  # conflicts at 8: cut there
    assert cuts == [8] and follower._keep_log_from is None


def test_pysyncobj_cuts_a_followers_log_through_the_method_overridden():
    handler = pysyncobj.syncobj.SyncObj._SyncObj__onMessageReceived.__code__
    assert "_SyncObj__deleteEntriesFrom" in handler.co_names
    overridden = member.RaftMember._SyncObj__deleteEntriesFrom
    assert overridden is progress.ReplicationProgress._SyncObj__deleteEntriesFrom
    assert overridden is not pysyncobj.syncobj.SyncObj._SyncObj__deleteEntriesFrom


# -- the follower's handler alone, over what pysyncobj does with an append's commit index --
class _Journal:
    def __init__(self):
        self.commit_index = None

    def setRaftCommitIndex(self, index):  # noqa: N802 - pysyncobj's journal interface
        self.commit_index = index


def _follower(monkeypatch, tmp_path, commit: int, log_end: int, installs_through: int | None = None):
    def pysyncobj_handler(self, node, message):  # syncobj.py, append_entries, as far as it goes here
        self._SyncObj__leaderCommitIndex = message["commit_index"]
        chunk = message.get("serialized")
        if chunk is not None and chunk[2] and installs_through is not None:  # the last chunk: loaded
            self._SyncObj__raftLastApplied = installs_through
        end = installs_through if self._SyncObj__raftLastApplied == installs_through else log_end
        if message["commit_index"] > self._SyncObj__raftCommitIndex:
            self._SyncObj__raftCommitIndex = min(message["commit_index"], end)

    monkeypatch.setattr(member.SyncObj, "_SyncObj__onMessageReceived", pysyncobj_handler)
    follower = object.__new__(member.RaftMember)
    follower._raft_log, follower._snapshot_path = _Journal(), str(tmp_path / "snapshot.bin")
    follower._keep_log_from, follower._answering = None, None
    follower._SyncObj__raftCommitIndex = follower._SyncObj__raftLastApplied = commit
    follower._SyncObj__leaderCommitIndex = None
    follower._SyncObj__commandsWaitingCommit = {}
    monkeypatch.setattr(member.RaftMember, "_isLeader", lambda self: False)
    return follower


def on_append(follower, message) -> None:
    """The message through progress.py's handler (the chunk's acknowledgement is snapshot_hooks.py's)."""
    progress.ReplicationProgress._SyncObj__onMessageReceived(follower, "n1", message)


@pytest.mark.parametrize("serialized", [None, (b"part", True, False), (b"part", False, False)],
                         ids=["snapshot not ready", "first chunk", "middle chunk"])
def test_an_append_without_a_log_to_match_moves_no_commit_index_but_readiness_sees_the_leaders(
        monkeypatch, tmp_path, serialized):
    follower = _follower(monkeypatch, tmp_path, commit=10, log_end=30)
    on_append(follower, {"type": "append_entries", "term": 3, "commit_index": 50, "serialized": serialized})
    assert follower.raftCommitIndex == 10, "its own tail (11-30) is not known to match the leader's"
    assert follower._SyncObj__leaderCommitIndex == 50


def test_an_installed_snapshot_commits_what_it_covers_and_tells_the_commands_there_their_fate_is_unknown(
        monkeypatch, tmp_path):
    follower = _follower(monkeypatch, tmp_path, commit=10, log_end=30, installs_through=40)
    told = []
    follower._SyncObj__commandsWaitingCommit = {
        25: [(2, lambda result, code: told.append((25, code)))],
        41: [(2, lambda result, code: told.append((41, code)))]}
    on_append(follower, {"type": "append_entries", "term": 3, "commit_index": 50,
                         "serialized": (b"last", False, True)})
    assert follower.raftCommitIndex == 40 and follower._raft_log.commit_index == 40
    assert told == [(25, FAIL_REASON.UNKNOWN_OUTCOME)]
    assert list(follower._SyncObj__commandsWaitingCommit) == [41], "a later index may still be applied"
