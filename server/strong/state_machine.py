"""The strong plane's state machine: `apply_entry(view, index, command)`.

Everything that decides what a committed log entry does lives in this file.
It is pure and deterministic: it reads no clock, no randomness and no local
configuration (time arrives inside the command), so every node, and every
replay, computes the same state and the same result bytes.

Rules it keeps:
- An entry at or below the view's last applied index was applied before (a
  journal replay after restart) and is skipped: it never applies twice.
- A command with a request id that is in the dedup table returns the stored
  result: a client retry never applies twice.
- Bad input is an error *result*; nothing here raises for bad input (an
  exception escaping pysyncobj's replicated method would wedge the node).
- An entry written by a newer version (a higher command format version, or
  an operation this version does not know) is not bad input: the members
  that know it applied it, so answering an error here would diverge this
  node. `CommandFromNewerVersion` is raised instead, and the node stops
  (see server/raft/member.py) until it is upgraded; nothing of the entry is kept.
- A command takes effect entirely or not at all.
- Apply is total: whatever a client sent, it ends in a result, never an
  exception. Every size it derives is bounded inside apply, identically on
  every node: stored keys by the key limit (which leaves room for the
  longest prefix the store adds), results by WRITE_RESULT_BYTES_MAX, the
  state by the space quota the command carries (see `_refused_for_space`).
- Results are kept for deduplication only where a retry must not apply
  twice: a read-only transaction and a lease keepalive (harmless to repeat)
  keep nothing, nor does a refusal for space (nothing was applied).
- The commands of a batch entry (KV and counter writes only) apply in order,
  each as if alone; they share the entry's index as their revision.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import counter_pb2, kv_pb2, raft_pb2, watch_pb2

from tandemkv.server.strong import auth_store, catalog, coordination, job_batches, jobs, reads, topics, validation
from tandemkv.server.strong.context import ApplyContext, CommandFailed, ResultBudget
from tandemkv.server.strong.coordination import COMPACTED_THROUGH_KEY
from tandemkv.server.strong.view import KvRecord, StoreView

COMMAND_FORMAT_VERSION = 1


class CommandFromNewerVersion(Exception):
    """A committed entry this version cannot apply; the node must stop."""


# Commands that may share a log entry (a CommandBatch). Every other command
# derives an identity from its entry's index (lease ids, fencing tokens) and
# needs an entry of its own.
BATCHABLE_OPS = frozenset(
    {"put", "delete", "txn", "counter_incr", "counter_set", "counter_cas", "counter_delete"}
)


def apply_entry(view: StoreView, index: int, command_bytes: bytes) -> bytes | None:
    """Applies the committed entry at `index`; returns the encoded
    CommandResult, or None for an entry that was already applied."""
    if index <= view.last_applied():
        return None
    view.set_last_applied(index)
    try:
        command = raft_pb2.Command.FromString(command_bytes)
    except DecodeError:
        return _error_result(index, raft_pb2.UNSUPPORTED_COMMAND, "undecodable command")
    _require_known(index, command)
    clock_before = view.log_clock_ms()
    context = ApplyContext(view, index, clock_before, command.space_quota_bytes)
    if command.WhichOneof("op") == "batch":
        result = _apply_batch(context, command.batch)
    else:
        result = _apply_command(context, command)
    if context.clock_ms != clock_before:
        view.set_log_clock_ms(context.clock_ms)
    view.dedup_collect(context.clock_ms - limits.DEDUP_RETENTION_MS,
                       limits.DEDUP_GC_PER_COMMAND_MAX * context.commands)
    _trim_history(context)
    topics.expire(context)
    jobs.sweep(context)
    return result


def _apply_batch(context: ApplyContext, batch: raft_pb2.CommandBatch) -> bytes:
    """Applies each command of a batch in order, each as if alone."""
    results = raft_pb2.CommandBatchResult()
    for command_bytes in batch.commands:
        try:
            command = raft_pb2.Command.FromString(command_bytes)
        except DecodeError:
            results.results.append(_error_result(context.index, raft_pb2.UNSUPPORTED_COMMAND,
                                                 "undecodable command in a batch"))
            continue
        _require_known(context.index, command)
        context.space_quota_bytes = max(context.space_quota_bytes, command.space_quota_bytes)
        kind = command.WhichOneof("op")
        if kind not in BATCHABLE_OPS:
            what = f"a {kind} command" if kind else "a command with no operation"
            results.results.append(_error_result(context.index, raft_pb2.UNSUPPORTED_COMMAND,
                                                 f"{what} cannot be batched"))
            continue
        results.results.append(_apply_command(context, command))
    return raft_pb2.CommandResult(revision=context.index, batch=results).SerializeToString()


def _require_known(index: int, command: raft_pb2.Command) -> None:
    """Raises CommandFromNewerVersion for a command from a newer version."""
    if command.format_version > COMMAND_FORMAT_VERSION:
        raise CommandFromNewerVersion(
            f"entry {index} has command format version {command.format_version}, and this node "
            f"knows versions up to {COMMAND_FORMAT_VERSION}: a newer TandemKV wrote it; upgrade "
            "this node (it stops rather than diverge from the members that applied it)")
    if command.WhichOneof("op") is None and len(UnknownFieldSet(command)):
        raise CommandFromNewerVersion(
            f"entry {index} holds an operation this version does not know: a newer TandemKV "
            "wrote it; upgrade this node (it stops rather than diverge from the members "
            "that applied it)")


def _apply_command(context: ApplyContext, command: raft_pb2.Command) -> bytes:
    """One command: the log clock, exactly-once, and its result."""
    view = context.view
    context.commands += 1
    context.clock_ms = clock_ms = max(context.clock_ms, command.ts_ms)
    if command.request_id:
        stored = view.dedup_get(command.request_id)
        if stored is not None:
            return _stored_answer(context, command, stored)
    refusal = _refused_for_space(context, command)
    if refusal is not None:
        return refusal.SerializeToString()
    result = _execute(context, command)
    encoded = result.SerializeToString()
    if command.request_id and _worth_keeping(command, result):
        view.dedup_put(command.request_id, clock_ms, encoded)
    return encoded


def _stored_answer(context: ApplyContext, command: raft_pb2.Command, stored: bytes) -> bytes:
    """The kept result of a retried request, unless the request id was first
    used by a different kind of request: then an error result (nothing
    applies), never an answer of the wrong type."""
    kept = raft_pb2.CommandResult.FromString(stored).WhichOneof("result")
    kind = command.WhichOneof("op")
    if kept in (kind, "error"):
        return stored
    return _error_result(context.index, raft_pb2.INVALID_ARGUMENT,
                         f"request_id was already used by a different request (a {kept}; "
                         f"this is a {kind}): send each request with a fresh request id")


# Operations allowed whatever the space used: they remove data, or rewrite
# a record in place, so an operator at the quota can still free space and
# lease holders keep their leases meanwhile.
_FREEING_OPS = frozenset({"noop", "delete", "counter_delete", "lease_tick", "lease_revoke",
                          "lease_keepalive", "unregister", "lock_release", "resign",
                          "drop_table",
                          # Jobs: a queue at the quota can still be drained (claim rewrites
                          # jobs in place; finished jobs are pruned by retention).
                          "job_claim", "job_complete", "job_fail", "job_settle", "job_cancel", "job_discard",
                          "job_cron_delete",
                          # A queue's limit: the limits table is bounded by its own limits
                          # (JOB_QUEUE_LIMITS_MAX records of a queue name and 4 bytes), and
                          # lifting or lowering a limit is how an operator drains a full store's
                          # queue faster, or shields what its jobs call meanwhile.
                          "job_queue_limit",
                          # The auth store is bounded by its own limits (AUTH_*_MAX), and
                          # revoking a user's access must work at the quota too.
                          "auth_change"})
_READ_OPS = frozenset({"range", "counter_get"})
# Transaction operations that add no data.
_TXN_FREEING_OPS = _READ_OPS | {"delete", "counter_delete"}


def _refused_for_space(context: ApplyContext, command: raft_pb2.Command):
    """The RESOURCE_EXHAUSTED result for a command that adds data while the
    state is at or over the quota the command carries, else None. The
    decision reads only the state and the command, so every node agrees;
    one command admitted just under the quota adds at most about
    COMMAND_SIZE_BYTES_MAX twice over (the value and its history event)
    plus its result, which the map's share beyond the quota absorbs."""
    quota = command.space_quota_bytes
    kind = command.WhichOneof("op")
    if not quota or kind in _FREEING_OPS:
        return None
    if kind == "txn" and all(op.WhichOneof("request") in _TXN_FREEING_OPS
                             for op in (*command.txn.success, *command.txn.failure)):
        return None
    used = context.view.space_used()
    if used < quota:
        return None
    result = raft_pb2.CommandResult(revision=context.index)
    result.error.code = raft_pb2.RESOURCE_EXHAUSTED
    result.error.message = (
        f"the store holds {used} bytes, at its space quota of {quota} bytes "
        f"(SPACE_QUOTA_PERCENT_OF_MAP={limits.SPACE_QUOTA_PERCENT_OF_MAP}% of map_size_bytes); "
        "delete data, or raise map_size_bytes on every member")
    return result


