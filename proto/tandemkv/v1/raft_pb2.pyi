from tandemkv.v1 import kv_pb2 as _kv_pb2
from tandemkv.v1 import counter_pb2 as _counter_pb2
from tandemkv.v1 import lease_pb2 as _lease_pb2
from tandemkv.v1 import coordination_pb2 as _coordination_pb2
from tandemkv.v1 import crdt_pb2 as _crdt_pb2
from tandemkv.v1 import topics_pb2 as _topics_pb2
from tandemkv.v1 import jobs_pb2 as _jobs_pb2
from tandemkv.v1 import auth_pb2 as _auth_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    INVALID_ARGUMENT: _ClassVar[ErrorCode]
    FAILED_PRECONDITION: _ClassVar[ErrorCode]
    OUT_OF_RANGE: _ClassVar[ErrorCode]
    UNSUPPORTED_COMMAND: _ClassVar[ErrorCode]
    RESOURCE_EXHAUSTED: _ClassVar[ErrorCode]
    ALREADY_EXISTS: _ClassVar[ErrorCode]
    NOT_FOUND: _ClassVar[ErrorCode]
ERROR_CODE_UNSPECIFIED: ErrorCode
INVALID_ARGUMENT: ErrorCode
FAILED_PRECONDITION: ErrorCode
OUT_OF_RANGE: ErrorCode
UNSUPPORTED_COMMAND: ErrorCode
RESOURCE_EXHAUSTED: ErrorCode
ALREADY_EXISTS: ErrorCode
NOT_FOUND: ErrorCode

