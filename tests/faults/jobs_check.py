"""Checks of a job-queue history under faults: pure (no sockets, no
threads), so they run again on a saved history and are tested on
hand-built ones (tests/test_faults_jobs_check.py).

A history (what jobs_runner.py saves as history.json) holds:

- `enqueues`: each enqueue the producers tried: `seq` (the number in the
  job's args), `outcome` (ok, unknown, fail) and the `id` it was answered
  with;
- `executions`: each time a handler ran a job, as the worker wrote it
  (fsync'd) before acting: worker, job id, the claim's `token` and
  `attempt`, the `failures` the job showed, and the handler's `decision`
  (complete or fail);
- `outcomes`: what a worker was told of its complete or fail (ok, refused,
  unknown), when it lived to hear it;
- `final_jobs`: every job of the queue read back at the end: id, seq and
  planned failures (from its args), state, attempt, failures,
  max_attempts, token, result;
- `restart`: jobs unfinished when the whole cluster was stopped.

The checks (`check_jobs`):

- none lost: every acknowledged enqueue ends completed or dead, under the
  id it was answered with; the queue holds only jobs someone enqueued, and
  each at most once (an unknown enqueue that applied is counted, and must
  finish too);
- exactly once in effect: a completed job's result names the execution
  that completed it, which ran under the job's last claim (its token is
  the job's token, its attempt the job's attempt); no execution ran under
  a later token (nothing ran a job after it completed); no two executions
  share a token (a claim runs once); an execution under an older token is
  a superseded one, and its complete, if it heard back, was refused;
- dead only after max_attempts real failures: a dead job failed
  max_attempts times and was meant to, each failure backed by an execution
  that decided to fail under a token of its own; a completed job failed
  exactly as often as it was meant to (below max_attempts);
- the restart: some jobs were unfinished when every node was stopped, and
  all of them finished after the restart.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

FINISHED = ("completed", "dead")


@dataclasses.dataclass
class Verdict:
    violations: list[str] = dataclasses.field(default_factory=list)
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    # A long run with a systematic bug would print thousands of lines.
    VIOLATIONS_KEPT_MAX = 200

    @property
    def ok(self) -> bool:
        return not self.violations

    def violate(self, kind: str, text: str) -> None:
        self.counts[f"violation:{kind}"] += 1
        if len(self.violations) < self.VIOLATIONS_KEPT_MAX:
            self.violations.append(f"{kind}: {text}")

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": self.violations, "counts": dict(sorted(self.counts.items()))}


def check_jobs(history: dict[str, Any]) -> Verdict:
    verdict = Verdict()
    jobs = {job["id"]: job for job in history["final_jobs"]}
    executions: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for execution in history["executions"]:
        executions[execution["job"]].append(execution)
    outcomes = {(o["job"], o["token"], o["call"]): o["outcome"] for o in history.get("outcomes", ())}
    for outcome in outcomes.values():  # what the workers heard: the rules below read them
        verdict.counts[f"settlement:{outcome}"] += 1
    _check_enqueues(verdict, history["enqueues"], jobs)
    for job in jobs.values():
        verdict.counts[f"final:{job['state']}"] += 1
        runs = sorted(executions.get(job["id"], ()), key=lambda e: e["token"])
        verdict.counts["executions"] += len(runs)
        if len(runs) > 1:
            verdict.counts["jobs_executed_more_than_once"] += 1
        _check_tokens(verdict, job, runs, outcomes)
        _check_failures(verdict, job, runs, outcomes)
    strays = sorted(set(executions) - set(jobs))
    for job_id in strays:
        verdict.violate("execution-of-unknown-job", f"job {job_id} ran but the queue does not hold it")
    _check_restart(verdict, history.get("restart"), jobs)
    return verdict


def _check_enqueues(verdict: Verdict, enqueues: list[dict[str, Any]], jobs: dict[int, dict[str, Any]]) -> None:
    attempted = {e["seq"]: e for e in enqueues}
    by_seq: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for job in jobs.values():
        by_seq[job["seq"]].append(job)
    for seq, held in by_seq.items():
        if len(held) > 1:
            verdict.violate("enqueued-twice", f"seq {seq} is held by jobs {sorted(j['id'] for j in held)}")
        if seq not in attempted:
            verdict.violate("never-enqueued", f"job {held[0]['id']} has seq {seq}, which no producer enqueued")
    for enqueue in enqueues:
        verdict.counts[f"enqueue:{enqueue['outcome']}"] += 1
        held = by_seq.get(enqueue["seq"], [])
        if enqueue["outcome"] == "ok":
            job = jobs.get(enqueue["id"])
            if job is None:
                verdict.violate("lost", f"seq {enqueue['seq']}: acknowledged as job {enqueue['id']}, which the "
                                        "queue does not hold")
                continue
            if job["seq"] != enqueue["seq"]:
                verdict.violate("wrong-id", f"seq {enqueue['seq']} was answered with id {enqueue['id']}, "
                                            f"which holds seq {job['seq']}")
            if job["state"] not in FINISHED:
                verdict.violate("unfinished", f"job {job['id']} (seq {enqueue['seq']}) ended {job['state']}")
        elif held:
            verdict.counts["enqueue:unknown_applied"] += 1
            for job in held:
                if job["state"] not in FINISHED:
                    verdict.violate("unfinished", f"job {job['id']} (seq {enqueue['seq']}, enqueue of unknown "
                                                  f"outcome) ended {job['state']}")


def _check_tokens(verdict: Verdict, job: dict[str, Any], runs: list[dict[str, Any]],
                  outcomes: dict[tuple[int, int, str], str]) -> None:
    name = f"job {job['id']}"
    tokens = [run["token"] for run in runs]
    for token, count in collections.Counter(tokens).items():
        if count > 1:
            verdict.violate("claim-ran-twice", f"{name}: {count} executions under token {token}")
    # Each claim counts an attempt and takes a later token: attempts rise with tokens.
    attempt_of = {run["token"]: run["attempt"] for run in runs}
    attempts = [attempt_of[token] for token in sorted(attempt_of)]
    if any(later <= earlier for earlier, later in zip(attempts, attempts[1:])):
        verdict.violate("attempts-out-of-order", f"{name}: attempts {attempts} under tokens {sorted(attempt_of)}")
    if len(set(tokens)) > job["attempt"]:
        verdict.violate("more-runs-than-claims", f"{name}: {len(set(tokens))} tokens ran, attempt {job['attempt']}")
    if job["state"] != "completed":
        for run in runs:
            if outcomes.get((job["id"], run["token"], "complete")) == "ok":
                verdict.violate("completion-undone", f"{name}: complete under token {run['token']} was "
                                                     f"acknowledged, but the job ended {job['state']}")
        return
    later = [run for run in runs if run["token"] > job["token"]]
    if later:
        verdict.violate("ran-after-completion", f"{name}: completed under token {job['token']}, ran again "
                                                f"under {[run['token'] for run in later]}")
    worker, _, result_token = job["result"].partition(":")
    completing = [run for run in runs if run["token"] == job["token"]]
    if not completing:
        verdict.violate("completion-without-execution", f"{name}: completed under token {job['token']}, "
                                                        "which no recorded execution ran")
        return
    run = completing[0]
    if result_token != str(job["token"]) or worker != run["worker"]:
        verdict.violate("completion-by-another", f"{name}: result {job['result']!r}, but token {job['token']} "
                                                 f"ran on {run['worker']}")
    if run["decision"] != "complete":
        verdict.violate("completed-by-a-failing-run", f"{name}: token {job['token']}'s handler failed it")
    if run["attempt"] != job["attempt"]:
        verdict.violate("completion-not-last-claim", f"{name}: completing run was attempt {run['attempt']}, "
                                                     f"the job's last claim is attempt {job['attempt']}")
    for older in runs:
        if older["token"] < job["token"] and older["decision"] == "complete":
            verdict.counts["superseded_executions"] += 1
            told = outcomes.get((job["id"], older["token"], "complete"))
            if told == "ok":
                verdict.violate("completed-twice", f"{name}: complete under older token {older['token']} "
                                                   f"was acknowledged too")
            elif told == "refused":
                verdict.counts["superseded_complete_refused"] += 1


def _check_failures(verdict: Verdict, job: dict[str, Any], runs: list[dict[str, Any]],
                    outcomes: dict[tuple[int, int, str], str]) -> None:
    name = f"job {job['id']}"
    failing = {run["token"] for run in runs if run["decision"] == "fail"}
    acknowledged = {token for token in failing if outcomes.get((job["id"], token, "fail")) == "ok"}
    verdict.counts["failures"] += job["failures"]
    if job["failures"] > len(failing):
        verdict.violate("failure-without-execution", f"{name}: {job['failures']} failures, only {len(failing)} "
                                                     "executions failed it")
    if len(acknowledged) > job["failures"]:
        verdict.violate("failure-not-counted", f"{name}: {len(acknowledged)} fails acknowledged, "
                                               f"{job['failures']} counted")
    planned, most = job["planned_failures"], job["max_attempts"]
    if job["state"] == "dead":
        if job["failures"] != most or planned < most:
            verdict.violate("dead-early", f"{name}: dead after {job['failures']} failures of max_attempts {most} "
                                          f"(meant to fail {planned} times)")
    elif job["state"] == "completed":
        if planned >= most:
            verdict.violate("completed-a-failing-job", f"{name}: meant to fail {planned} >= {most} times, "
                                                       "but completed")
        elif job["failures"] != planned:
            verdict.violate("failure-count", f"{name}: completed after {job['failures']} failures, meant "
                                             f"{planned}")


def _check_restart(verdict: Verdict, restart: dict[str, Any] | None, jobs: dict[int, dict[str, Any]]) -> None:
    if restart is None:
        return
    pending = restart["unfinished_ids"]
    verdict.counts["unfinished_at_restart"] = len(pending)
    if not pending:
        verdict.violate("restart-untested", "no job was unfinished when the cluster was stopped")
    for job_id in pending:
        job = jobs.get(job_id)
        if job is None or job["state"] not in FINISHED:
            verdict.violate("restart-lost", f"job {job_id}, unfinished at the full restart, ended "
                                            f"{'missing' if job is None else job['state']}")
