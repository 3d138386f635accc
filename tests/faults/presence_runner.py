"""One presence fault run, end to end: three `tandemkv serve` processes,
presence clients on every node (presence_workload.py) while the seeded
nemesis kills, pauses and partitions; then heal, hold (clients only renew
what they hold), and check (presence_check.py): no listed entry outlived
its bound during the run, and after the heal every node lists the same
entries as the model, within the bound the record gives.

    python -m tests.faults.presence_runner --duration 30 --seed 7 --out /tmp/presence-faults

Like the main runner it re-starts itself under `unshare --net` (partitions
with iptables; without, kills and pauses only, said in the summary). It
prints the seed first; `summary.json` in `--out` holds the verdicts, the
counts and the `replay` command. Exit status: 0 every check passed, 1 a
check failed, 2 the run could not be made.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .experiment_main import run_experiment_main
from .nemesis import Nemesis, expand_kinds
from .nodes import NodeSet
from .presence_check import (HELD, Fault, check_bounds, convergence_deadline, differences, model)
from .presence_workload import TOPICS, PresenceClient, Record, Sampler
from .runner import open_network

STARTUP_LEADER_TIMEOUT_S = 60.0
# The nemesis kind this run adds: a clean stop (SIGTERM), and how long a node may take to exit on it.
STOP = "stop"
STOP_TIMEOUT_S = 30.0
CLIENTS_PER_NODE = 2
# After the heal: how long every node may take to answer again (a killed one restarts).
NODES_BACK_TIMEOUT_S = 60.0
CONVERGE_POLL_S = 0.5
# Longest the nemesis may take to finish its fault in progress once asked to stop (a clean stop waits for an exit).
NEMESIS_JOIN_TIMEOUT_S = STOP_TIMEOUT_S + 30.0


class TimedNemesis(Nemesis):
    """The shared nemesis, noting when each fault was surely in place (a
    leader fault may look the leader up for seconds after its start), with
    one kind more: `stop`, SIGTERM to one node (the leader every other
    time), in place once its process has exited, started again at heal."""

    def __init__(self, nodes: NodeSet, network: Any, kinds: list[str], seed: int, started_at: float):
        super().__init__(nodes, network, [k for k in kinds if k != STOP] or ["kill"], seed, started_at)
        self.kinds = list(kinds)
        self.applied_s: dict[int, float] = {}

    def _apply(self, kind: str, record: Any, leader_turn: bool) -> None:
        super()._apply(kind, record, leader_turn)
        self.applied_s[id(record)] = self._now()

    def _process_fault(self, kind: str, record: Any, leader_turn: bool) -> None:
        if kind != STOP:
            super()._process_fault(kind, record, leader_turn)
            return
        index = self._leader_index(record) if leader_turn else self.rng.randrange(len(self.nodes.nodes))
        node = self.nodes.nodes[index]
        record.targets = [node.name]
        node.killed = True   # its exit is ours, not a crash
        node.process.send_signal(signal.SIGTERM)
        try:
            code = node.process.wait(timeout=STOP_TIMEOUT_S)
            record.note += f"; exited {code}"
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(timeout=STOP_TIMEOUT_S)
            self.errors.append(f"{node.name} did not stop within {STOP_TIMEOUT_S} s of SIGTERM")
        self._killed.append(node.name)

    def faults(self, now_s: float) -> list[Fault]:
        return [Fault(r.kind, tuple(r.targets), r.start_s, self.applied_s.get(id(r), r.end_s or now_s),
                      r.end_s if r.end_s is not None else now_s) for r in self.records]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.presence_runner",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of workload under faults")
    parser.add_argument("--seed", type=int, default=None, help="seed of the schedule (default: random, printed)")
    parser.add_argument("--nemesis", default="all,stop",
                        help="kinds or groups, as for tests.faults.runner, and stop (SIGTERM); or none")
    parser.add_argument("--out", type=Path, default=Path("presence-faults-out"), help="logs and summary.json")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    return args


class PresenceRun:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        names = [] if args.nemesis == "none" else args.nemesis.split(",")
        requested = expand_kinds([name for name in names if name != STOP]) + [STOP] * (STOP in names)
        isolated, self.network, self.network_note = open_network([k for k in requested if k != STOP], 3)
        self.kinds = [k for k in requested if self.network is not None or k in ("kill", "pause", STOP)]
        self.nodes = NodeSet(args.out / "cluster", isolated=isolated, separate_groups=self.network is not None)
        self.started_at = time.monotonic()
        self.record = Record(self.started_at)
        self.errors: list[str] = []
        # The nemesis once started (a harness error's summary carries its record).
        self.nemesis: TimedNemesis | None = None

    def run(self) -> dict[str, Any]:
        endpoints = {node.name: node.member.client_address for node in self.nodes.nodes}
        clients: list[PresenceClient] = []
        sampler = None
        nemesis = None
        try:
            self.nodes.start_all()
            self.nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
            sampler = Sampler(endpoints, self.record)
            for node, endpoint in endpoints.items():
                for index in range(CLIENTS_PER_NODE):
                    name = f"{node}-c{index}"
                    clients.append(PresenceClient(name, node, endpoint, self.record,
                                                  random.Random(f"{self.args.seed}/{name}")))
            for thread in [sampler.thread, *(client.thread for client in clients)]:
                thread.start()
            nemesis = self._faults()
            for client in clients:
                client.holding.set()
            healed_s = self._nodes_back(sampler)
            final = self._converge(sampler, nemesis, healed_s)
        finally:
            for client in clients:
                client.close()
            if sampler is not None:
                sampler.close()
            self.nodes.stop_all()
        return self._summarize(nemesis, healed_s, final)

    def _faults(self) -> TimedNemesis | None:
        stop = threading.Event()
        deadline = time.monotonic() + self.args.duration
        nemesis = None
        if self.kinds:
            nemesis = self.nemesis = TimedNemesis(self.nodes, self.network, self.kinds, self.args.seed,
                                                  self.started_at)
            thread = threading.Thread(target=nemesis.run, args=(stop, deadline), name="nemesis")
            thread.start()
        stop.wait(self.args.duration)
        stop.set()
        if nemesis is not None:
            thread.join(NEMESIS_JOIN_TIMEOUT_S)
            if thread.is_alive():
                self.errors.append(f"the nemesis did not stop within {NEMESIS_JOIN_TIMEOUT_S} s")
            nemesis.heal()
            self.errors += nemesis.errors
        return nemesis

    def _nodes_back(self, sampler: Sampler) -> float:
        """When, after the heal, every node answered a list again."""
        deadline = time.monotonic() + NODES_BACK_TIMEOUT_S
        while time.monotonic() < deadline:
            answers = sampler.list_all()
            if all(listing is not None for topics in answers.values() for listing in topics.values()):
                return self.record.now()
            time.sleep(CONVERGE_POLL_S)
        raise TimeoutError(f"not every node answered within {NODES_BACK_TIMEOUT_S} s of the heal: "
                           f"{self.nodes.describe()}")

    def _converge(self, sampler: Sampler, nemesis: TimedNemesis | None, healed_s: float) -> dict[str, Any]:
        """Polls every node until all list the model, or the bound passes."""
        while True:
            now = self.record.now()
            with self.record.lock:
                faults = nemesis.faults(now) if nemesis else []
                deadline = convergence_deadline(self.record.sessions, faults, healed_s)
            answers = sampler.list_all()
            with self.record.lock:
                found = [f"{topic}: {line}" for topic in TOPICS
                         for line in differences(model(self.record.sessions, topic),
                                                 {node: answers[node][topic] for node in answers})]
            if not found:
                return {"converged": True, "converged_after_heal_s": round(self.record.now() - healed_s, 2),
                        "deadline_after_heal_s": round(deadline - healed_s, 2), "final_differences": []}
            if now > deadline:
                return {"converged": False, "converged_after_heal_s": None,
                        "deadline_after_heal_s": round(deadline - healed_s, 2), "final_differences": found[:20]}
            time.sleep(CONVERGE_POLL_S)

    def _summarize(self, nemesis: TimedNemesis | None, healed_s: float, final: dict[str, Any]) -> dict[str, Any]:
        record = self.record
        faults = nemesis.faults(record.now()) if nemesis else []
        verdict = check_bounds(record.sessions, record.observations, faults)
        ends: dict[str, int] = {}
        for session in record.sessions:
            ends[session.end] = ends.get(session.end, 0) + 1
        held_entries = sum(len(metas) for topic in TOPICS for metas in model(record.sessions, topic).values())
        summary = {
            "seed": self.args.seed, "duration_s": self.args.duration, "network": self.network_note,
            "wall_s": round(record.now(), 1), "healed_s": round(healed_s, 2),
            "faults_by_kind": nemesis.counts() if nemesis else {},
            "faults": [f.__dict__ | {"targets": list(f.targets)} for f in faults],
            "calls": dict(sorted(record.counts.items())), "sessions_by_end": ends, "entries_held": held_entries,
            "observations": len(record.observations), "entries_checked": verdict.entries_checked,
            "bound_violations": verdict.violations, "bound_violations_shown": verdict.shown,
            **final, "unexpected": record.unexpected, "errors": self.errors + [
                f"node {name} exited by itself with code {code}" for name, code in self.nodes.crashed()],
            "replay": replay_command(self.args),
        }
        summary["ok"] = (not verdict.violations and final["converged"] and not record.unexpected
                         and not summary["errors"] and HELD in ends)
        return summary


def replay_command(args: argparse.Namespace) -> str:
    return (f"python -m tests.faults.presence_runner --seed {args.seed} --duration {args.duration:g} "
            f"--nemesis {args.nemesis} --out {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_experiment_main(
        args, argv, module="tests.faults.presence_runner", experiment=PresenceRun, replay=replay_command(args),
        banner=f"presence fault run: seed {args.seed}, {args.duration:g} s, out {args.out}")


if __name__ == "__main__":
    sys.exit(main())
