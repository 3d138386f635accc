"""`tandemkv jobs enqueue QUEUE --from-file FILE` through subprocesses
against a real one-node cluster: a job per line (from a file or stdin) in
the lines' order, more lines than one EnqueueMany takes, the ids printed
one per line (or as JSON), and bad input refused with exit 2 and one line
naming what to fix, nothing enqueued.

Method: a `ServeCluster` of one node shared by the module; what was
enqueued is read back through the SDK.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tandemkv import limits
from tandemkv.client import Client
from tests.support.cluster import ServeCluster
from tests.support.local_up import TANDEMKV

LEADER_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    with ServeCluster(tmp_path_factory.mktemp("cli-enqueue-many"), nodes=1) as cluster:
        cluster.wait_for_leader(LEADER_TIMEOUT_S)
        yield ",".join(cluster.endpoints)


def cli(endpoints: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TANDEMKV, *args, "--endpoints", endpoints], capture_output=True, input=stdin,
                          timeout=120)


def test_a_job_per_line_of_a_file_in_order_with_the_ids_printed_one_per_line(endpoints, tmp_path):
    count = limits.JOB_ENQUEUE_MANY_JOBS_MAX + 3
    lines = [b"line %d" % n for n in range(count)]
    path = tmp_path / "jobs.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    enqueued = cli(endpoints, "jobs", "enqueue", "from-file", "--from-file", str(path), "--priority", "4")
    assert enqueued.returncode == 0, enqueued.stderr
    ids = [int(word) for word in enqueued.stdout.split()]
    assert len(ids) == count and all(a < b for a, b in zip(ids, ids[1:]))
    with Client(endpoints.split(",")) as client:
        for n in (0, limits.JOB_ENQUEUE_MANY_JOBS_MAX, count - 1):
            job = client.jobs.get(ids[n])
            assert (job.args, job.priority, job.queue) == (lines[n], 4, b"from-file")


def test_stdin_and_json_output(endpoints):
    enqueued = cli(endpoints, "jobs", "enqueue", "from-stdin", "--from-file", "-", "--output", "json",
                   stdin=b"first\r\n\nthird")
    assert enqueued.returncode == 0, enqueued.stderr
    ids = json.loads(enqueued.stdout)["ids"]
    with Client(endpoints.split(",")) as client:
        assert [client.jobs.get(job_id).args for job_id in ids] == [b"first", b"", b"third"]
    empty = cli(endpoints, "jobs", "enqueue", "from-stdin", "--from-file", "-", stdin=b"")
    assert empty.returncode == 0 and empty.stdout == b"" and b"no job enqueued" in empty.stderr


@pytest.mark.parametrize("extra, stdin, says", [
    (("--priority", "99"), b"a\nb\n", b"JOB_PRIORITY_MAX"),
    (("ARGS",), b"a\n", b"give ARGS or --from-file, not both"),
    (("--unique-key", "k"), b"a\n", b"--unique-key names one job"),
    ((), b"a\n" + b"x" * (limits.JOB_ARGS_BYTES_MAX + 1) + b"\n", b"stdin line 2 is"),
])
def test_bad_input_exits_2_with_one_line_and_enqueues_nothing(endpoints, extra, stdin, says):
    queue = "refused"
    result = cli(endpoints, "jobs", "enqueue", queue, *extra, "--from-file", "-", stdin=stdin)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and b"Traceback" not in result.stderr
    assert result.stderr.count(b"\n") == 1 and result.stdout == b""
    with Client(endpoints.split(",")) as client:
        assert client.jobs.list(queue).jobs == []


def test_a_missing_file_exits_2_naming_it(endpoints, tmp_path):
    result = cli(endpoints, "jobs", "enqueue", "q", "--from-file", str(tmp_path / "absent.txt"))
    assert result.returncode == 2 and b"absent.txt: No such file" in result.stderr
