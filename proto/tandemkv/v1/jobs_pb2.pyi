from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_AVAILABLE: _ClassVar[JobState]
    JOB_SCHEDULED: _ClassVar[JobState]
    JOB_CLAIMED: _ClassVar[JobState]
    JOB_COMPLETED: _ClassVar[JobState]
    JOB_RETRYABLE: _ClassVar[JobState]
    JOB_DEAD: _ClassVar[JobState]
    JOB_CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_AVAILABLE: JobState
JOB_SCHEDULED: JobState
JOB_CLAIMED: JobState
JOB_COMPLETED: JobState
JOB_RETRYABLE: JobState
JOB_DEAD: JobState
JOB_CANCELLED: JobState

class Job(_message.Message):
    __slots__ = ("id", "queue", "args", "priority", "run_at_ms", "attempt", "max_attempts", "state", "last_error", "unique_key", "timeout_ms", "lease", "token", "inserted_ms", "finished_ms", "failures", "result", "deadline_ms", "lost_claims", "max_lost_claims")
    ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSERTED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    LOST_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    MAX_LOST_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    id: int
    queue: bytes
    args: bytes
    priority: int
    run_at_ms: int
    attempt: int
    max_attempts: int
    state: JobState
    last_error: str
    unique_key: bytes
    timeout_ms: int
    lease: int
    token: int
    inserted_ms: int
    finished_ms: int
    failures: int
    result: bytes
    deadline_ms: int
    lost_claims: int
    max_lost_claims: int
    def __init__(self, id: _Optional[int] = ..., queue: _Optional[bytes] = ..., args: _Optional[bytes] = ..., priority: _Optional[int] = ..., run_at_ms: _Optional[int] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., state: _Optional[_Union[JobState, str]] = ..., last_error: _Optional[str] = ..., unique_key: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ..., lease: _Optional[int] = ..., token: _Optional[int] = ..., inserted_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., failures: _Optional[int] = ..., result: _Optional[bytes] = ..., deadline_ms: _Optional[int] = ..., lost_claims: _Optional[int] = ..., max_lost_claims: _Optional[int] = ...) -> None: ...

class JobEnqueueRequest(_message.Message):
    __slots__ = ("queue", "args", "unique_key", "run_at_ms", "priority", "max_attempts", "timeout_ms", "request_id", "max_lost_claims")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_KEY_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_LOST_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    args: bytes
    unique_key: bytes
    run_at_ms: int
    priority: int
    max_attempts: int
    timeout_ms: int
    request_id: bytes
    max_lost_claims: int
    def __init__(self, queue: _Optional[bytes] = ..., args: _Optional[bytes] = ..., unique_key: _Optional[bytes] = ..., run_at_ms: _Optional[int] = ..., priority: _Optional[int] = ..., max_attempts: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., request_id: _Optional[bytes] = ..., max_lost_claims: _Optional[int] = ...) -> None: ...