class Noop(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaseTick(_message.Message):
    __slots__ = ("proposer", "elapsed_ms")
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    proposer: str
    elapsed_ms: int
    def __init__(self, proposer: _Optional[str] = ..., elapsed_ms: _Optional[int] = ...) -> None: ...

class LeaseTickResult(_message.Message):
    __slots__ = ("lease_clock_ms", "expired")
    LEASE_CLOCK_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    lease_clock_ms: int
    expired: int
    def __init__(self, lease_clock_ms: _Optional[int] = ..., expired: _Optional[int] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("format_version", "request_id", "ts_ms", "space_quota_bytes", "noop", "put", "delete", "txn", "counter_incr", "counter_set", "counter_cas", "counter_delete", "lease_tick", "lease_grant", "lease_revoke", "lease_keepalive", "register", "unregister", "lock_acquire", "lock_release", "campaign", "proclaim", "resign", "create_table", "drop_table", "batch", "topic_publish", "job_enqueue", "job_claim", "job_complete", "job_fail", "job_retry", "job_cancel", "job_discard", "job_cron_put", "job_cron_delete", "auth_change", "job_enqueue_many", "job_settle", "job_queue_limit")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    SPACE_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    NOOP_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    COUNTER_INCR_FIELD_NUMBER: _ClassVar[int]
    COUNTER_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_CAS_FIELD_NUMBER: _ClassVar[int]
    COUNTER_DELETE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TICK_FIELD_NUMBER: _ClassVar[int]
    LEASE_GRANT_FIELD_NUMBER: _ClassVar[int]
    LEASE_REVOKE_FIELD_NUMBER: _ClassVar[int]
    LEASE_KEEPALIVE_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_FIELD_NUMBER: _ClassVar[int]
    LOCK_ACQUIRE_FIELD_NUMBER: _ClassVar[int]
    LOCK_RELEASE_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    PROCLAIM_FIELD_NUMBER: _ClassVar[int]
    RESIGN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TABLE_FIELD_NUMBER: _ClassVar[int]
    DROP_TABLE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    TOPIC_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    JOB_ENQUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_CLAIM_FIELD_NUMBER: _ClassVar[int]
    JOB_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    JOB_FAIL_FIELD_NUMBER: _ClassVar[int]
    JOB_RETRY_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCEL_FIELD_NUMBER: _ClassVar[int]
    JOB_DISCARD_FIELD_NUMBER: _ClassVar[int]
    JOB_CRON_PUT_FIELD_NUMBER: _ClassVar[int]
    JOB_CRON_DELETE_FIELD_NUMBER: _ClassVar[int]
    AUTH_CHANGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ENQUEUE_MANY_FIELD_NUMBER: _ClassVar[int]
    JOB_SETTLE_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    request_id: bytes
    ts_ms: int
    space_quota_bytes: int
    noop: Noop
    put: _kv_pb2.PutRequest
    delete: _kv_pb2.DeleteRequest
    txn: _kv_pb2.TxnRequest
    counter_incr: _counter_pb2.CounterIncrRequest
    counter_set: _counter_pb2.CounterSetRequest
    counter_cas: _counter_pb2.CounterCompareAndSetRequest
    counter_delete: _counter_pb2.CounterDeleteRequest
    lease_tick: LeaseTick
    lease_grant: _lease_pb2.LeaseGrantRequest
    lease_revoke: _lease_pb2.LeaseRevokeRequest
    lease_keepalive: _lease_pb2.LeaseKeepAliveRequest
    register: _coordination_pb2.RegisterRequest
    unregister: _coordination_pb2.UnregisterRequest
    lock_acquire: _coordination_pb2.LockAcquireRequest
    lock_release: _coordination_pb2.LockReleaseRequest
    campaign: _coordination_pb2.CampaignRequest
    proclaim: _coordination_pb2.ProclaimRequest
    resign: _coordination_pb2.ResignRequest
    create_table: _crdt_pb2.CreateTableRequest
    drop_table: _crdt_pb2.DropTableRequest
    batch: CommandBatch
    topic_publish: _topics_pb2.TopicPublishRequest
    job_enqueue: _jobs_pb2.JobEnqueueRequest
    job_claim: _jobs_pb2.JobClaimRequest
    job_complete: _jobs_pb2.JobCompleteRequest
    job_fail: _jobs_pb2.JobFailRequest
    job_retry: _jobs_pb2.JobRetryRequest
    job_cancel: _jobs_pb2.JobCancelRequest
    job_discard: _jobs_pb2.JobDiscardRequest
    job_cron_put: _jobs_pb2.JobCronPutRequest
    job_cron_delete: _jobs_pb2.JobCronDeleteRequest
    auth_change: AuthChange
    job_enqueue_many: _jobs_pb2.JobEnqueueManyRequest
    job_settle: _jobs_pb2.JobSettleRequest
    job_queue_limit: _jobs_pb2.JobQueueLimitRequest
    def __init__(self, format_version: _Optional[int] = ..., request_id: _Optional[bytes] = ..., ts_ms: _Optional[int] = ..., space_quota_bytes: _Optional[int] = ..., noop: _Optional[_Union[Noop, _Mapping]] = ..., put: _Optional[_Union[_kv_pb2.PutRequest, _Mapping]] = ..., delete: _Optional[_Union[_kv_pb2.DeleteRequest, _Mapping]] = ..., txn: _Optional[_Union[_kv_pb2.TxnRequest, _Mapping]] = ..., counter_incr: _Optional[_Union[_counter_pb2.CounterIncrRequest, _Mapping]] = ..., counter_set: _Optional[_Union[_counter_pb2.CounterSetRequest, _Mapping]] = ..., counter_cas: _Optional[_Union[_counter_pb2.CounterCompareAndSetRequest, _Mapping]] = ..., counter_delete: _Optional[_Union[_counter_pb2.CounterDeleteRequest, _Mapping]] = ..., lease_tick: _Optional[_Union[LeaseTick, _Mapping]] = ..., lease_grant: _Optional[_Union[_lease_pb2.LeaseGrantRequest, _Mapping]] = ..., lease_revoke: _Optional[_Union[_lease_pb2.LeaseRevokeRequest, _Mapping]] = ..., lease_keepalive: _Optional[_Union[_lease_pb2.LeaseKeepAliveRequest, _Mapping]] = ..., register: _Optional[_Union[_coordination_pb2.RegisterRequest, _Mapping]] = ..., unregister: _Optional[_Union[_coordination_pb2.UnregisterRequest, _Mapping]] = ..., lock_acquire: _Optional[_Union[_coordination_pb2.LockAcquireRequest, _Mapping]] = ..., lock_release: _Optional[_Union[_coordination_pb2.LockReleaseRequest, _Mapping]] = ..., campaign: _Optional[_Union[_coordination_pb2.CampaignRequest, _Mapping]] = ..., proclaim: _Optional[_Union[_coordination_pb2.ProclaimRequest, _Mapping]] = ..., resign: _Optional[_Union[_coordination_pb2.ResignRequest, _Mapping]] = ..., create_table: _Optional[_Union[_crdt_pb2.CreateTableRequest, _Mapping]] = ..., drop_table: _Optional[_Union[_crdt_pb2.DropTableRequest, _Mapping]] = ..., batch: _Optional[_Union[CommandBatch, _Mapping]] = ..., topic_publish: _Optional[_Union[_topics_pb2.TopicPublishRequest, _Mapping]] = ..., job_enqueue: _Optional[_Union[_jobs_pb2.JobEnqueueRequest, _Mapping]] = ..., job_claim: _Optional[_Union[_jobs_pb2.JobClaimRequest, _Mapping]] = ..., job_complete: _Optional[_Union[_jobs_pb2.JobCompleteRequest, _Mapping]] = ..., job_fail: _Optional[_Union[_jobs_pb2.JobFailRequest, _Mapping]] = ..., job_retry: _Optional[_Union[_jobs_pb2.JobRetryRequest, _Mapping]] = ..., job_cancel: _Optional[_Union[_jobs_pb2.JobCancelRequest, _Mapping]] = ..., job_discard: _Optional[_Union[_jobs_pb2.JobDiscardRequest, _Mapping]] = ..., job_cron_put: _Optional[_Union[_jobs_pb2.JobCronPutRequest, _Mapping]] = ..., job_cron_delete: _Optional[_Union[_jobs_pb2.JobCronDeleteRequest, _Mapping]] = ..., auth_change: _Optional[_Union[AuthChange, _Mapping]] = ..., job_enqueue_many: _Optional[_Union[_jobs_pb2.JobEnqueueManyRequest, _Mapping]] = ..., job_settle: _Optional[_Union[_jobs_pb2.JobSettleRequest, _Mapping]] = ..., job_queue_limit: _Optional[_Union[_jobs_pb2.JobQueueLimitRequest, _Mapping]] = ...) -> None: ...

class AuthUserSecret(_message.Message):
    __slots__ = ("user", "salt", "password_hash")
    USER_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    user: str
    salt: bytes
    password_hash: bytes
    def __init__(self, user: _Optional[str] = ..., salt: _Optional[bytes] = ..., password_hash: _Optional[bytes] = ...) -> None: ...

class AuthEnableChange(_message.Message):
    __slots__ = ("token_key",)
    TOKEN_KEY_FIELD_NUMBER: _ClassVar[int]
    token_key: bytes
    def __init__(self, token_key: _Optional[bytes] = ...) -> None: ...

class AuthChange(_message.Message):
    __slots__ = ("request_id", "user_add", "user_delete", "user_password", "user_grant_role", "user_revoke_role", "role_add", "role_delete", "role_grant_permission", "role_revoke_permission", "enable", "disable")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ADD_FIELD_NUMBER: _ClassVar[int]
    USER_DELETE_FIELD_NUMBER: _ClassVar[int]
    USER_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    USER_GRANT_ROLE_FIELD_NUMBER: _ClassVar[int]
    USER_REVOKE_ROLE_FIELD_NUMBER: _ClassVar[int]
    ROLE_ADD_FIELD_NUMBER: _ClassVar[int]
    ROLE_DELETE_FIELD_NUMBER: _ClassVar[int]
    ROLE_GRANT_PERMISSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_REVOKE_PERMISSION_FIELD_NUMBER: _ClassVar[int]
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    DISABLE_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    user_add: AuthUserSecret
    user_delete: _auth_pb2.UserDeleteRequest
    user_password: AuthUserSecret
    user_grant_role: _auth_pb2.UserRoleRequest
    user_revoke_role: _auth_pb2.UserRoleRequest
    role_add: _auth_pb2.RoleAddRequest
    role_delete: _auth_pb2.RoleDeleteRequest
    role_grant_permission: _auth_pb2.RolePermissionRequest
    role_revoke_permission: _auth_pb2.RolePermissionRequest
    enable: AuthEnableChange
    disable: _auth_pb2.AuthDisableRequest
    def __init__(self, request_id: _Optional[bytes] = ..., user_add: _Optional[_Union[AuthUserSecret, _Mapping]] = ..., user_delete: _Optional[_Union[_auth_pb2.UserDeleteRequest, _Mapping]] = ..., user_password: _Optional[_Union[AuthUserSecret, _Mapping]] = ..., user_grant_role: _Optional[_Union[_auth_pb2.UserRoleRequest, _Mapping]] = ..., user_revoke_role: _Optional[_Union[_auth_pb2.UserRoleRequest, _Mapping]] = ..., role_add: _Optional[_Union[_auth_pb2.RoleAddRequest, _Mapping]] = ..., role_delete: _Optional[_Union[_auth_pb2.RoleDeleteRequest, _Mapping]] = ..., role_grant_permission: _Optional[_Union[_auth_pb2.RolePermissionRequest, _Mapping]] = ..., role_revoke_permission: _Optional[_Union[_auth_pb2.RolePermissionRequest, _Mapping]] = ..., enable: _Optional[_Union[AuthEnableChange, _Mapping]] = ..., disable: _Optional[_Union[_auth_pb2.AuthDisableRequest, _Mapping]] = ...) -> None: ...

class AuthChangeResult(_message.Message):
    __slots__ = ("header", "auth_revision")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUTH_REVISION_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    auth_revision: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., auth_revision: _Optional[int] = ...) -> None: ...

class CommandBatch(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, commands: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CommandBatchResult(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, results: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CommandError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("revision", "error", "noop", "put", "delete", "txn", "counter_incr", "counter_set", "counter_cas", "counter_delete", "lease_tick", "lease_grant", "lease_revoke", "lease_keepalive", "register", "unregister", "lock_acquire", "lock_release", "campaign", "proclaim", "resign", "create_table", "drop_table", "batch", "topic_publish", "job_enqueue", "job_claim", "job_complete", "job_fail", "job_retry", "job_cancel", "job_discard", "job_cron_put", "job_cron_delete", "auth_change", "job_enqueue_many", "job_settle", "job_queue_limit")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NOOP_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    COUNTER_INCR_FIELD_NUMBER: _ClassVar[int]
    COUNTER_SET_FIELD_NUMBER: _ClassVar[int]
    COUNTER_CAS_FIELD_NUMBER: _ClassVar[int]
    COUNTER_DELETE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TICK_FIELD_NUMBER: _ClassVar[int]
    LEASE_GRANT_FIELD_NUMBER: _ClassVar[int]
    LEASE_REVOKE_FIELD_NUMBER: _ClassVar[int]
    LEASE_KEEPALIVE_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_FIELD_NUMBER: _ClassVar[int]
    LOCK_ACQUIRE_FIELD_NUMBER: _ClassVar[int]
    LOCK_RELEASE_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    PROCLAIM_FIELD_NUMBER: _ClassVar[int]
    RESIGN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TABLE_FIELD_NUMBER: _ClassVar[int]
    DROP_TABLE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    TOPIC_PUBLISH_FIELD_NUMBER: _ClassVar[int]
    JOB_ENQUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_CLAIM_FIELD_NUMBER: _ClassVar[int]
    JOB_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    JOB_FAIL_FIELD_NUMBER: _ClassVar[int]
    JOB_RETRY_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCEL_FIELD_NUMBER: _ClassVar[int]
    JOB_DISCARD_FIELD_NUMBER: _ClassVar[int]
    JOB_CRON_PUT_FIELD_NUMBER: _ClassVar[int]
    JOB_CRON_DELETE_FIELD_NUMBER: _ClassVar[int]
    AUTH_CHANGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ENQUEUE_MANY_FIELD_NUMBER: _ClassVar[int]
    JOB_SETTLE_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    revision: int
    error: CommandError
    noop: Noop
    put: _kv_pb2.PutResponse
    delete: _kv_pb2.DeleteResponse
    txn: _kv_pb2.TxnResponse
    counter_incr: _counter_pb2.CounterIncrResponse
    counter_set: _counter_pb2.CounterSetResponse
    counter_cas: _counter_pb2.CounterCompareAndSetResponse
    counter_delete: _counter_pb2.CounterDeleteResponse
    lease_tick: LeaseTickResult
    lease_grant: _lease_pb2.LeaseGrantResponse
    lease_revoke: _lease_pb2.LeaseRevokeResponse
    lease_keepalive: _lease_pb2.LeaseKeepAliveResponse
    register: _coordination_pb2.RegisterResponse
    unregister: _coordination_pb2.UnregisterResponse
    lock_acquire: _coordination_pb2.LockAcquireResponse
    lock_release: _coordination_pb2.LockReleaseResponse
    campaign: _coordination_pb2.CampaignResponse
    proclaim: _coordination_pb2.ProclaimResponse
    resign: _coordination_pb2.ResignResponse
    create_table: _crdt_pb2.CreateTableResponse
    drop_table: _crdt_pb2.DropTableResponse
    batch: CommandBatchResult
    topic_publish: _topics_pb2.TopicPublishResponse
    job_enqueue: _jobs_pb2.JobEnqueueResponse
    job_claim: _jobs_pb2.JobClaimResponse
    job_complete: _jobs_pb2.JobResponse
    job_fail: _jobs_pb2.JobResponse
    job_retry: _jobs_pb2.JobResponse
    job_cancel: _jobs_pb2.JobResponse
    job_discard: _jobs_pb2.JobResponse
    job_cron_put: _jobs_pb2.JobCronResponse
    job_cron_delete: _jobs_pb2.JobCronDeleteResponse
    auth_change: AuthChangeResult
    job_enqueue_many: _jobs_pb2.JobEnqueueManyResponse
    job_settle: _jobs_pb2.JobSettleResponse
    job_queue_limit: _jobs_pb2.JobQueueLimitResponse
    def __init__(self, revision: _Optional[int] = ..., error: _Optional[_Union[CommandError, _Mapping]] = ..., noop: _Optional[_Union[Noop, _Mapping]] = ..., put: _Optional[_Union[_kv_pb2.PutResponse, _Mapping]] = ..., delete: _Optional[_Union[_kv_pb2.DeleteResponse, _Mapping]] = ..., txn: _Optional[_Union[_kv_pb2.TxnResponse, _Mapping]] = ..., counter_incr: _Optional[_Union[_counter_pb2.CounterIncrResponse, _Mapping]] = ..., counter_set: _Optional[_Union[_counter_pb2.CounterSetResponse, _Mapping]] = ..., counter_cas: _Optional[_Union[_counter_pb2.CounterCompareAndSetResponse, _Mapping]] = ..., counter_delete: _Optional[_Union[_counter_pb2.CounterDeleteResponse, _Mapping]] = ..., lease_tick: _Optional[_Union[LeaseTickResult, _Mapping]] = ..., lease_grant: _Optional[_Union[_lease_pb2.LeaseGrantResponse, _Mapping]] = ..., lease_revoke: _Optional[_Union[_lease_pb2.LeaseRevokeResponse, _Mapping]] = ..., lease_keepalive: _Optional[_Union[_lease_pb2.LeaseKeepAliveResponse, _Mapping]] = ..., register: _Optional[_Union[_coordination_pb2.RegisterResponse, _Mapping]] = ..., unregister: _Optional[_Union[_coordination_pb2.UnregisterResponse, _Mapping]] = ..., lock_acquire: _Optional[_Union[_coordination_pb2.LockAcquireResponse, _Mapping]] = ..., lock_release: _Optional[_Union[_coordination_pb2.LockReleaseResponse, _Mapping]] = ..., campaign: _Optional[_Union[_coordination_pb2.CampaignResponse, _Mapping]] = ..., proclaim: _Optional[_Union[_coordination_pb2.ProclaimResponse, _Mapping]] = ..., resign: _Optional[_Union[_coordination_pb2.ResignResponse, _Mapping]] = ..., create_table: _Optional[_Union[_crdt_pb2.CreateTableResponse, _Mapping]] = ..., drop_table: _Optional[_Union[_crdt_pb2.DropTableResponse, _Mapping]] = ..., batch: _Optional[_Union[CommandBatchResult, _Mapping]] = ..., topic_publish: _Optional[_Union[_topics_pb2.TopicPublishResponse, _Mapping]] = ..., job_enqueue: _Optional[_Union[_jobs_pb2.JobEnqueueResponse, _Mapping]] = ..., job_claim: _Optional[_Union[_jobs_pb2.JobClaimResponse, _Mapping]] = ..., job_complete: _Optional[_Union[_jobs_pb2.JobResponse, _Mapping]] = ..., job_fail: _Optional[_Union[_jobs_pb2.JobResponse, _Mapping]] = ..., job_retry: _Optional[_Union[_jobs_pb2.JobResponse, _Mapping]] = ..., job_cancel: _Optional[_Union[_jobs_pb2.JobResponse, _Mapping]] = ..., job_discard: _Optional[_Union[_jobs_pb2.JobResponse, _Mapping]] = ..., job_cron_put: _Optional[_Union[_jobs_pb2.JobCronResponse, _Mapping]] = ..., job_cron_delete: _Optional[_Union[_jobs_pb2.JobCronDeleteResponse, _Mapping]] = ..., auth_change: _Optional[_Union[AuthChangeResult, _Mapping]] = ..., job_enqueue_many: _Optional[_Union[_jobs_pb2.JobEnqueueManyResponse, _Mapping]] = ..., job_settle: _Optional[_Union[_jobs_pb2.JobSettleResponse, _Mapping]] = ..., job_queue_limit: _Optional[_Union[_jobs_pb2.JobQueueLimitResponse, _Mapping]] = ...) -> None: ...
