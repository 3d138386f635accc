"""One pub/sub fault experiment: a 3-node cluster, durable and best-effort
publishers (pubsub_workload.py) and subscribers (pubsub_subscriber.py)
through the SDK, the seeded nemesis of the KV runner (kills, pauses,
partitions), then heal, let the subscribers catch up, replay each durable
topic on every node, and check the history (pubsub_check.py);
`summary.json` and `history.json` in `--out`.

    unshare --net -- python -m tests.faults.pubsub_runner --duration 30 --seed 7 --out /tmp/pubsub

It re-starts itself in a network namespace of its own when it can, as
tests.faults.runner does (partitions need one); without, it runs the kill
and pause faults only and says so. `--check FILE` checks a saved history
again. Exit status: 0 every check passed; 1 a check failed (the history is
saved next to the summary); 2 the experiment could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .experiment_main import run_experiment_main
from .nemesis import PROCESS_KINDS, Nemesis, expand_kinds
from .nodes import NodeSet
from .pubsub_check import check_best_effort, check_durable
from .pubsub_history import Event, Fault, Publish, Segment, faults_from_nemesis, holds
from .pubsub_subscriber import SubscriberLoop
from .pubsub_workload import Recorder, best_effort_publisher, burst_publisher, durable_publisher, home_first
from .runner import open_network

STARTUP_LEADER_TIMEOUT_S = 60.0
SETTLE_LEADER_TIMEOUT_S = 30.0
# How long every subscriber gets to open its first subscription.
SUBSCRIBED_TIMEOUT_S = 20.0
# After the heal: how long subscribers get to catch up (durable: the last
# acknowledged offset; best-effort: each publisher's last message), and how
# long each node's final replay of the durable topics gets.
DRAIN_S_MAX = 20.0
FINAL_REPLAY_S_MAX = 20.0
# ...and more for a long run: each replay reads a topic's whole log, one
# message a response (about 250 messages/s each with six at once on 2
# loaded cores), so it gets a second per this many messages on top.
FINAL_REPLAY_MESSAGES_PER_S_MIN = 100
# Seconds the runner waits for a client thread after asking it to stop.
JOIN_TIMEOUT_S = 15.0
DURABLE_TOPICS = ("durable/0", "durable/1")
DURABLE_PUBLISHERS_PER_TOPIC = 2
BEST_EFFORT_TOPICS = ("live/0", "live/1")
BEST_EFFORT_PREFIX = "live/"
# Bursts on a topic of their own, read by a subscriber that stalls (Lagged).
BURST_TOPIC = "burst/0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.pubsub_runner",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of workload under faults")
    parser.add_argument("--seed", type=int, default=None, help="seed of the schedule (default: random, printed)")
    parser.add_argument("--nemesis", default="all", help="kinds or groups, as tests.faults.runner takes them")
    parser.add_argument("--out", type=Path, default=Path("faults-pubsub-out"), help="logs and results")
    parser.add_argument("--check", type=Path, default=None, help="re-check a saved history file and exit")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    return args


class PubSubExperiment:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        requested = [] if args.nemesis == "none" else expand_kinds(args.nemesis.split(","))
        isolated, self.network, self.network_note = open_network(requested, 3)
        self.kinds = [k for k in requested if self.network is not None or k in PROCESS_KINDS]
        self.nodes = NodeSet(args.out / "cluster", isolated=isolated, separate_groups=self.network is not None)
        self.started_at = time.monotonic()
        self.recorder = Recorder(self.started_at)
        self.errors: list[str] = []
        self.nemesis: Nemesis | None = None
        self.phases: dict[str, float] = {}

    def run(self) -> dict[str, Any]:
        try:
            self.nodes.start_all()
            self.nodes.wait_for_leader(STARTUP_LEADER_TIMEOUT_S)
            durable_loops, live_loops = self._subscribers()
            if not wait_until(lambda: all(loop.open_segment() for loop in durable_loops + live_loops),
                              SUBSCRIBED_TIMEOUT_S):
                raise TimeoutError(f"not every subscriber subscribed within {SUBSCRIBED_TIMEOUT_S} s")
            self.phases["faults_from_s"] = self.recorder.now()
            self._publish_under_faults()
            self.phases["healed_at_s"] = self.recorder.now()
            for loop in live_loops:
                loop.stop_stalling()
            self.nodes.wait_for_leader(SETTLE_LEADER_TIMEOUT_S)
            self.phases["leader_at_s"] = self.recorder.now()
            if not wait_until(lambda: durable_caught_up(self.recorder, durable_loops)
                              and best_effort_drained(self.recorder, live_loops), DRAIN_S_MAX):
                self.phases["drain_timed_out"] = 1.0
            self.phases["drained_at_s"] = self.recorder.now()
            self._stop(durable_loops + live_loops)
            self._final_replays()
            self.phases["replayed_at_s"] = self.recorder.now()
        finally:
            self.nodes.stop_all()
        return self._summarize()

    def _subscribers(self) -> tuple[list[SubscriberLoop], list[SubscriberLoop]]:
        endpoints = self.nodes.endpoints
        seed = self.args.seed
        durable = [SubscriberLoop(self.recorder, f"durable-{t}-{k}", home_first(endpoints, k), (topic,),
                                  durable=True, rng=random.Random(f"{seed}/durable/{t}/{k}")).start()
                   for t, topic in enumerate(DURABLE_TOPICS) for k in range(len(endpoints))]
        live = [SubscriberLoop(self.recorder, f"live-{k}", home_first(endpoints, k),
                               () if k == 0 else BEST_EFFORT_TOPICS, (BEST_EFFORT_PREFIX,) if k == 0 else ())
                .start() for k in range(len(endpoints))]
        live.append(SubscriberLoop(self.recorder, "slow", home_first(endpoints, 1), (BURST_TOPIC,),
                                   moves=False, stalls=True).start())
        return durable, live

    def _publish_under_faults(self) -> None:
        stop = threading.Event()
        endpoints = self.nodes.endpoints
        threads = [threading.Thread(target=durable_publisher, name=f"durable publisher {t}.{k}",
                                    args=(self.recorder, f"d{t}.{k}", home_first(endpoints, k), topic, stop))
                   for t, topic in enumerate(DURABLE_TOPICS) for k in range(DURABLE_PUBLISHERS_PER_TOPIC)]
        threads += [threading.Thread(target=best_effort_publisher, name=f"live publisher {node.name}",
                                     args=(self.recorder, f"p-{node.name}", node.member.client_address, node.name,
                                           list(BEST_EFFORT_TOPICS), random.Random(f"{self.args.seed}/live/{k}"),
                                           stop))
                    for k, node in enumerate(self.nodes.nodes)]
        first = self.nodes.nodes[0]
        threads.append(threading.Thread(target=burst_publisher, name="burst publisher", args=(
            self.recorder, f"burst-{first.name}", first.member.client_address, first.name, BURST_TOPIC, stop)))
        if self.kinds:
            self.nemesis = Nemesis(self.nodes, self.network, self.kinds, self.args.seed, self.started_at)
            deadline = time.monotonic() + self.args.duration
            threads.append(threading.Thread(target=self.nemesis.run, args=(stop, deadline), name="nemesis"))
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
            if self.nemesis is not None:
                self.nemesis.heal()
                self.errors += self.nemesis.errors

    def _stop(self, loops: list[SubscriberLoop]) -> None:
        for loop in loops:
            loop.stop()
        for loop in loops:
            loop.thread.join(JOIN_TIMEOUT_S)
            if loop.thread.is_alive():
                self.errors.append(f"{loop.name} did not stop within {JOIN_TIMEOUT_S} s")

    def _final_replays(self) -> None:
        """Each durable topic read on each node alone, from its lowest
        acknowledged offset up to the last (so a long run whose oldest
        messages retention dropped gets a gap for them, not a silent start
        at the first retained): every node holds the same log."""
        with self.recorder.lock:
            lowest = {topic: min((p.offset for p in self.recorder.durable_publishes
                                  if p.topic == topic and p.outcome == "ok"), default=0)
                      for topic in DURABLE_TOPICS}
        loops = [SubscriberLoop(self.recorder, f"replay-{node.name}-{t}", [node.member.client_address], (topic,),
                                durable=True, replays=False, moves=False, from_offset=lowest[topic]).start()
                 for node in self.nodes.nodes for t, topic in enumerate(DURABLE_TOPICS)]
        longest = max((len([p for p in self.recorder.durable_publishes if p.topic == topic])
                       for topic in DURABLE_TOPICS), default=0)
        wait_until(lambda: durable_caught_up(self.recorder, loops),
                   FINAL_REPLAY_S_MAX + longest / FINAL_REPLAY_MESSAGES_PER_S_MIN)
        self._stop(loops)

    def _summarize(self) -> dict[str, Any]:
        self.errors += [f"node {name} exited by itself with code {code}" for name, code in self.nodes.crashed()]
        self.errors += self.recorder.errors
        faults = self.nemesis.summary() if self.nemesis else []
        history = history_of(self.recorder, faults)
        checking_from = time.monotonic()
        summary = check_history(history)
        self.phases["check_s"] = round(time.monotonic() - checking_from, 1)
        summary.update({
            "seed": self.args.seed, "duration_s": self.args.duration,
            "wall_s": round(time.monotonic() - self.started_at, 1), "network": self.network_note,
            "nemesis_kinds": self.kinds, "faults_by_kind": self.nemesis.counts() if self.nemesis else {},
            "faults": faults, "phases": self.phases, "node_starts": {n.name: n.starts for n in self.nodes.nodes},
            "errors": self.errors, "replay": replay_command(self.args),
        })
        summary["ok"] = summary["checks_ok"] and not self.errors
        path = self.args.out / "history.json"
        path.write_text(json.dumps(history))
        summary["history_file"] = str(path)
        return summary


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    """Polls `condition` until it holds or `timeout_s` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def best_effort_drained(recorder: Recorder, loops: list[SubscriberLoop]) -> bool:
    """Every open best-effort segment has each publisher's last acknowledged
    message on each topic it holds, if it was open when that was sent (the
    relay keeps one publisher's order, so the rest arrived or are lost)."""
    last: dict[tuple[str, str], Publish] = {}
    with recorder.lock:
        for p in recorder.best_effort_publishes:
            if p.outcome == "ok":
                last[(p.publisher, p.topic)] = p
    for loop in loops:
        segment = loop.open_segment()
        if segment is None:
            return False
        got = {event.payload for event in list(segment.events) if event.kind == "message"}
        if any(p.invoke_s > segment.open_s and holds(segment, p.topic) and p.payload not in got
               for p in last.values()):
            return False
    return True


