"""One fault experiment, end to end: start a 3-node cluster, run the
workloads through the SDK while a seeded nemesis injects faults, heal,
read every key one last time, check the history, write `summary.json`.

The worker threads share one pipelining client, so their concurrent
operations go as batched calls (`Batch.Call`), as an application's would;
the summary's `pipeline` says how many RPCs and batches it sent. CRDT
workers keep a client each: each starts on a different node, and CRDT
updates never travel in a batch.

Run it inside a network namespace of its own, as root, so partitions can
be made with iptables and vanish with the process:

    unshare --net -- python -m tests.faults.runner --duration 600 --seed 7 --out /tmp/soak

Without a namespace of its own (or without iptables) it runs the process
faults only (kill, pause) and says so in the summary. `--check FILE`
checks a saved history again without running anything.

Exit status: 0 every check passed; 1 a check failed (the history is saved
next to the summary, with the seed); 2 the experiment could not run.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tandemkv import errors

from .final_state import check_counter_final, check_crdt_converged, check_set_final
# The exit statuses are the shared main's, named here too for the runners and tests that read them.
from .experiment_main import EXIT_CHECK_FAILED, EXIT_HARNESS_ERROR, EXIT_OK, run_experiment_main  # noqa: F401
from .history import History, Operation, load_history, save_history
from .linearizability import check_linearizable
from .models import CLAIM, COUNTER, GROW_ONLY_SET, REGISTER, Model
from .nemesis import PROCESS_KINDS, Nemesis, expand_kinds
from .network import Network, NetworkUnavailable, bring_loopback_up, in_own_namespace
from .nodes import NodeSet
from .tokens import check_claim_tokens
from .tracking import TrackingClient
from .workloads import (
    ACTIVE_KEYS, DEFAULT_WORKLOADS, FINAL_READ_RETRY, OPS_PER_KEY_MAX, PREFIXES, WORKLOAD_KINDS, WORKLOAD_RETRY,
    LEASE_TTL_S, KeyRotation, Processes, Tally, Worker, endpoints_for, final_crdt_read, final_read,
    run_worker, try_lock, workload_of_key,
)

STARTUP_LEADER_TIMEOUT_S = 60.0
SETTLE_LEADER_TIMEOUT_S = 30.0
# All final reads together; keys not read by then are reported as errors.
FINAL_READS_S_MAX = 90.0
# Seconds the runner waits for a client thread after asking it to stop.
JOIN_TIMEOUT_S = 30.0
# Operations one client thread performs at most.
WORKER_OPS_MAX = 1_000_000
FINAL_PROCESS = "final"
# Workloads checked for linearizability, and their models (crdt is not:
# its replicas answer without coordination; it is checked for convergence).
MODELS: dict[str, Model] = {"register": REGISTER, "counter": COUNTER, "set": GROW_ONLY_SET,
                            "registry": CLAIM, "lock": CLAIM}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of workload under faults")
    parser.add_argument("--seed", type=int, default=None, help="seed of the schedule (default: random, printed)")
    parser.add_argument("--nemesis", default="all",
                        help="comma-separated kinds or groups: partition, kill, pause, all, "
                             "partition-minority, partition-leader, partition-bridge, partition-one-way, "
                             "partition-ring, or none")
    parser.add_argument("--workload", default=",".join(DEFAULT_WORKLOADS),
                        help=f"comma-separated, of {','.join(WORKLOAD_KINDS)} "
                             f"(default: {','.join(DEFAULT_WORKLOADS)})")
    parser.add_argument("--clients", type=int, default=3, help="client threads per workload")
    parser.add_argument("--out", type=Path, default=Path("faults-out"), help="directory for logs and results")
    parser.add_argument("--trust-unavailable", action="store_true",
                        help="record every Unavailable as failed (the SDK's documented contract), even after "
                             "a connection broke mid-request")
    parser.add_argument("--check", type=Path, default=None, help="re-check a saved history file and exit")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    return args


def model_of_key(key: str) -> Model:
    return MODELS[workload_of_key(key)]


def open_network(kinds: list[str], node_count: int) -> tuple[bool, Network | None, str]:
    """Whether the nodes are isolated in a namespace of our own, the network
    if partitions were asked for and can be made, and a note saying which."""
    if not in_own_namespace():
        note = "shared network namespace: nodes on 127.0.0.1 free ports"
        if any(kind not in PROCESS_KINDS for kind in kinds):
            note = "NETWORK FAULTS DISABLED: `unshare --net` is not permitted here; ran kill/pause faults only"
        return False, None, note
    bring_loopback_up()
    if all(kind in PROCESS_KINDS for kind in kinds):
        return True, None, "private network namespace; no partitions requested"
    try:
        return True, Network.open(node_count), "iptables partitions in a private network namespace"
    except NetworkUnavailable as error:
        return True, None, f"NETWORK FAULTS DISABLED: {error}; ran kill/pause faults only"


class Experiment:
    """The state of one run; `run()` returns the summary."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out: Path = args.out
        self.workloads = [w for w in args.workload.split(",") if w]
        for workload in self.workloads:
            assert workload in WORKLOAD_KINDS, f"unknown workload {workload!r}; known: {WORKLOAD_KINDS}"
        requested = [] if args.nemesis == "none" else expand_kinds(args.nemesis.split(","))
        isolated, self.network, self.network_note = open_network(requested, 3)
        self.kinds = [k for k in requested if self.network is not None or k in PROCESS_KINDS]
        self.nodes = NodeSet(self.out / "cluster", isolated=isolated, separate_groups=self.network is not None)
        self.history = History(seed=args.seed)
        self.tally = Tally()
        self.processes = Processes()
        self.rotations: dict[str, KeyRotation] = {}
        # The client the workers share; CRDT workers' own clients beside it.
        self.shared_client: TrackingClient | None = None
        self.worker_clients: list[TrackingClient] = []
        self.errors: list[str] = []
        # The nemesis once started (a harness error's summary carries its record).
        self.nemesis: Nemesis | None = None
        self.started_at = time.monotonic()

    def run(self) -> dict[str, Any]:
        try:
            self.nodes.start_all()
            self.nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
            self.rotations = {kind: KeyRotation(PREFIXES[kind], ACTIVE_KEYS[kind], OPS_PER_KEY_MAX[kind])
                              for kind in self.workloads}
            self._create_crdt_tables()
            nemesis = self._run_under_faults()
            final_values = self._settle_and_read()
        finally:
            self.nodes.stop_all()
        return self._summarize(nemesis, final_values)

    def _run_under_faults(self) -> Nemesis | None:
        stop = threading.Event()
        deadline = time.monotonic() + self.args.duration
        rotations = self.rotations
        self.shared_client = TrackingClient(self.nodes.endpoints, WORKLOAD_RETRY)
        self.worker_clients = [self.shared_client]
        threads = [self._worker_thread(kind, index, rotations[kind], stop, deadline)
                   for kind in self.workloads for index in range(self.args.clients)]
        nemesis = None
        if self.kinds:
            nemesis = self.nemesis = Nemesis(self.nodes, self.network, self.kinds, self.args.seed, self.started_at)
            threads.append(threading.Thread(target=nemesis.run, args=(stop, deadline), name="nemesis"))
        for thread in threads:
            thread.start()
        try:
            stop.wait(self.args.duration)
        finally:
            stop.set()
            for thread in threads:
                thread.join(JOIN_TIMEOUT_S)
                if thread.is_alive():
                    self.errors.append(f"thread {thread.name} did not stop within {JOIN_TIMEOUT_S} s")
            for client in self.worker_clients:
                client.close()
            if nemesis is not None:
                nemesis.heal()
                self.errors += nemesis.errors
        return nemesis

    def _create_crdt_tables(self) -> None:
        """Creates every CRDT table the crdt workload uses (through Raft,
        before any fault) and waits until every node knows it."""
        if "crdt" not in self.rotations:
            return
        tables = self.rotations["crdt"].keys()
        with TrackingClient(self.nodes.endpoints, FINAL_READ_RETRY) as client:
            for table in tables:
                client.crdt.create(table, "or_set")
        clients = self._node_clients()
        try:
            for table in tables:
                reads = final_crdt_read(clients, table)
                if len(reads) != len(clients):
                    raise TimeoutError(f"CRDT table {table} is not readable on every node: {reads}")
        finally:
            for client in clients.values():
                client.close()

    def _node_clients(self) -> dict[str, TrackingClient]:
        """One client per node, talking to that node alone."""
        return {node.name: TrackingClient([node.member.client_address], FINAL_READ_RETRY)
                for node in self.nodes.nodes}

    def _worker_thread(self, kind: str, index: int, rotation: KeyRotation, stop: threading.Event,
                       deadline: float) -> threading.Thread:
        client = self.shared_client
        if kind == "crdt":
            client = TrackingClient(endpoints_for(kind, index, self.nodes.endpoints), WORKLOAD_RETRY)
            self.worker_clients.append(client)
        rng = random.Random(f"{self.args.seed}/{kind}/{index}")
        worker = Worker(self.history, client, self.processes, self.tally, rng)
        worker.trust_unavailable = self.args.trust_unavailable
        return threading.Thread(target=run_worker, args=(kind, worker, rotation, stop, deadline, WORKER_OPS_MAX),
                                name=f"{kind}-{index}")

    def _settle_and_read(self) -> dict[str, Any]:
        """Waits for an agreed leader, then reads every key once, recording
        each read in the history (process 'final')."""
        self.nodes.wait_for_leader(SETTLE_LEADER_TIMEOUT_S)
        values: dict[str, Any] = {}
        deadline = time.monotonic() + FINAL_READS_S_MAX
        node_clients = self._node_clients()
        try:
            with TrackingClient(self.nodes.endpoints, FINAL_READ_RETRY) as client:
                for kind in self.workloads:
                    for key in self.rotations[kind].keys():
                        if time.monotonic() >= deadline:
                            self.errors.append(f"final read of {key} not tried: final reads took over "
                                               f"{FINAL_READS_S_MAX} s")
                            continue
                        self._final_read(kind, key, client, node_clients, values)
        finally:
            for node_client in node_clients.values():
                node_client.close()
        return values

    def _final_read(self, kind: str, key: str, client: TrackingClient, node_clients: dict[str, TrackingClient],
                    values: dict[str, Any]) -> None:
        """One key's final read, recorded (a lock's is a try-acquire under
        a new lease: the SDK has no call that reads a lock)."""
        try:
            lease = client.lease(LEASE_TTL_S).id if kind == "lock" else None
        except errors.TandemKVError as error:
            self.errors.append(f"final read of {key}: no lease: {error}")
            return
        handle = self.history.invoke(FINAL_PROCESS, key, *(("claim", (lease, lease)) if lease else ("read", None)))
        try:
            if kind == "crdt":
                values[key] = final_crdt_read(node_clients, key)
            elif kind == "lock":
                values[key] = try_lock(client, key, lease)
            else:
                values[key] = final_read(client, key)
        except errors.TandemKVError as error:
            self.history.fail(handle)
            self.errors.append(f"final read of {key} failed: {error}")
            return
        self.history.ok(handle, values[key])
        if kind == "crdt" and len(values[key]) != len(node_clients):
            self.errors.append(f"final read of {key}: only {[node for node, _ in values[key]]} answered")

    def _summarize(self, nemesis: Nemesis | None, final_values: dict[str, Any]) -> dict[str, Any]:
        self.errors += [f"node {name} exited by itself with code {code}" for name, code in self.nodes.crashed()]
        operations = self.history.operations()
        summary = summarize_checks(operations, final_values)
        summary.update({
            "seed": self.args.seed,
            "duration_s": self.args.duration,
            "wall_s": round(time.monotonic() - self.started_at, 1),
            "network": self.network_note,
            "nemesis_kinds": self.kinds,
            "workloads": self.workloads,
            "faults_by_kind": nemesis.counts() if nemesis else {},
            "faults_injected": len(nemesis.records) if nemesis else 0,
            "faults": nemesis.summary() if nemesis else [],
            "client_tally": dict(self.tally.counts),
            "pipeline": self.shared_client.pipeline_counts() if self.shared_client else {},
            "node_starts": {node.name: node.starts for node in self.nodes.nodes},
            "errors": self.errors,
            "replay": replay_command(self.args),
        })
        summary["ok"] = summary["checks_ok"] and not self.errors
        return summary


