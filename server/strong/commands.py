"""Turning API requests into Raft log commands and command results back into
API responses or typed errors. Pure; no Raft, no storage."""

from __future__ import annotations

from google.protobuf.message import Message

from tandemkv.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, OutOfRange,
                             ResourceExhausted, TandemKVError)
from tandemkv.v1 import coordination_pb2, counter_pb2, crdt_pb2, jobs_pb2, kv_pb2, lease_pb2, raft_pb2, topics_pb2

from tandemkv.server.strong.state_machine import COMMAND_FORMAT_VERSION

# Request type -> the Command/CommandResult oneof field that carries it.
WRITE_FIELDS: dict[type[Message], str] = {
    kv_pb2.PutRequest: "put",
    kv_pb2.DeleteRequest: "delete",
    kv_pb2.TxnRequest: "txn",
    counter_pb2.CounterIncrRequest: "counter_incr",
    counter_pb2.CounterSetRequest: "counter_set",
    counter_pb2.CounterCompareAndSetRequest: "counter_cas",
    counter_pb2.CounterDeleteRequest: "counter_delete",
    lease_pb2.LeaseGrantRequest: "lease_grant",
    lease_pb2.LeaseRevokeRequest: "lease_revoke",
    lease_pb2.LeaseKeepAliveRequest: "lease_keepalive",
    coordination_pb2.RegisterRequest: "register",
    coordination_pb2.UnregisterRequest: "unregister",
    coordination_pb2.LockAcquireRequest: "lock_acquire",
    coordination_pb2.LockReleaseRequest: "lock_release",
    coordination_pb2.CampaignRequest: "campaign",
    coordination_pb2.ProclaimRequest: "proclaim",
    coordination_pb2.ResignRequest: "resign",
    crdt_pb2.CreateTableRequest: "create_table",
    crdt_pb2.DropTableRequest: "drop_table",
    topics_pb2.TopicPublishRequest: "topic_publish",
    jobs_pb2.JobEnqueueRequest: "job_enqueue",
    jobs_pb2.JobClaimRequest: "job_claim",
    jobs_pb2.JobCompleteRequest: "job_complete",
    jobs_pb2.JobFailRequest: "job_fail",
    jobs_pb2.JobEnqueueManyRequest: "job_enqueue_many",
    jobs_pb2.JobSettleRequest: "job_settle",
    jobs_pb2.JobRetryRequest: "job_retry",
    jobs_pb2.JobCancelRequest: "job_cancel",
    jobs_pb2.JobDiscardRequest: "job_discard",
    jobs_pb2.JobCronPutRequest: "job_cron_put",
    jobs_pb2.JobCronDeleteRequest: "job_cron_delete",
    jobs_pb2.JobQueueLimitRequest: "job_queue_limit",
    raft_pb2.AuthChange: "auth_change",
}

_ERRORS: dict[int, type[TandemKVError]] = {
    raft_pb2.INVALID_ARGUMENT: InvalidArgument,
    raft_pb2.FAILED_PRECONDITION: FailedPrecondition,
    raft_pb2.OUT_OF_RANGE: OutOfRange,
    raft_pb2.UNSUPPORTED_COMMAND: FailedPrecondition,
    raft_pb2.RESOURCE_EXHAUSTED: ResourceExhausted,
    raft_pb2.ALREADY_EXISTS: AlreadyExists,
    raft_pb2.NOT_FOUND: NotFound,
}


def encode_write(request: Message, request_id: bytes, ts_ms: int,
                 space_quota_bytes: int = 0) -> bytes:
    command = raft_pb2.Command(format_version=COMMAND_FORMAT_VERSION, request_id=request_id,
                               ts_ms=ts_ms, space_quota_bytes=space_quota_bytes)
    getattr(command, WRITE_FIELDS[type(request)]).CopyFrom(request)
    return command.SerializeToString()


def encode_lease_tick(proposer: str, elapsed_ms: int, ts_ms: int) -> bytes:
    command = raft_pb2.Command(format_version=COMMAND_FORMAT_VERSION, ts_ms=ts_ms)
    command.lease_tick.proposer = proposer
    command.lease_tick.elapsed_ms = elapsed_ms
    return command.SerializeToString()


def encode_noop(ts_ms: int) -> bytes:
    command = raft_pb2.Command(format_version=COMMAND_FORMAT_VERSION, ts_ms=ts_ms)
    command.noop.SetInParent()
    return command.SerializeToString()


def decode_result(result_bytes: bytes) -> Message:
    """The response message inside a CommandResult; raises the typed error
    when the state machine refused the command."""
    result = raft_pb2.CommandResult.FromString(result_bytes)
    kind = result.WhichOneof("result")
    if kind == "error":
        raise _ERRORS.get(result.error.code, FailedPrecondition)(result.error.message)
    assert kind is not None, "a command result always carries a result"
    return getattr(result, kind)
