"""Checks a request against the named limits in `tandemkv.limits`.

Called at the edge (the node, before anything is proposed) and again inside
the state machine, which turns a failure into an error result instead of an
exception. Raises `InvalidArgument` naming the limit and what to fix.
"""

from __future__ import annotations

from google.protobuf.message import Message

from tandemkv import limits
from tandemkv.errors import InvalidArgument
from tandemkv.v1 import coordination_pb2, counter_pb2, crdt_pb2, kv_pb2, lease_pb2, raft_pb2, topics_pb2, watch_pb2

from tandemkv.server.strong import auth_store, jobs, topics

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_CONSISTENCY_VALUES = frozenset(kv_pb2.ReadConsistency.values())
_COMPARE_RESULTS = frozenset(kv_pb2.Compare.Result.values())
_COMPARE_TARGETS = frozenset(kv_pb2.Compare.Target.values())


def check_key(key: bytes, what: str = "key") -> None:
    if not key:
        raise InvalidArgument(f"{what} must not be empty", limit="KEY_SIZE_BYTES_MAX")
    if len(key) > limits.KEY_SIZE_BYTES_MAX:
        raise InvalidArgument(
            f"{what} is {len(key)} bytes; the limit KEY_SIZE_BYTES_MAX is "
            f"{limits.KEY_SIZE_BYTES_MAX} bytes",
            limit="KEY_SIZE_BYTES_MAX",
        )


def check_value(value: bytes) -> None:
    if len(value) > limits.VALUE_SIZE_BYTES_MAX:
        raise InvalidArgument(
            f"value is {len(value)} bytes; the limit VALUE_SIZE_BYTES_MAX is "
            f"{limits.VALUE_SIZE_BYTES_MAX} bytes",
            limit="VALUE_SIZE_BYTES_MAX",
        )


def check_request_id(request_id: bytes) -> None:
    if request_id and len(request_id) != limits.REQUEST_ID_BYTES:
        raise InvalidArgument(
            f"request_id is {len(request_id)} bytes; it must be empty or exactly "
            f"REQUEST_ID_BYTES={limits.REQUEST_ID_BYTES} random bytes",
            limit="REQUEST_ID_BYTES",
        )


def check_consistency(consistency: int) -> None:
    if consistency not in _CONSISTENCY_VALUES:
        raise InvalidArgument(
            f"unknown consistency {consistency}; use 0 (LINEARIZABLE) or 1 (STALE)"
        )


def check_key_range(key_range: kv_pb2.KeyRange) -> None:
    if key_range.prefix:
        if len(key_range.key) > limits.KEY_SIZE_BYTES_MAX:
            check_key(key_range.key, "prefix")
        if key_range.range_end:
            raise InvalidArgument("set either prefix or range_end, not both")
        return
    check_key(key_range.key)
    if key_range.range_end:
        check_key(key_range.range_end, "range_end")


def check_range(request: kv_pb2.RangeRequest) -> None:
    check_key_range(request.range)
    check_consistency(request.consistency)


def _check_put(request: kv_pb2.PutRequest) -> None:
    check_key(request.key)
    check_value(request.value)


def _check_delete(request: kv_pb2.DeleteRequest) -> None:
    check_key_range(request.range)


def _check_compare(compare: kv_pb2.Compare) -> None:
    if compare.result not in _COMPARE_RESULTS:
        raise InvalidArgument(f"unknown compare result {compare.result}")
    if compare.target not in _COMPARE_TARGETS:
        raise InvalidArgument(f"unknown compare target {compare.target}")
    check_key(compare.key, "compare key")
    if compare.target == kv_pb2.Compare.VALUE:
        check_value(compare.value)


def _check_txn(request: kv_pb2.TxnRequest) -> None:
    if len(request.compare) > limits.TXN_COMPARES_MAX:
        raise InvalidArgument(
            f"{len(request.compare)} compares; the limit TXN_COMPARES_MAX is "
            f"{limits.TXN_COMPARES_MAX}",
            limit="TXN_COMPARES_MAX",
        )
    ops = len(request.success) + len(request.failure)
    if ops > limits.TXN_OPS_MAX:
        raise InvalidArgument(
            f"{ops} ops in both branches; the limit TXN_OPS_MAX is {limits.TXN_OPS_MAX}",
            limit="TXN_OPS_MAX",
        )
    for compare in request.compare:
        _check_compare(compare)
    for op in (*request.success, *request.failure):
        kind = op.WhichOneof("request")
        if kind is None:
            raise InvalidArgument("a txn op sets no request")
        check_request(getattr(op, kind))


def _check_counter_name(request: Message) -> None:
    check_key(request.name, "counter name")


def _check_counter_get(request: counter_pb2.CounterGetRequest) -> None:
    check_key(request.name, "counter name")
    check_consistency(request.consistency)


def _check_ttl(request: lease_pb2.LeaseGrantRequest) -> None:
    if not limits.LEASE_TTL_MS_MIN <= request.ttl_ms <= limits.LEASE_TTL_MS_MAX:
        raise InvalidArgument(
            f"ttl_ms {request.ttl_ms} is outside LEASE_TTL_MS_MIN={limits.LEASE_TTL_MS_MIN} .. "
            f"LEASE_TTL_MS_MAX={limits.LEASE_TTL_MS_MAX}", limit="LEASE_TTL_MS_MIN")


