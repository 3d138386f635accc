"""The pysyncobj internals this package relies on, and the check that fails
loudly (`check_pinned_internals()`, run when member.py is imported) if the
installed pysyncobj is not the one they were read from."""

from __future__ import annotations

import pysyncobj.syncobj as _syncobj_module
import pysyncobj.tcp_connection
from pysyncobj import SyncObj
from pysyncobj.config import FAIL_REASON
from pysyncobj.serializer import Serializer
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from tandemkv.server.raft import port_guard as raft_port_guard
from tandemkv.server.raft.contract import Outcome
from tandemkv.server.raft.progress import INCOMING_SNAPSHOT_SUFFIX

PINNED_PYSYNCOBJ_VERSION = "0.3.17"

_REQUIRED_INTERNALS = (
    "_SyncObj__applyLogEntries",
    "_SyncObj__deleteEntriesFrom",
    "_SyncObj__sendAppendEntries",
    "_SyncObj__raftState",
    "_SyncObj__raftNextIndex",
    "_SyncObj__raftMatchIndex",
    "_SyncObj__raftCommitIndex",
    "_SyncObj__leaderCommitIndex",
    "_SyncObj__commandsWaitingCommit",
    "_SyncObj__onMessageReceived",
    "_SyncObj__onNodeDisconnected",
    "_SyncObj__serializer",
    "_checkCommandsToApply",
    "_applyCommand",
    "transferLeadership",
    "_SyncObj__changeCluster",
    "_SyncObj__doChangeCluster",
    "_SyncObj__doApplyCommand",
    "_SyncObj__getCurrentLogIndex",
    "_SyncObj__otherNodes",
    "_SyncObj__readonlyNodes",
    "_SyncObj__connectedNodes",
    "_SyncObj__selfNode",
    "_SyncObj__raftElectionDeadline",
    "_SyncObj__lastResponseTime",
    "_SyncObj__updateClusterConfiguration",
    "_onTick",
    "raftLastApplied",
    "raftCommitIndex",
    "raftCurrentTerm",
)
_INSTANCE_ATTRIBUTES = frozenset({"_SyncObj__raftState", "_SyncObj__raftNextIndex",
                                  "_SyncObj__raftMatchIndex", "_SyncObj__raftCommitIndex",
                                  "_SyncObj__leaderCommitIndex", "_SyncObj__commandsWaitingCommit",
                                  "_SyncObj__serializer",
                                  "_SyncObj__otherNodes", "_SyncObj__readonlyNodes",
                                  "_SyncObj__connectedNodes", "_SyncObj__selfNode",
                                  "_SyncObj__raftElectionDeadline", "_SyncObj__lastResponseTime"})


def check_pinned_internals() -> None:
    """Raises if pysyncobj is not the version this package was written for."""
    if PYSYNCOBJ_VERSION != PINNED_PYSYNCOBJ_VERSION:
        raise RuntimeError(
            f"pysyncobj {PYSYNCOBJ_VERSION} is installed; TandemKV reaches into the "
            f"internals of {PINNED_PYSYNCOBJ_VERSION} only: install pysyncobj=="
            f"{PINNED_PYSYNCOBJ_VERSION}"
        )
    for name in _REQUIRED_INTERNALS:
        if name not in _INSTANCE_ATTRIBUTES and not hasattr(SyncObj, name):
            raise RuntimeError(f"pysyncobj.SyncObj has no {name}; the pinned internals changed")
    _check_journal_creation()
    _check_failure_codes()
    _check_frame_reading()
    if INCOMING_SNAPSHOT_SUFFIX not in Serializer.setTransmissionData.__code__.co_consts:
        raise RuntimeError("pysyncobj receives snapshots under another name; the pinned internals changed")


def _check_journal_creation() -> None:
    """member.py runs SyncObj.__init__ with its own `createJournal` in scope:
    the constructor must build its journal through that global name, and
    must need no closure (a copy of its code runs with other globals)."""
    init = SyncObj.__init__
    if ("createJournal" not in init.__code__.co_names or init.__closure__ is not None
            or not callable(getattr(_syncobj_module, "createJournal", None))):
        raise RuntimeError("pysyncobj.SyncObj builds its journal differently; the pinned "
                           "internals changed")


def _check_failure_codes() -> None:
    """Each of pysyncobj's failure codes has an Outcome of the same name."""
    codes = {name for name in vars(FAIL_REASON) if not name.startswith("_")}
    if codes != {outcome.name for outcome in Outcome}:
        raise RuntimeError(f"pysyncobj's failure codes are now {sorted(codes)}; the pinned "
                           "internals changed")


def _check_frame_reading() -> None:
    """port_guard replaces TcpConnection's read loop: the loop must be what
    processConnection calls, and the frame header 'i'."""
    guard = raft_port_guard
    for name in (guard.READ_LOOP, guard.READ_ONE, "_TcpConnection__processParseMessage",
                 "_TcpConnection__processConnection", "disconnect"):
        if not callable(getattr(TcpConnection, name, None)):
            raise RuntimeError(f"pysyncobj's TcpConnection has no {name}; the pinned internals changed")
    calls = TcpConnection._TcpConnection__processConnection.__code__.co_names
    parse = TcpConnection._TcpConnection__processParseMessage.__code__
    sends = TcpConnection.send.__code__.co_consts
    fields = TcpConnection.__init__.__code__.co_names
    if (guard.READ_LOOP not in calls or guard.FRAME_HEADER.format not in parse.co_consts
            or guard.FRAME_HEADER.format not in sends
            or not {guard.READ_BUFFER, guard.LAST_READ_TIME, guard.SOCKET} <= set(fields)
            or not callable(getattr(pysyncobj.tcp_connection, "monotonicTime", None))):
        raise RuntimeError("pysyncobj's TcpConnection frames or reads differently; the pinned "
                           "internals changed")
