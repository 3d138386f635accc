"""The fuzz tier: every RPC of every service in proto/tandemkv/v1 (found
from the descriptors) gets hostile requests from a real 3-node cluster's
point of view, and the cluster must shrug them off.

Method: one `ServeCluster` on 127.0.0.1 for the module. Raw cases (random
bytes, invalid UTF-8 in every string field, mutated encodings: bit flips,
truncation, duplicated fields, bad tags) go out in a seeded run, spread over
the three nodes; structure-aware cases are hypothesis-drawn request
messages with every field at and around its limit (limit-1, limit,
limit+1, huge and negative integers, unknown enums, transactions at their
op limits), sent as they are or mutated. Every call must end with a status
other than INTERNAL, UNKNOWN, UNIMPLEMENTED or DATA_LOSS; at the end no
node has exited, no node logged a traceback, each node's RSS grew less
than FUZZ_RSS_GROWTH_BYTES_MAX, and the cluster still commits a write.

About FUZZ_REQUESTS_DEFAULT requests in all (well under 90 s on two
cores). A longer run: `TANDEMKV_FUZZ_REQUESTS=200000 python -m pytest -q
tests/test_fuzz_api.py` (figures in docs/faults.md).
"""

from __future__ import annotations

import collections
import os
import random
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemkv.client import NO_RETRY, Client
from tests.support.cluster import ServeCluster, rss_bytes
from tests.support.fuzz import (
    FORBIDDEN_CODES, invalid_utf8_cases, mutate, random_bytes, request_strategy, rpc_methods, send,
)

FUZZ_REQUESTS_DEFAULT = 5000
FUZZ_REQUESTS = int(os.environ.get("TANDEMKV_FUZZ_REQUESTS", FUZZ_REQUESTS_DEFAULT))
# Share of the requests that are raw cases; the rest are structure-aware.
RAW_SHARE_PERCENT = 40
# A stream is held open for a short read, so streams get fewer cases.
STREAM_CASES_PERCENT = 30
RAW_SEED = int(os.environ.get("TANDEMKV_FUZZ_SEED", "20261205"))
RAW_SENDERS = 8
# What a node's resident memory may grow by over the whole run: data
# written through LMDB's memory map counts in it, leaks would dwarf it.
FUZZ_RSS_GROWTH_BYTES_MAX = 150 << 20
LEADER_TIMEOUT_S = 60

RPCS = rpc_methods()
# Status codes of every fuzzed call, for the summary the last test prints.
OUTCOMES: collections.Counter = collections.Counter()
_RAW_PER_RPC = max(8, FUZZ_REQUESTS * RAW_SHARE_PERCENT // 100 // len(RPCS))
_DRAWN_PER_RPC = max(8, FUZZ_REQUESTS * (100 - RAW_SHARE_PERCENT) // 100 // len(RPCS))


def _cases_for(rpc, count: int) -> int:
    return max(4, count * STREAM_CASES_PERCENT // 100) if rpc.streaming else count



@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("fuzz")) as started:
        started.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
        channels = [grpc.insecure_channel(endpoint) for endpoint in started.endpoints]
        started.fuzz_channels = channels
        for channel in channels:  # warm every node's code paths before the baseline
            for rpc in RPCS:
                send(channel, rpc, b"")
        started.rss_before = {name: rss_bytes(p.pid) for name, p in started.processes.items()}
        started.fuzz_began = time.monotonic()
        try:
            yield started
        finally:
            for channel in channels:
                channel.close()


def _check(code: grpc.StatusCode, rpc, raw: bytes) -> None:
    assert code not in FORBIDDEN_CODES, f"{rpc.path} answered {code.name} to {raw[:200]!r}"


def test_every_rpc_of_every_service_is_fuzzed():
    paths = {rpc.path for rpc in RPCS}
    assert {"/tandemkv.v1.KV/Put", "/tandemkv.v1.Crdt/Subscribe", "/tandemkv.v1.Lease/KeepAlive",
            "/tandemkv.v1.Gossip/Deliver", "/tandemkv.v1.Cluster/Status"} <= paths
    proto_dir = Path(__file__).resolve().parent.parent / "proto" / "tandemkv" / "v1"
    declared = sum(line.lstrip().startswith("rpc ") for proto in proto_dir.glob("*.proto")
                   for line in proto.read_text().splitlines())
    assert len(paths) == len(RPCS) == declared


def test_raw_bytes_on_every_rpc_never_get_internal_or_unknown(cluster):
    rng = random.Random(RAW_SEED)
    cases = []
    for rpc in RPCS:
        valid = rpc.request_class().SerializeToString()
        raw = [random_bytes(rng) if k % 2 else mutate(rng, valid) for k in range(_cases_for(rpc, _RAW_PER_RPC))]
        cases += [(rpc, r) for r in (*raw, *invalid_utf8_cases(rpc.method.input_type))]
    rng.shuffle(cases)
    channels = cluster.fuzz_channels
    with futures.ThreadPoolExecutor(RAW_SENDERS) as pool:
        codes = list(pool.map(lambda k: send(channels[k % len(channels)], *cases[k]), range(len(cases))))
    OUTCOMES.update(codes)
    bad = [(rpc.path, code.name, raw[:80]) for (rpc, raw), code in zip(cases, codes) if code in FORBIDDEN_CODES]
    assert not bad, f"{len(bad)} of {len(cases)} raw cases got a forbidden status (seed {RAW_SEED}): {bad[:10]}"
    assert codes.count(grpc.StatusCode.INVALID_ARGUMENT) > len(cases) // 4


@pytest.mark.parametrize("rpc", RPCS, ids=[rpc.path for rpc in RPCS])
def test_requests_at_every_limit_never_get_internal_or_unknown(cluster, rpc):
    channels = cluster.fuzz_channels

    @settings(max_examples=_cases_for(rpc, _DRAWN_PER_RPC), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(message=request_strategy(rpc.method.input_type), mutation=st.none() | st.randoms(),
           node=st.integers(0, len(channels) - 1))
    def check(message, mutation, node):
        raw = message.SerializeToString()
        if mutation is not None:
            raw = mutate(mutation, raw)
        code = send(channels[node], rpc, raw)
        OUTCOMES[code] += 1
        _check(code, rpc, raw)

    check()


def test_after_fuzzing_no_node_exited_or_leaked_and_the_cluster_takes_a_write(cluster):
    exited = {name: p.returncode for name, p in cluster.processes.items() if p.poll() is not None}
    assert not exited, f"nodes exited: {exited}; logs in {cluster.root}"
    growth = {name: rss_bytes(p.pid) - cluster.rss_before[name] for name, p in cluster.processes.items()}
    print(f"\nfuzz: {sum(OUTCOMES.values())} requests in {time.monotonic() - cluster.fuzz_began:.0f} s; "
          + ", ".join(f"{code.name} {count}" for code, count in OUTCOMES.most_common())
          + "; RSS growth " + ", ".join(f"{n} {g / (1 << 20):+.1f} MiB" for n, g in sorted(growth.items())))
    for name, process in cluster.processes.items():
        grown = growth[name]
        assert grown < FUZZ_RSS_GROWTH_BYTES_MAX, f"{name} grew {grown >> 20} MiB"
        log = cluster.log_path(name).read_text(errors="replace")
        assert "Traceback" not in log, f"{name} logged a traceback; see {cluster.log_path(name)}"
    cluster.wait_for_leader(timeout_s=LEADER_TIMEOUT_S)
    with Client(cluster.endpoints, retry=NO_RETRY) as client:
        client.put(b"after-fuzzing", b"ok")
        assert client.get(b"after-fuzzing") == b"ok"