def durable_caught_up(recorder: Recorder, loops: list[SubscriberLoop]) -> bool:
    """Every durable subscriber has read its topic up to the last
    acknowledged offset."""
    with recorder.lock:
        last: dict[str, int] = {}
        for p in recorder.durable_publishes:
            if p.outcome == "ok":
                last[p.topic] = max(last.get(p.topic, -1), p.offset)
    return all(loop.reached() >= last.get(loop.topics[0], -1) for loop in loops)


def history_of(recorder: Recorder, faults: list[dict[str, Any]]) -> dict[str, Any]:
    with recorder.lock:
        return {"durable_publishes": [dataclasses.asdict(p) for p in recorder.durable_publishes],
                "best_effort_publishes": [dataclasses.asdict(p) for p in recorder.best_effort_publishes],
                "segments": [dataclasses.asdict(s) for s in recorder.segments], "faults": faults}


def check_history(history: dict[str, Any]) -> dict[str, Any]:
    """Both checks over a history (as `history_of` builds it, or loaded)."""
    segments = [Segment(**{**s, "topics": tuple(s["topics"]), "prefixes": tuple(s["prefixes"]),
                           "events": [Event(**{**e, "stamp": tuple(e["stamp"])}) for e in s["events"]]})
                for s in history["segments"]]
    faults: list[Fault] = faults_from_nemesis(history["faults"])
    durable = check_durable([Publish(**p) for p in history["durable_publishes"]],
                            [s for s in segments if s.durable])
    best_effort = check_best_effort([Publish(**p) for p in history["best_effort_publishes"]],
                                    [s for s in segments if not s.durable], faults)
    return {"durable": durable.as_dict(), "best_effort": best_effort.as_dict(),
            "segments": len(segments), "checks_ok": durable.ok and best_effort.ok}


def replay_command(args: argparse.Namespace) -> str:
    return (f"unshare --net -- python -m tests.faults.pubsub_runner --seed {args.seed} "
            f"--duration {args.duration:g} --nemesis {args.nemesis} --out {args.out}")


def recheck(path: Path) -> tuple[dict[str, Any], bool]:
    """Checks a saved history.json again: the checks' summary, and whether both passed."""
    summary = check_history(json.loads(path.read_text()))
    return summary, summary["checks_ok"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_experiment_main(
        args, argv, module="tests.faults.pubsub_runner", experiment=PubSubExperiment, replay=replay_command(args),
        banner=f"pub/sub fault run: seed {args.seed}, {args.duration:g} s, out {args.out}", recheck=recheck)


if __name__ == "__main__":
    sys.exit(main())