def summarize_checks(operations: tuple[Operation, ...], final_values: dict[str, Any]) -> dict[str, Any]:
    """Linearizability per key, then the final counter, set and CRDT
    checks and the fencing-token checks."""
    searched = [op for op in operations if workload_of_key(op.key) in MODELS]
    linearizability = check_linearizable(searched, model_of_key)
    by_key: dict[str, list[Operation]] = {}
    for operation in operations:
        by_key.setdefault(operation.key, []).append(operation)
    counters, sets, crdt, converged = [], [], [], []
    for key, value in sorted(final_values.items()):
        kind = workload_of_key(key)
        if kind == "counter":
            verdict = check_counter_final(by_key[key], value)
            if not verdict.ok:
                counters.append(f"{key}: final {value}, {verdict.verdict}: {verdict.reason}")
        elif kind == "set":
            verdict = check_set_final(by_key[key], value)
            if not verdict.ok:
                sets.append(f"{key}: {verdict.describe()}")
        elif kind == "crdt":
            crdt_verdict = check_crdt_converged(by_key[key], value)
            converged.append(f"{key}: {crdt_verdict.describe()}")
            if not crdt_verdict.ok:
                crdt.append(converged[-1])
    tokens = check_claim_tokens([op for op in operations if workload_of_key(op.key) == "registry"],
                                one_claim_per_owner=True)
    tokens += check_claim_tokens([op for op in operations if workload_of_key(op.key) == "lock"],
                                 one_claim_per_owner=False)
    return {
        "operations": len(operations),
        "outcomes": _count(op.outcome for op in operations),
        "operations_by_workload": {kind: _count(op.outcome for op in operations if workload_of_key(op.key) == kind)
                                   for kind in sorted({workload_of_key(op.key) for op in operations})},
        "claim_answers": {kind: _count(_claim_answer(op) for op in operations
                                       if workload_of_key(op.key) == kind and op.outcome == "ok")
                          for kind in ("registry", "lock") if any(workload_of_key(op.key) == kind
                                                                   for op in operations)},
        "keys_checked": len(linearizability.verdicts),
        "linearizability": linearizability.verdict,
        "linearizability_violations": [v.explanation.describe() for v in linearizability.violations()],
        "linearizability_undecided": [v.key for v in linearizability.undecided()],
        "counter_violations": counters,
        "set_violations": sets,
        "crdt_violations": crdt,
        "crdt_final": converged,
        "token_violations": tokens,
        "final_keys": len(final_values),
        "checks_ok": linearizability.ok and not counters and not sets and not crdt and not tokens,
    }


