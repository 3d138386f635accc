"""The fuzz tier reaches EnqueueMany and Settle: tests/support/fuzz.py draws
every RPC's request from its descriptor, so Jobs.EnqueueMany and
Jobs.Settle are among the fuzzed RPCs, and their repeated fields are drawn
at and past their limits: jobs up to JOB_ENQUEUE_MANY_JOBS_MAX and one
over, settlements up to JOB_SETTLE_JOBS_MAX and one over, a Settle with
claim_next too. This file checks that the drawn requests do;
tests/test_fuzz_api.py sends them.

Method: hypothesis' `find` over the fuzz tier's own strategies.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, find, settings

from tandemkv import limits
from tests.support.fuzz import request_strategy, rpc_methods

BATCHES = {rpc.path: rpc for rpc in rpc_methods()
           if rpc.path in ("/tandemkv.v1.Jobs/EnqueueMany", "/tandemkv.v1.Jobs/Settle")}
# Generation only: shrinking a thousand repeated messages costs seconds and tells nothing here.
QUIET = settings(database=None, max_examples=5_000, phases=(Phase.generate,))


def test_both_batch_writes_are_among_the_fuzzed_rpcs():
    assert sorted(BATCHES) == ["/tandemkv.v1.Jobs/EnqueueMany", "/tandemkv.v1.Jobs/Settle"]


@pytest.mark.parametrize("path, field, limit", [
    ("/tandemkv.v1.Jobs/EnqueueMany", "jobs", limits.JOB_ENQUEUE_MANY_JOBS_MAX),
    ("/tandemkv.v1.Jobs/Settle", "settlements", limits.JOB_SETTLE_JOBS_MAX),
])
def test_the_fuzz_tier_draws_batches_within_at_and_past_their_limit(path, field, limit):
    # Each drawn request as (its count, its queue's bytes): small to show when a find fails.
    counts = request_strategy(BATCHES[path].request_class.DESCRIPTOR).map(
        lambda r: (len(getattr(r, field)), len(r.queue)))
    one = find(counts, lambda drawn: drawn[0] == 1 and drawn[1] > 0, settings=QUIET)
    full = find(counts, lambda drawn: drawn[0] == limit, settings=QUIET)
    past = find(counts, lambda drawn: drawn[0] == limit + 1, settings=QUIET)
    assert (one[0], full[0], past[0]) == (1, limit, limit + 1)


def test_the_fuzz_tier_draws_settles_that_claim_the_next_jobs():
    strategy = request_strategy(BATCHES["/tandemkv.v1.Jobs/Settle"].request_class.DESCRIPTOR)
    claims = find(strategy, lambda r: r.HasField("claim_next") and r.claim_next.lease > 0
                  and 1 <= r.claim_next.limit <= limits.JOB_CLAIM_JOBS_MAX and len(r.settlements) == 1,
                  settings=QUIET)
    assert claims.claim_next.lease > 0 and len(claims.settlements) == 1