def _worth_keeping(command: raft_pb2.Command, result: raft_pb2.CommandResult) -> bool:
    """Whether a retry of this command must get this result back rather than
    run again (see the module's rules)."""
    kind = command.WhichOneof("op")
    if kind == "lease_keepalive":
        return False
    if kind == "txn" and result.WhichOneof("result") == "txn":
        return any(response.WhichOneof("response") not in _READ_OPS
                   for response in result.txn.responses)
    return True


def _trim_history(context: ApplyContext) -> None:
    """Keeps WATCH_HISTORY_REVISIONS_MAX revisions of events; records how far
    the history was compacted so watches from older revisions are told."""
    horizon = context.index - limits.WATCH_HISTORY_REVISIONS_MAX
    history_bytes_max = None
    if context.space_quota_bytes:
        history_bytes_max = context.space_quota_bytes * limits.WATCH_HISTORY_QUOTA_PERCENT // 100
    if horizon <= 0 and history_bytes_max is None:
        return
    count_max = context.events + limits.WATCH_HISTORY_TRIM_PER_COMMAND_MAX
    dropped_through = context.view.events_trim(horizon, count_max, history_bytes_max)
    if dropped_through:
        context.view.meta_put(COMPACTED_THROUGH_KEY, dropped_through.to_bytes(8, "big"))


