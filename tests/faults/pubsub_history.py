"""The records of a pub/sub fault run, as the workloads (pubsub_workload.py,
pubsub_subscriber.py) make them and the checks (pubsub_check.py) read
them; plain data, saved as JSON beside the summary. All times are seconds
since the run began, on the nemesis's clock.

- `Publish`: one publish attempt: our publisher id and its number, the
  topic, the node it went to, when it was invoked and answered, its outcome
  (ok / unknown / fail) and, for a durable one, its offset.
- `Segment`: one subscription, from the moment `subscribe` returned to the
  moment it ended (closed by the workload, or broken by a fault), with every
  `Event` it yielded: messages, `Lagged(n)` notices, retention gaps.
- `Fault`: one window of the nemesis schedule (kind, targets, start, end).
- `Verdict`: what a check counted and the violations it found.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable

# Violations described in full per check; the rest are counted.
DESCRIBED_MAX = 20


@dataclasses.dataclass(frozen=True)
class Publish:
    publisher: str
    seq: int
    topic: str
    node: str  # where it went ("" when a durable publish was routed by the SDK)
    invoke_s: float
    complete_s: float
    outcome: str  # ok / unknown / fail
    offset: int = 0  # durable, when ok

    @property
    def payload(self) -> str:
        return payload_of(self.publisher, self.seq)


@dataclasses.dataclass(frozen=True)
class Event:
    at_s: float
    kind: str  # message / lagged / gap
    topic: str = ""
    payload: str = ""
    offset: int = 0  # durable message; a gap's from_offset
    first_offset: int = 0  # a gap's first retained offset
    stamp: tuple = ()  # best-effort: the node's (node, incarnation, session, seq)
    missed: int = 0  # lagged


@dataclasses.dataclass
class Segment:
    subscriber: str  # one subscriber's segments are one session
    node: str
    topics: tuple
    prefixes: tuple = ()
    durable: bool = False
    from_offset: int | None = None
    open_s: float = 0.0
    end_s: float = 0.0
    end: str = ""  # closed / broken: <why>
    drained: bool = False  # open until the end of the run, after the heal
    slow: bool = False  # stalls on purpose (its delays are its own, not the relay's)
    events: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    targets: tuple
    start_s: float
    end_s: float | None


def payload_of(publisher: str, seq: int) -> str:
    return f"{publisher}:{seq}"


def parse_payload(payload: str) -> tuple[str, int] | None:
    publisher, _, seq = payload.rpartition(":")
    return (publisher, int(seq)) if publisher and seq.isdigit() else None


def faults_from_nemesis(records: Iterable[dict[str, Any]]) -> list[Fault]:
    return [Fault(r["kind"], tuple(r["targets"]), r["start_s"], r.get("end_s")) for r in records]


@dataclasses.dataclass
class Verdict:
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    violations: list = dataclasses.field(default_factory=list)
    # Best-effort: seconds from a publish's answer to its delivery (slow readers left out).
    delays: list = dataclasses.field(default_factory=list)

    def violate(self, kind: str, text: str) -> None:
        self.counts[f"violation:{kind}"] += 1
        if len(self.violations) < DESCRIBED_MAX:
            self.violations.append(f"{kind}: {text}")

    @property
    def ok(self) -> bool:
        return not any(name.startswith("violation:") for name in self.counts)

    def as_dict(self) -> dict[str, Any]:
        summary = {"ok": self.ok, "counts": dict(sorted(self.counts.items())), "violations": self.violations}
        if self.delays:
            delays = sorted(self.delays)
            summary["delivery_delay_s"] = {"p50": round(delays[len(delays) // 2], 3),
                                           "p99": round(delays[len(delays) * 99 // 100], 3),
                                           "max": round(delays[-1], 3)}
        return summary


def holds(segment: Segment, topic: str) -> bool:
    """Whether `segment` subscribed to `topic` (by name or by a prefix)."""
    return topic in segment.topics or any(topic.startswith(prefix) for prefix in segment.prefixes)