class JobEnqueueResponse(_message.Message):
    __slots__ = ("header", "id", "duplicate", "job")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    id: int
    duplicate: bool
    job: Job
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., id: _Optional[int] = ..., duplicate: bool = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class JobClaimRequest(_message.Message):
    __slots__ = ("queue", "lease", "limit", "request_id")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    lease: int
    limit: int
    request_id: bytes
    def __init__(self, queue: _Optional[bytes] = ..., lease: _Optional[int] = ..., limit: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobClaimResponse(_message.Message):
    __slots__ = ("header", "jobs")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class JobClaimNext(_message.Message):
    __slots__ = ("lease", "limit")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    lease: int
    limit: int
    def __init__(self, lease: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class JobCompleteRequest(_message.Message):
    __slots__ = ("id", "token", "result", "request_id", "claim_next")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_NEXT_FIELD_NUMBER: _ClassVar[int]
    id: int
    token: int
    result: bytes
    request_id: bytes
    claim_next: JobClaimNext
    def __init__(self, id: _Optional[int] = ..., token: _Optional[int] = ..., result: _Optional[bytes] = ..., request_id: _Optional[bytes] = ..., claim_next: _Optional[_Union[JobClaimNext, _Mapping]] = ...) -> None: ...

class JobFailRequest(_message.Message):
    __slots__ = ("id", "token", "error", "request_id", "claim_next")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_NEXT_FIELD_NUMBER: _ClassVar[int]
    id: int
    token: int
    error: str
    request_id: bytes
    claim_next: JobClaimNext
    def __init__(self, id: _Optional[int] = ..., token: _Optional[int] = ..., error: _Optional[str] = ..., request_id: _Optional[bytes] = ..., claim_next: _Optional[_Union[JobClaimNext, _Mapping]] = ...) -> None: ...

class JobEnqueueManyRequest(_message.Message):
    __slots__ = ("queue", "jobs", "request_id")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    jobs: _containers.RepeatedCompositeFieldContainer[JobEnqueueRequest]
    request_id: bytes
    def __init__(self, queue: _Optional[bytes] = ..., jobs: _Optional[_Iterable[_Union[JobEnqueueRequest, _Mapping]]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobEnqueueManyResponse(_message.Message):
    __slots__ = ("header", "jobs")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    jobs: _containers.RepeatedCompositeFieldContainer[JobEnqueueResponse]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[JobEnqueueResponse, _Mapping]]] = ...) -> None: ...

class JobSettlement(_message.Message):
    __slots__ = ("id", "token", "failed", "result", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    token: int
    failed: bool
    result: bytes
    error: str
    def __init__(self, id: _Optional[int] = ..., token: _Optional[int] = ..., failed: bool = ..., result: _Optional[bytes] = ..., error: _Optional[str] = ...) -> None: ...

class JobSettleRequest(_message.Message):
    __slots__ = ("queue", "settlements", "claim_next", "request_id")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENTS_FIELD_NUMBER: _ClassVar[int]
    CLAIM_NEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    settlements: _containers.RepeatedCompositeFieldContainer[JobSettlement]
    claim_next: JobClaimNext
    request_id: bytes
    def __init__(self, queue: _Optional[bytes] = ..., settlements: _Optional[_Iterable[_Union[JobSettlement, _Mapping]]] = ..., claim_next: _Optional[_Union[JobClaimNext, _Mapping]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobSettleOutcome(_message.Message):
    __slots__ = ("id", "settled", "refused", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: int
    settled: bool
    refused: str
    state: JobState
    def __init__(self, id: _Optional[int] = ..., settled: bool = ..., refused: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class JobSettleResponse(_message.Message):
    __slots__ = ("header", "outcomes", "claimed")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    outcomes: _containers.RepeatedCompositeFieldContainer[JobSettleOutcome]
    claimed: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[JobSettleOutcome, _Mapping]]] = ..., claimed: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class JobRetryRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    request_id: bytes
    def __init__(self, id: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobCancelRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    request_id: bytes
    def __init__(self, id: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobDiscardRequest(_message.Message):
    __slots__ = ("id", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    request_id: bytes
    def __init__(self, id: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobResponse(_message.Message):
    __slots__ = ("header", "job", "claimed")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    job: Job
    claimed: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., claimed: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class JobGetRequest(_message.Message):
    __slots__ = ("id", "consistency")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    id: int
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, id: _Optional[int] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class JobGetResponse(_message.Message):
    __slots__ = ("header", "found", "job", "progress")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    found: bool
    job: Job
    progress: JobProgress
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., found: bool = ..., job: _Optional[_Union[Job, _Mapping]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ...) -> None: ...

class JobListRequest(_message.Message):
    __slots__ = ("queue", "state", "after_id", "limit", "consistency")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    state: JobState
    after_id: int
    limit: int
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, queue: _Optional[bytes] = ..., state: _Optional[_Union[JobState, str]] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class JobListResponse(_message.Message):
    __slots__ = ("header", "jobs", "more", "next_after_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    more: bool
    next_after_id: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., more: bool = ..., next_after_id: _Optional[int] = ...) -> None: ...

class JobQueueStats(_message.Message):
    __slots__ = ("queue", "available", "scheduled", "claimed", "completed", "retryable", "dead", "cancelled", "concurrency_max")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_MAX_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    available: int
    scheduled: int
    claimed: int
    completed: int
    retryable: int
    dead: int
    cancelled: int
    concurrency_max: int
    def __init__(self, queue: _Optional[bytes] = ..., available: _Optional[int] = ..., scheduled: _Optional[int] = ..., claimed: _Optional[int] = ..., completed: _Optional[int] = ..., retryable: _Optional[int] = ..., dead: _Optional[int] = ..., cancelled: _Optional[int] = ..., concurrency_max: _Optional[int] = ...) -> None: ...

class JobQueueLimitRequest(_message.Message):
    __slots__ = ("queue", "concurrency_max", "request_id")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_MAX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    concurrency_max: int
    request_id: bytes
    def __init__(self, queue: _Optional[bytes] = ..., concurrency_max: _Optional[int] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobQueueLimitResponse(_message.Message):
    __slots__ = ("header", "queue", "concurrency_max")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_MAX_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    queue: bytes
    concurrency_max: int
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., queue: _Optional[bytes] = ..., concurrency_max: _Optional[int] = ...) -> None: ...

class JobStatsRequest(_message.Message):
    __slots__ = ("queue", "consistency")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, queue: _Optional[bytes] = ..., consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class JobStatsResponse(_message.Message):
    __slots__ = ("header", "queues")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    queues: _containers.RepeatedCompositeFieldContainer[JobQueueStats]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., queues: _Optional[_Iterable[_Union[JobQueueStats, _Mapping]]] = ...) -> None: ...

class JobCron(_message.Message):
    __slots__ = ("name", "queue", "expression", "args", "priority", "max_attempts", "timeout_ms", "next_run_ms", "last_job_id", "max_lost_claims")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_LOST_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    queue: bytes
    expression: str
    args: bytes
    priority: int
    max_attempts: int
    timeout_ms: int
    next_run_ms: int
    last_job_id: int
    max_lost_claims: int
    def __init__(self, name: _Optional[bytes] = ..., queue: _Optional[bytes] = ..., expression: _Optional[str] = ..., args: _Optional[bytes] = ..., priority: _Optional[int] = ..., max_attempts: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., next_run_ms: _Optional[int] = ..., last_job_id: _Optional[int] = ..., max_lost_claims: _Optional[int] = ...) -> None: ...

class JobCronPutRequest(_message.Message):
    __slots__ = ("cron", "request_id")
    CRON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    cron: JobCron
    request_id: bytes
    def __init__(self, cron: _Optional[_Union[JobCron, _Mapping]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobCronResponse(_message.Message):
    __slots__ = ("header", "cron")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    cron: JobCron
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., cron: _Optional[_Union[JobCron, _Mapping]] = ...) -> None: ...

class JobCronDeleteRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    request_id: bytes
    def __init__(self, name: _Optional[bytes] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class JobCronDeleteResponse(_message.Message):
    __slots__ = ("header", "deleted")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    deleted: bool
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., deleted: bool = ...) -> None: ...

class JobCronListRequest(_message.Message):
    __slots__ = ("consistency",)
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    consistency: _kv_pb2.ReadConsistency
    def __init__(self, consistency: _Optional[_Union[_kv_pb2.ReadConsistency, str]] = ...) -> None: ...

class JobCronListResponse(_message.Message):
    __slots__ = ("header", "crons")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CRONS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    crons: _containers.RepeatedCompositeFieldContainer[JobCron]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., crons: _Optional[_Iterable[_Union[JobCron, _Mapping]]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("id", "token", "progress", "note", "at_ms", "node")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    id: int
    token: int
    progress: int
    note: str
    at_ms: int
    node: str
    def __init__(self, id: _Optional[int] = ..., token: _Optional[int] = ..., progress: _Optional[int] = ..., note: _Optional[str] = ..., at_ms: _Optional[int] = ..., node: _Optional[str] = ...) -> None: ...

class JobProgressRequest(_message.Message):
    __slots__ = ("id", "token", "progress", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: int
    token: int
    progress: int
    note: str
    def __init__(self, id: _Optional[int] = ..., token: _Optional[int] = ..., progress: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class JobProgressResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class JobWorker(_message.Message):
    __slots__ = ("queue", "worker", "running", "beat_ms", "node")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    BEAT_MS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    worker: str
    running: int
    beat_ms: int
    node: str
    def __init__(self, queue: _Optional[bytes] = ..., worker: _Optional[str] = ..., running: _Optional[int] = ..., beat_ms: _Optional[int] = ..., node: _Optional[str] = ...) -> None: ...

class JobHeartbeatRequest(_message.Message):
    __slots__ = ("queue", "worker", "running", "stopping")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    STOPPING_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    worker: str
    running: int
    stopping: bool
    def __init__(self, queue: _Optional[bytes] = ..., worker: _Optional[str] = ..., running: _Optional[int] = ..., stopping: bool = ...) -> None: ...

class JobHeartbeatResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class JobWorkersRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: bytes
    def __init__(self, queue: _Optional[bytes] = ...) -> None: ...

class JobWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[JobWorker]
    def __init__(self, workers: _Optional[_Iterable[_Union[JobWorker, _Mapping]]] = ...) -> None: ...