def _claim_answer(op: Operation) -> str:
    """How an ok registry or lock operation was answered, for the summary."""
    if op.kind == "claim":
        return f"claim {op.output[0]}"
    if op.kind == "release":
        return f"release {'done' if op.output else 'refused'}"
    return f"read {'free' if op.output is None else 'held'}"


def _count(outcomes: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def replay_command(args: argparse.Namespace) -> str:
    return (f"unshare --net -- python -m tests.faults.runner --seed {args.seed} --duration {args.duration:g} "
            f"--nemesis {args.nemesis} --workload {args.workload} --clients {args.clients} --out {args.out}"
            + (" --trust-unavailable" if args.trust_unavailable else ""))


def recheck(path: Path) -> tuple[dict[str, Any], bool]:
    """Checks a saved history again (final values are its 'final' reads):
    the summary of the checks, and whether every one passed."""
    saved = load_history(path)
    final_values = {op.key: op.output for op in saved.operations
                    if op.process == FINAL_PROCESS and op.outcome == "ok"}
    summary = {"seed": saved.seed, **summarize_checks(saved.operations, final_values)}
    return summary, summary["checks_ok"]


def keep_history(experiment: Experiment, summary: dict[str, Any]) -> None:
    """Saves a failed run's history next to its summary, with the replay
    command, so `--check` can look at it again."""
    history_path = experiment.out / "history.jsonl"
    save_history(history_path, experiment.history.operations(), seed=experiment.args.seed,
                 metadata={"replay": summary["replay"]})
    summary["history_file"] = str(history_path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_experiment_main(
        args, argv, module="tests.faults.runner", experiment=Experiment, replay=replay_command(args),
        banner=f"fault run: seed {args.seed}, {args.duration:g} s, out {args.out}",
        recheck=recheck, keep_history=keep_history)


if __name__ == "__main__":
    sys.exit(main())