def _error_result(index: int, code: int, message: str) -> bytes:
    error = raft_pb2.CommandError(code=code, message=message)
    return raft_pb2.CommandResult(revision=index, error=error).SerializeToString()


def _execute(context: ApplyContext, command: raft_pb2.Command) -> raft_pb2.CommandResult:
    result = raft_pb2.CommandResult(revision=context.index)
    if command.format_version != COMMAND_FORMAT_VERSION:
        result.error.code = raft_pb2.UNSUPPORTED_COMMAND
        result.error.message = f"command format version {command.format_version} is unknown"
        return result
    kind = command.WhichOneof("op")
    if kind is None:
        result.error.code = raft_pb2.UNSUPPORTED_COMMAND
        result.error.message = "command has no operation"
        return result
    if kind == "noop":
        result.noop.SetInParent()
        return result
    request = getattr(command, kind)
    context.budget = ResultBudget(limits.WRITE_RESULT_BYTES_MAX)
    try:
        validation.check_request(request)
        response = _OPS[type(request)](context, request)
    except InvalidArgument as error:
        result.error.code = raft_pb2.INVALID_ARGUMENT
        result.error.message = error.message
        return result
    except CommandFailed as failure:
        result.error.CopyFrom(failure.error)
        return result
    getattr(result, kind).CopyFrom(response)
    return result


