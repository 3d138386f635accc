"""The job-queue fault checker (tests/faults/jobs_check.py) over hand-built
histories: a clean one passes, and each kind of wrong outcome the workload
could meet (a lost job, a double completion, a completion by a superseded
claim, a job dead too early, a job lost over the restart) is named."""

from __future__ import annotations

import copy

from tests.faults.jobs_check import check_jobs


def execution(job: int, token: int, attempt: int, decision: str = "complete", worker: str = "w1.1",
              failures: int = 0) -> dict:
    return {"worker": worker, "job": job, "token": token, "attempt": attempt, "failures": failures,
            "decision": decision, "at": 0.0}


def final(job_id: int, seq: int, state: str, token: int, attempt: int, *, failures: int = 0, planned: int = 0,
          result: str | None = None, max_attempts: int = 3) -> dict:
    return {"id": job_id, "seq": seq, "planned_failures": planned, "state": state, "attempt": attempt,
            "failures": failures, "max_attempts": max_attempts, "token": token,
            "result": result if result is not None else (f"w1.1:{token}" if state == "completed" else ""),
            "last_error": ""}


def clean_history() -> dict:
    """Job 10 completed at once; job 11's first worker was killed, its second
    claim completed it, and the first worker's late complete was refused;
    job 12 failed once then completed; job 13 failed max_attempts times."""
    return {
        "enqueues": [{"seq": 0, "outcome": "ok", "id": 10}, {"seq": 1, "outcome": "ok", "id": 11},
                     {"seq": 2, "outcome": "ok", "id": 12}, {"seq": 3, "outcome": "ok", "id": 13},
                     {"seq": 4, "outcome": "unknown", "id": 0}],
        "executions": [
            execution(10, 20, 1),
            execution(11, 21, 1, worker="w2.1"), execution(11, 40, 2),
            execution(12, 22, 1, "fail"), execution(12, 50, 2, failures=1),
            execution(13, 23, 1, "fail"), execution(13, 60, 2, "fail", failures=1),
            execution(13, 70, 3, "fail", failures=2),
        ],
        "outcomes": [{"job": 11, "token": 21, "call": "complete", "outcome": "refused"},
                     {"job": 11, "token": 40, "call": "complete", "outcome": "ok"},
                     {"job": 12, "token": 22, "call": "fail", "outcome": "ok"}],
        "final_jobs": [final(10, 0, "completed", 20, 1), final(11, 1, "completed", 40, 2),
                       final(12, 2, "completed", 50, 2, failures=1, planned=1),
                       final(13, 3, "dead", 70, 3, failures=3, planned=3)],
        "restart": {"unfinished_ids": [12, 13]},
    }


def violation_kinds(history: dict) -> set[str]:
    return {text.split(":")[0] for text in check_jobs(history).violations}


def test_a_clean_history_passes_and_is_counted():
    verdict = check_jobs(clean_history())
    assert verdict.ok, verdict.violations
    assert verdict.counts["superseded_executions"] == 1
    assert verdict.counts["superseded_complete_refused"] == 1
    assert verdict.counts["final:completed"] == 3 and verdict.counts["final:dead"] == 1
    assert verdict.counts["unfinished_at_restart"] == 2


def test_an_acknowledged_job_missing_or_unfinished_is_lost():
    history = clean_history()
    history["final_jobs"] = [job for job in history["final_jobs"] if job["id"] != 10]
    history["executions"] = [e for e in history["executions"] if e["job"] != 10]
    assert "lost" in violation_kinds(history)
    history = clean_history()
    history["final_jobs"][0].update(state="available", result="")
    assert "unfinished" in violation_kinds(history)


def test_an_unknown_enqueue_may_apply_once_but_must_finish():
    history = clean_history()
    history["final_jobs"].append(final(14, 4, "completed", 80, 1))
    history["executions"].append(execution(14, 80, 1))
    verdict = check_jobs(history)
    assert verdict.ok and verdict.counts["enqueue:unknown_applied"] == 1
    history["final_jobs"][-1].update(state="claimed", result="")
    assert "unfinished" in violation_kinds(history)
    history["final_jobs"].append(final(15, 4, "completed", 81, 1))
    assert {"enqueued-twice"} <= violation_kinds(history)


def test_a_job_nobody_enqueued_is_named():
    history = clean_history()
    history["final_jobs"].append(final(99, 77, "completed", 90, 1))
    history["executions"].append(execution(99, 90, 1))
    assert violation_kinds(history) == {"never-enqueued"}


def test_a_completion_under_an_older_claim_or_by_another_worker_is_named():
    history = clean_history()
    history["final_jobs"][1].update(token=21, result="w2.1:21")  # job 11 completed by its first claim
    assert {"completion-not-last-claim", "ran-after-completion"} <= violation_kinds(history)
    history = clean_history()
    history["final_jobs"][0]["result"] = "w9.1:20"
    assert violation_kinds(history) == {"completion-by-another"}


def test_two_acknowledged_completes_or_a_run_after_completion_are_named():
    history = clean_history()
    history["outcomes"][0]["outcome"] = "ok"  # the superseded complete acknowledged too
    assert violation_kinds(history) == {"completed-twice"}
    history = clean_history()
    history["executions"].append(execution(10, 99, 2))
    history["final_jobs"][0]["attempt"] = 2
    assert "ran-after-completion" in violation_kinds(history)


def test_a_claim_run_twice_or_more_runs_than_claims_is_named():
    history = clean_history()
    history["executions"].append(execution(10, 20, 1, worker="w3.1"))
    assert "claim-ran-twice" in violation_kinds(history)
    history = clean_history()
    history["executions"].append(execution(11, 30, 3, worker="w3.1"))
    assert "more-runs-than-claims" in violation_kinds(history)


def test_a_completion_no_execution_ran_is_named():
    history = clean_history()
    history["executions"] = [e for e in history["executions"] if e["job"] != 10]
    assert violation_kinds(history) == {"completion-without-execution"}


def test_dead_early_or_completed_despite_planned_failures_is_named():
    history = clean_history()
    history["final_jobs"][3].update(failures=2)  # dead after 2 of 3
    assert "dead-early" in violation_kinds(history)
    history = clean_history()
    history["final_jobs"][0].update(state="dead", failures=3, result="")
    assert {"dead-early", "failure-without-execution"} <= violation_kinds(history)
    history = clean_history()
    history["final_jobs"][2]["failures"] = 0  # meant to fail once first
    assert "failure-count" in violation_kinds(history)


def test_an_acknowledged_failure_not_counted_is_named():
    history = clean_history()
    history["outcomes"].append({"job": 13, "token": 60, "call": "fail", "outcome": "ok"})
    history["outcomes"].append({"job": 13, "token": 70, "call": "fail", "outcome": "ok"})
    history["outcomes"].append({"job": 13, "token": 23, "call": "fail", "outcome": "ok"})
    assert check_jobs(history).ok
    extra = copy.deepcopy(history)
    extra["final_jobs"][3].update(state="completed", failures=2, result="w1.1:70")
    assert "failure-not-counted" in violation_kinds(extra)


def test_the_restart_must_have_carried_unfinished_jobs_and_finished_them():
    history = clean_history()
    history["restart"] = {"unfinished_ids": []}
    assert violation_kinds(history) == {"restart-untested"}
    history = clean_history()
    history["restart"] = {"unfinished_ids": [12, 404]}
    assert violation_kinds(history) == {"restart-lost"}
