"""The job queue's reads: one job, a page of jobs, the counts per queue
(with its cluster-wide limit, job_queue_limits.py).
Pure, like the rest of the state machine: each reads the view it is given
at the revision it is given."""

from __future__ import annotations

from tandemkv import limits
from tandemkv.v1 import jobs_pb2 as J
from tandemkv.v1 import kv_pb2

from tandemkv.server.strong import job_queue_limits
from tandemkv.server.strong.job_store import JobTables
from tandemkv.server.strong.view import StoreView


def read_get(view: StoreView, request: J.JobGetRequest, revision: int) -> J.JobGetResponse:
    response = J.JobGetResponse(header=kv_pb2.ResponseHeader(revision=revision))
    job = JobTables(view).get(request.id)
    if job is not None:
        response.found = True
        response.job.CopyFrom(job)
    return response


def read_list(view: StoreView, request: J.JobListRequest, revision: int) -> J.JobListResponse:
    """Jobs by id after `after_id`, of a queue and a state if asked; looks at
    up to JOB_LIST_SCAN_MAX jobs and answers up to `limit` and
    RANGE_RESPONSE_BYTES_MAX bytes, with where to go on."""
    response = J.JobListResponse(header=kv_pb2.ResponseHeader(revision=revision))
    limit = min(request.limit or limits.JOB_LIST_MAX, limits.JOB_LIST_MAX)
    size_bytes = 0
    looked = JobTables(view).scan(request.after_id, limits.JOB_LIST_SCAN_MAX + 1)
    response.next_after_id = request.after_id
    for job in looked[:limits.JOB_LIST_SCAN_MAX]:
        if request.queue and job.queue != request.queue or request.state and job.state != request.state:
            response.next_after_id = job.id
            continue
        if len(response.jobs) >= limit or size_bytes + job.ByteSize() > limits.RANGE_RESPONSE_BYTES_MAX:
            response.more = True
            return response
        response.jobs.append(job)
        size_bytes += job.ByteSize()
        response.next_after_id = job.id
    response.more = len(looked) > limits.JOB_LIST_SCAN_MAX
    return response


def read_stats(view: StoreView, request: J.JobStatsRequest, revision: int) -> J.JobStatsResponse:
    response = J.JobStatsResponse(header=kv_pb2.ResponseHeader(revision=revision))
    response.queues.extend(job_queue_limits.stats_with_limits(view, request.queue, limits.JOB_LIST_MAX))
    return response


READERS = {J.JobGetRequest: read_get, J.JobListRequest: read_list, J.JobStatsRequest: read_stats}
