"""The fuzz tier reaches settle-and-claim: tests/support/fuzz.py draws every
RPC's request from its descriptor, nested messages included, so Jobs.Complete
and Jobs.Fail go out with claim_next set, within its limits (reaching the
state machine) and past them (JOB_CLAIM_JOBS_MAX + 1, lease 0). This file
checks that the drawn requests do carry it; tests/test_fuzz_api.py sends them.

Method: hypothesis' `find` over the fuzz tier's own strategies.
"""

from __future__ import annotations

import pytest
from hypothesis import find, settings

from tandemkv import limits
from tests.support.fuzz import request_strategy, rpc_methods

SETTLEMENTS = [rpc for rpc in rpc_methods() if rpc.path in ("/tandemkv.v1.Jobs/Complete", "/tandemkv.v1.Jobs/Fail")]


def test_both_settlements_are_among_the_fuzzed_rpcs():
    assert sorted(rpc.path for rpc in SETTLEMENTS) == ["/tandemkv.v1.Jobs/Complete", "/tandemkv.v1.Jobs/Fail"]


@pytest.mark.parametrize("rpc", SETTLEMENTS, ids=lambda rpc: rpc.path)
def test_the_fuzz_tier_draws_settlements_that_claim_within_and_past_the_limits(rpc):
    strategy = request_strategy(rpc.request_class.DESCRIPTOR)
    quiet = settings(database=None, max_examples=5_000)
    within = find(strategy, lambda r: r.HasField("claim_next") and r.claim_next.lease > 0
                  and 1 <= r.claim_next.limit <= limits.JOB_CLAIM_JOBS_MAX, settings=quiet)
    past = find(strategy, lambda r: r.HasField("claim_next") and r.claim_next.limit > limits.JOB_CLAIM_JOBS_MAX,
                settings=quiet)
    assert within.claim_next.lease > 0 and past.claim_next.limit > limits.JOB_CLAIM_JOBS_MAX