def _kv_header(index: int) -> kv_pb2.ResponseHeader:
    return kv_pb2.ResponseHeader(revision=index)


def _counter_header(index: int) -> counter_pb2.CounterHeader:
    return counter_pb2.CounterHeader(revision=index)


def _put(context: ApplyContext, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
    view, index = context.view, context.index
    response = kv_pb2.PutResponse(header=_kv_header(index))
    if request.lease:
        coordination.require_attachable(view, request.lease)
    previous = view.kv_get(request.key)
    if previous is None:
        record = KvRecord(request.value, index, index, 1, request.lease)
    else:
        record = KvRecord(request.value, previous.create_revision, index, previous.version + 1,
                          request.lease)
        if request.prev_kv:
            response.has_prev_kv = True
            response.prev_kv.CopyFrom(reads.to_key_value(request.key, previous))
            context.budget.spend(response.prev_kv.ByteSize(), "the put's prev_kv")
        if previous.lease and previous.lease != request.lease:
            view.lease_detach(previous.lease, coordination.KEY_ITEM + request.key)
    if request.lease:
        view.lease_attach(request.lease, coordination.KEY_ITEM + request.key)
    view.kv_put(request.key, record)
    prev_kv = None if previous is None else reads.to_key_value(request.key, previous)
    context.emit(watch_pb2.Event.PUT, reads.to_key_value(request.key, record), prev_kv)
    return response


def _delete(context: ApplyContext, request: kv_pb2.DeleteRequest) -> kv_pb2.DeleteResponse:
    view, index = context.view, context.index
    response = kv_pb2.DeleteResponse(header=_kv_header(index))
    start, end = reads.key_bounds(request.range)
    victims = []
    for key, record in view.kv_scan(start, end):
        if len(victims) >= limits.DELETE_RANGE_KEYS_MAX:
            raise CommandFailed(
                raft_pb2.INVALID_ARGUMENT,
                f"delete matches more than DELETE_RANGE_KEYS_MAX="
                f"{limits.DELETE_RANGE_KEYS_MAX} keys; delete in smaller ranges",
            )
        victims.append((key, record))
    if request.prev_kv:
        for key, record in victims:
            response.prev_kvs.append(reads.to_key_value(key, record))
            context.budget.spend(response.prev_kvs[-1].ByteSize(), "the delete's prev_kvs")
    for key, record in victims:
        coordination.delete_key(context, key, record, watch_pb2.Event.DELETE)
    response.deleted = len(victims)
    return response


def _counter_value(view: StoreView, name: bytes) -> int:
    value = view.counter_get(name)
    return 0 if value is None else value


def _counter_incr(
    context: ApplyContext, request: counter_pb2.CounterIncrRequest
) -> counter_pb2.CounterIncrResponse:
    view, index = context.view, context.index
    value = _counter_value(view, request.name) + request.delta
    if not validation.INT64_MIN <= value <= validation.INT64_MAX:
        raise CommandFailed(
            raft_pb2.OUT_OF_RANGE,
            f"incrementing counter {request.name!r} by {request.delta} leaves int64; "
            "the counter is unchanged",
        )
    view.counter_put(request.name, value)
    return counter_pb2.CounterIncrResponse(header=_counter_header(index), value=value)


def _counter_set(
    context: ApplyContext, request: counter_pb2.CounterSetRequest
) -> counter_pb2.CounterSetResponse:
    view, index = context.view, context.index
    previous = _counter_value(view, request.name)
    view.counter_put(request.name, request.value)
    return counter_pb2.CounterSetResponse(header=_counter_header(index), prev_value=previous)


def _counter_cas(
    context: ApplyContext, request: counter_pb2.CounterCompareAndSetRequest
) -> counter_pb2.CounterCompareAndSetResponse:
    view, index = context.view, context.index
    current = _counter_value(view, request.name)
    succeeded = current == request.expected
    if succeeded:
        view.counter_put(request.name, request.value)
        current = request.value
    return counter_pb2.CounterCompareAndSetResponse(
        header=_counter_header(index), succeeded=succeeded, value=current
    )


def _counter_delete(
    context: ApplyContext, request: counter_pb2.CounterDeleteRequest
) -> counter_pb2.CounterDeleteResponse:
    view, index = context.view, context.index
    deleted = view.counter_delete(request.name)
    return counter_pb2.CounterDeleteResponse(header=_counter_header(index), deleted=deleted)


def _compare_holds(view: StoreView, compare: kv_pb2.Compare) -> bool:
    target = compare.target
    if target == kv_pb2.Compare.COUNTER:
        actual, expected = _counter_value(view, compare.key), compare.counter
    else:
        record = view.kv_get(compare.key)
        if target == kv_pb2.Compare.VALUE:
            if record is None:
                return False
            actual, expected = record.value, compare.value
        else:
            field = {
                kv_pb2.Compare.VERSION: "version",
                kv_pb2.Compare.CREATE_REVISION: "create_revision",
                kv_pb2.Compare.MOD_REVISION: "mod_revision",
            }[target]
            actual = 0 if record is None else getattr(record, field)
            expected = getattr(compare, field)
    result = compare.result
    if result == kv_pb2.Compare.EQUAL:
        return actual == expected
    if result == kv_pb2.Compare.NOT_EQUAL:
        return actual != expected
    if result == kv_pb2.Compare.GREATER:
        return actual > expected
    return actual < expected


def _txn(context: ApplyContext, request: kv_pb2.TxnRequest) -> kv_pb2.TxnResponse:
    # Single operations check everything before their writes; only a txn can
    # fail after writing, so only a txn pays for an atomic scope.
    events_before = context.events
    try:
        with context.view.atomic():
            return _txn_branch(context, request)
    except CommandFailed:
        context.events = events_before
        raise


def _txn_branch(context: ApplyContext, request: kv_pb2.TxnRequest) -> kv_pb2.TxnResponse:
    view, index = context.view, context.index
    succeeded = all(_compare_holds(view, compare) for compare in request.compare)
    response = kv_pb2.TxnResponse(header=_kv_header(index), succeeded=succeeded)
    for op in request.success if succeeded else request.failure:
        kind = op.WhichOneof("request")
        sub_request = getattr(op, kind)
        if kind == "range":
            sub_response = reads.read_range(view, sub_request, index,
                                            size_bytes_max=context.budget.left_bytes)
        elif kind == "counter_get":
            sub_response = reads.read_counter(view, sub_request, index)
        else:
            sub_response = _OPS[type(sub_request)](context, sub_request)
        if kind in _READ_OPS:
            context.budget.spend(sub_response.ByteSize(), f"a {kind} in the transaction")
        getattr(response.responses.add(), kind).CopyFrom(sub_response)
    return response


_OPS = {
    kv_pb2.PutRequest: _put,
    kv_pb2.DeleteRequest: _delete,
    kv_pb2.TxnRequest: _txn,
    counter_pb2.CounterIncrRequest: _counter_incr,
    counter_pb2.CounterSetRequest: _counter_set,
    counter_pb2.CounterCompareAndSetRequest: _counter_cas,
    counter_pb2.CounterDeleteRequest: _counter_delete,
    **coordination.OPS,
    **catalog.OPS,
    **topics.OPS,
    **jobs.OPS,
    **job_batches.OPS,
    **auth_store.OPS,
}
