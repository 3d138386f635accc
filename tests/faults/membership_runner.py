"""One fault experiment whose cluster changes members while it runs: the
runner's experiment (workloads through the SDK, a seeded schedule, heal,
final reads, the checks, `summary.json`) on a `MemberNodeSet`, with the
`MembershipNemesis` adding a member (a fresh node started with --join) or
removing one (the leader among them, never below 3) every
`--member-interval` seconds, alone or alongside the faults of
`--nemesis`.

    python -m tests.faults.membership_runner --duration 40 --seed 7 --out /tmp/members
    python -m tests.faults.membership_runner --duration 600 --nemesis kill,pause,partition-minority,partition-leader \\
        --workload register,counter,set,registry,lock --out /tmp/members-soak

The clients list every slot's address (a free slot refuses connections,
a removed node answers NodeRemoved: the SDK tries another), so they
reach members added after they started. Beyond the runner's checks, every
member must list the same committed set at the end, the one the harness
made. The crdt workload is left out by default: the available plane
takes its peers from the configuration at start (docs/membership.md).
Exit status as the runner's.
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
from tandemkv.client import Client

from . import runner
from .experiment_main import run_experiment_main
from .membership import CHANGE_WALL_S_MAX, LIST_RETRY, MemberNodeSet, MembershipNemesis
from .nemesis import PROCESS_KINDS, expand_kinds
from .tracking import TrackingClient
from .workloads import WORKLOAD_KINDS, WORKLOAD_RETRY

# Slots: the three founders and room for two more members (5 voters at most).
SLOTS = 5
MEMBER_INTERVAL_S = 10.0
# How long the workloads may run past --duration while the nemesis makes
# the changes --changes-min still asks for (a slow join on a loaded machine).
OVERTIME_S_MAX = 90.0
DEFAULT_WORKLOADS = ("register", "counter", "set")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.membership_runner",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of workload under changes")
    parser.add_argument("--seed", type=int, default=None, help="seed of the schedule (default: random, printed)")
    parser.add_argument("--member-interval", type=float, default=MEMBER_INTERVAL_S,
                        help=f"seconds between membership changes (default {MEMBER_INTERVAL_S:g})")
    parser.add_argument("--changes-min", type=int, default=2,
                        help="changes made at the least: past --duration the workloads run on while the "
                             f"nemesis makes them, for {OVERTIME_S_MAX:g} s at most (default 2: an addition "
                             "and a removal)")
    parser.add_argument("--slots", type=int, default=SLOTS, help=f"node slots, so members at most (default {SLOTS})")
    parser.add_argument("--nemesis", default="none",
                        help="faults alongside the changes, as the runner's --nemesis (default: none)")
    parser.add_argument("--workload", default=",".join(DEFAULT_WORKLOADS),
                        help=f"comma-separated, of {','.join(WORKLOAD_KINDS)}")
    parser.add_argument("--clients", type=int, default=3, help="client threads per workload")
    parser.add_argument("--out", type=Path, default=Path("faults-members-out"), help="logs and results")
    args = parser.parse_args(argv)
    args.trust_unavailable = False
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    return args


def replay_command(args: argparse.Namespace) -> str:
    return (f"python -m tests.faults.membership_runner --seed {args.seed} --duration {args.duration:g} "
            f"--member-interval {args.member_interval:g} --changes-min {args.changes_min} --slots {args.slots} --nemesis {args.nemesis} "
            f"--workload {args.workload} --clients {args.clients} --out {args.out}")


class MembershipExperiment(runner.Experiment):
    """The runner's experiment on slots whose members change."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out: Path = args.out
        self.workloads = [w for w in args.workload.split(",") if w]
        for workload in self.workloads:
            assert workload in WORKLOAD_KINDS, f"unknown workload {workload!r}; known: {WORKLOAD_KINDS}"
        requested = [] if args.nemesis == "none" else expand_kinds(args.nemesis.split(","))
        isolated, self.network, self.network_note = runner.open_network(requested, args.slots)
        self.kinds = [k for k in requested if self.network is not None or k in PROCESS_KINDS]
        self.nodes = MemberNodeSet(self.out / "cluster", args.slots, isolated=isolated,
                                   separate_groups=self.network is not None)
        self.history = runner.History(seed=args.seed)
        self.tally = runner.Tally()
        self.processes = runner.Processes()
        self.rotations = {}
        self.shared_client: TrackingClient | None = None
        self.worker_clients: list[TrackingClient] = []
        self.errors: list[str] = []
        self.members_final: dict[str, list[str]] = {}
        self.started_at = time.monotonic()
        self.nemesis: MembershipNemesis | None = None

    def run(self) -> dict[str, Any]:
        try:
            for node in self.nodes.members():
                self.nodes.start(node.name)
            self.nodes.wait_for_leader(runner.STARTUP_LEADER_TIMEOUT_S)
            self.rotations = {kind: runner.KeyRotation(runner.PREFIXES[kind], runner.ACTIVE_KEYS[kind],
                                                       runner.OPS_PER_KEY_MAX[kind]) for kind in self.workloads}
            self._create_crdt_tables()
            nemesis = self._run_under_faults()
            final_values = self._settle_and_read()
            self._check_members()
        finally:
            self.nodes.stop_all()
        summary = self._summarize(nemesis, final_values)
        summary.update(members_final=self.members_final, replay=replay_command(self.args),
                       changes_done=nemesis.changes_done,
                       member_interval_s=self.args.member_interval,
                       membership_changes=[r for r in summary["faults"] if r["kind"].startswith("member-")])
        summary["ok"] = summary["checks_ok"] and not self.errors
        return summary

    def _run_under_faults(self) -> MembershipNemesis:
        stop = threading.Event()
        deadline = time.monotonic() + self.args.duration
        self.shared_client = TrackingClient(self.nodes.endpoints, WORKLOAD_RETRY)
        self.worker_clients = [self.shared_client]
        threads = [self._worker_thread(kind, index, self.rotations[kind], stop, deadline + OVERTIME_S_MAX)
                   for kind in self.workloads for index in range(self.args.clients)]
        nemesis = MembershipNemesis(self.nodes, self.network, self.kinds, self.args.seed, self.started_at,
                                    self.args.member_interval, self.args.changes_min)
        self.nemesis = nemesis
        scheduler = threading.Thread(target=nemesis.run, args=(stop, deadline), name="nemesis")
        threads.append(scheduler)
        for thread in threads:
            thread.start()
        try:
            stop.wait(self.args.duration)
            # The workloads run on while the nemesis makes the changes it still owes.
            scheduler.join(OVERTIME_S_MAX)
        finally:
            stop.set()
            for thread in threads:
                # The nemesis may be in a change; it ends within CHANGE_WALL_S_MAX.
                thread.join(CHANGE_WALL_S_MAX if thread.name == "nemesis" else runner.JOIN_TIMEOUT_S)
                if thread.is_alive():
                    self.errors.append(f"thread {thread.name} did not stop in time")
            for client in self.worker_clients:
                client.close()
            nemesis.heal()
            self.errors += nemesis.errors
        return nemesis

    def _node_clients(self) -> dict[str, TrackingClient]:
        return {node.name: TrackingClient([node.member.client_address], runner.FINAL_READ_RETRY)
                for node in self.nodes.members()}

    def _check_members(self) -> None:
        """Every member lists the committed set the harness made."""
        expected = sorted(node.name for node in self.nodes.members())
        for node in self.nodes.members():
            try:
                with Client([node.member.client_address], retry=LIST_RETRY) as client:
                    self.members_final[node.name] = client.members.list().names
            except errors.TandemKVError as error:
                self.members_final[node.name] = [f"error: {error.message}"]
        wrong = {name: names for name, names in self.members_final.items() if names != expected}
        if wrong:
            self.errors.append(f"members expected {expected} everywhere; differ: {wrong}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_experiment_main(
        args, argv, module="tests.faults.membership_runner", experiment=MembershipExperiment,
        replay=replay_command(args), keep_history=runner.keep_history,
        banner=f"membership fault run: seed {args.seed}, {args.duration:g} s, a change every "
               f"{args.member_interval:g} s, out {args.out}")


if __name__ == "__main__":
    sys.exit(main())