def _check_lease_id(lease: int) -> None:
    if lease <= 0:
        raise InvalidArgument("a lease id is required (grant one first)")


def _check_wait(wait_ms: int) -> None:
    if not 0 <= wait_ms <= limits.CLAIM_WAIT_MS_MAX:
        raise InvalidArgument(f"wait_ms {wait_ms} is outside 0 .. CLAIM_WAIT_MS_MAX="
                              f"{limits.CLAIM_WAIT_MS_MAX}", limit="CLAIM_WAIT_MS_MAX")


def _check_claim(request: Message, name_field: str = "name") -> None:
    check_key(getattr(request, name_field), name_field)
    if hasattr(request, "value"):
        check_value(request.value)
    if hasattr(request, "lease"):
        _check_lease_id(request.lease)
    if hasattr(request, "wait_ms"):
        _check_wait(request.wait_ms)


def _check_registry_list(request: coordination_pb2.RegistryListRequest) -> None:
    if len(request.prefix) > limits.KEY_SIZE_BYTES_MAX:
        check_key(request.prefix, "prefix")
    check_consistency(request.consistency)


def _check_watch(request: watch_pb2.WatchRequest) -> None:
    check_key_range(request.range)
    if request.progress_interval_ms < 0:
        raise InvalidArgument("progress_interval_ms must not be negative")


def check_table_name(name: str) -> None:
    size = len(name.encode())
    if not 0 < size <= limits.CRDT_TABLE_NAME_BYTES_MAX:
        raise InvalidArgument(
            f"table name is {size} bytes; it must be 1 .. CRDT_TABLE_NAME_BYTES_MAX="
            f"{limits.CRDT_TABLE_NAME_BYTES_MAX} bytes", limit="CRDT_TABLE_NAME_BYTES_MAX")


def _check_create_table(request: crdt_pb2.CreateTableRequest) -> None:
    check_table_name(request.name)
    known = set(crdt_pb2.CrdtType.values()) - {crdt_pb2.CRDT_TYPE_UNSPECIFIED}
    if request.type not in known:
        raise InvalidArgument(f"unknown table type {request.type}; use one of "
                              f"{sorted(crdt_pb2.CrdtType.Name(t) for t in known)}")


_CHECKS = {
    kv_pb2.PutRequest: _check_put,
    kv_pb2.GetRequest: lambda r: (check_key(r.key), check_consistency(r.consistency)),
    kv_pb2.RangeRequest: check_range,
    kv_pb2.DeleteRequest: _check_delete,
    kv_pb2.TxnRequest: _check_txn,
    counter_pb2.CounterIncrRequest: _check_counter_name,
    counter_pb2.CounterGetRequest: _check_counter_get,
    counter_pb2.CounterSetRequest: _check_counter_name,
    counter_pb2.CounterCompareAndSetRequest: _check_counter_name,
    counter_pb2.CounterDeleteRequest: _check_counter_name,
    raft_pb2.LeaseTick: lambda r: None,
    lease_pb2.LeaseGrantRequest: _check_ttl,
    lease_pb2.LeaseRevokeRequest: lambda r: _check_lease_id(r.id),
    lease_pb2.LeaseKeepAliveRequest: lambda r: _check_lease_id(r.id),
    lease_pb2.LeaseTimeToLiveRequest: lambda r: (_check_lease_id(r.id),
                                                 check_consistency(r.consistency)),
    lease_pb2.LeaseListRequest: lambda r: check_consistency(r.consistency),
    coordination_pb2.RegisterRequest: _check_claim,
    coordination_pb2.UnregisterRequest: _check_claim,
    coordination_pb2.WhereisRequest: lambda r: (check_key(r.name, "name"),
                                                check_consistency(r.consistency)),
    coordination_pb2.RegistryListRequest: _check_registry_list,
    coordination_pb2.LockAcquireRequest: _check_claim,
    coordination_pb2.LockReleaseRequest: _check_claim,
    coordination_pb2.CampaignRequest: lambda r: _check_claim(r, "election"),
    coordination_pb2.ProclaimRequest: lambda r: _check_claim(r, "election"),
    coordination_pb2.ResignRequest: lambda r: _check_claim(r, "election"),
    coordination_pb2.LeaderRequest: lambda r: (check_key(r.election, "election"),
                                               check_consistency(r.consistency)),
    watch_pb2.WatchRequest: _check_watch,
    crdt_pb2.CreateTableRequest: _check_create_table,
    crdt_pb2.DropTableRequest: lambda r: check_table_name(r.name),
    crdt_pb2.ListTablesRequest: lambda r: check_consistency(r.consistency),
    topics_pb2.TopicPublishRequest: topics.check_publish,
    topics_pb2.TopicReadRequest: lambda r: (topics.check_read(r), check_consistency(r.consistency)),
    **jobs.CHECKS,
    **auth_store.CHECKS,
}


def check_request(request: Message) -> None:
    """Raises InvalidArgument if `request` breaks a limit or is malformed."""
    check = _CHECKS.get(type(request))
    if check is None:
        raise InvalidArgument(f"unsupported request type {type(request).__name__}")
    check(request)
    if hasattr(request, "request_id"):
        check_request_id(request.request_id)
