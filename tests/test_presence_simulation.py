"""Three presence engines in a seeded simulation: a virtual clock, clocks
that disagree, frames dropped, duplicated and reordered, partitions, nodes
killed or stopped cleanly (a goodbye) and started again as new
incarnations, clients that leave politely and clients that crash.

Goal:
- after the network heals every live node lists exactly the entries of the
  live owners' open sessions, the same on every node: no zombie of a
  killed incarnation, of a crashed client or of an untracked entry;
- no entry outlives its bound, on any node, at any step: a crashed
  client's entries are gone by its last renewal + TTL + the clock skew, a
  killed node's by its last frame + PRESENCE_NODE_DOWN_MS + the skew; a
  node that takes a stopped node's goodbye holds nothing of it from then on
  (a goodbye delayed past the node's restart touches nothing of the new
  incarnation);
- at every step, every node's diffs folded from its start give its list,
  in Phoenix's shape (one meta per tracking session); every copy a node
  holds is exactly a past state of its owner; no node holds an incarnation
  once it holds a later one of the same node;
- tracking goes on on both sides of a partition (there is no quorum).

Method: every fault is drawn from the seed (printed in every assertion, so
a failure replays exactly); the bounds and periods are shortened (engine
options) so a run covers many of them. Nothing here waits on real time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from tandemkv.server.available.presence import OwnerId, PresenceEngine, apply_diff, wire
from tandemkv.server.available.presence.model import meta_of

NODES = ("a", "b", "c")
SECRET = b"simulation secret"
STEP_MS = 20
HEARTBEAT_MS = 200
DOWN_MS = 1_000
SKEW_MS = 100
TTL_MS = 1_500
CHAOS_MS = 30_000
HEAL_MS = 3 * DOWN_MS + 2 * TTL_MS
TOPICS = (b"lobby", b"room:1", b"room:2")
KEYS = tuple(b"user%d" % number for number in range(6))


@dataclass
class Client:
    node: str
    owner: OwnerId
    session: int
    tracked: set = field(default_factory=set)
    alive: bool = True


class Simulation:
    def __init__(self, seed: int, drop: float = 0.1, duplicate: float = 0.05):
        self.seed = seed
        self.random = random.Random(seed)
        self.drop, self.duplicate = drop, duplicate
        self.t = 0
        self.skew = {node: self.random.randint(-SKEW_MS // 2, SKEW_MS // 2) for node in NODES}
        self.incarnation = {node: 0 for node in NODES}
        self.engines: dict[str, PresenceEngine | None] = {}
        self.folded: dict[str, dict] = {}
        # (delivery time, tie-break, sender, recipient, frame)
        self.in_flight: list[tuple[int, float, str, str, bytes]] = []
        self.cut: set[frozenset] = set()
        self.clients: list[Client] = []
        self.next_session = 1
        self.last_sent: dict[OwnerId, int] = {}
        self.renewed: dict[tuple[OwnerId, int], int] = {}
        # owner -> version -> its state then (its own copy), to hold every replica's copy against.
        self.history: dict[OwnerId, dict[int, object]] = {}
        # A goodbye frame's bytes -> the incarnation that said it.
        self.goodbyes: dict[bytes, OwnerId] = {}
        self.counted = {"kills": 0, "restarts": 0, "partitions": 0, "crashes": 0, "tracked_while_cut": 0,
                        "stops": 0, "goodbyes_taken": 0}
        for node in NODES:
            self.start(node)

    # -- the world --------------------------------------------------------

    def clock(self, node: str) -> int:
        return self.t + self.skew[node]

    def start(self, node: str) -> None:
        self.incarnation[node] += 1
        owner = OwnerId(node, self.incarnation[node])
        self.engines[node] = PresenceEngine(owner, SECRET, self.clock(node), set(NODES), heartbeat_ms=HEARTBEAT_MS,
                                            node_down_ms=DOWN_MS, clock_skew_ms_max=SKEW_MS,
                                            frame_bytes_max=4 * 1024)
        self.folded[node] = {}
        self.history[owner] = {0: self.engines[node].replica.copy_state(owner)}

    def stop_cleanly(self, node: str) -> None:
        """The node says goodbye (its frames cross the same lossy network) and stops."""
        output = self.engines[node].goodbye(self.clock(node))
        self.goodbyes.update((data, self.engines[node].owner) for _, data in output.frames)
        self.take(node, output)
        self.kill(node)
        self.counted["kills"] -= 1
        self.counted["stops"] += 1

    def kill(self, node: str) -> None:
        self.engines[node] = None
        self.clients = [client for client in self.clients if client.node != node]
        self.counted["kills"] += 1

    def take(self, node: str, output) -> None:
        """Folds an engine's diffs and puts its frames on the network."""
        folded = self.folded[node]
        for diff in output if isinstance(output, list) else output.diffs:
            assert not diff.is_empty(), self.seed
            folded[diff.topic] = apply_diff(folded.get(diff.topic, {}), diff)
        engine = self.engines[node]
        states = self.history.setdefault(engine.owner, {})
        if engine.log.version not in states:
            states[engine.log.version] = engine.replica.copy_state(engine.owner)
        if isinstance(output, list):
            return
        owner = engine.owner
        for peer, data in output.frames:
            self.last_sent[owner] = self.t
            if self.random.random() < self.drop:
                continue
            copies = 2 if self.random.random() < self.duplicate else 1
            for _ in range(copies):
                self.in_flight.append((self.t + self.random.randint(1, 60), self.random.random(), node, peer, data))

    def deliver(self) -> None:
        due = sorted(item for item in self.in_flight if item[0] <= self.t)
        self.in_flight = [item for item in self.in_flight if item[0] > self.t]
        for _, _, sender, peer, data in due:
            engine = self.engines[peer]
            if engine is None or self.blocked(sender, peer):
                continue
            self.take(peer, engine.receive(data, self.clock(peer)))
            departed = self.goodbyes.get(data)
            if departed is not None:
                # Taken or refused (a later incarnation is known), no copy of it is held from now on.
                assert departed not in engine.replica.owners(), (self.seed, self.t, peer, departed)
                self.counted["goodbyes_taken"] += 1

    def blocked(self, one: str, other: str) -> bool:
        return frozenset((one, other)) in self.cut

    # -- clients ----------------------------------------------------------

    def client_step(self) -> None:
        live = [node for node in NODES if self.engines[node] is not None]
        node = self.random.choice(live)
        engine = self.engines[node]
        mine = [client for client in self.clients if client.node == node and client.alive]
        choice = self.random.random()
        now = self.clock(node)
        if choice < 0.3 or not mine:
            client = Client(node, engine.owner, self.next_session)
            self.next_session += 1
            self.take(node, engine.open_session(client.session, TTL_MS, now))
            self.renewed[(client.owner, client.session)] = self.t
            self.clients.append(client)
            mine = [client]
        client = self.random.choice(mine)
        topic, key = self.random.choice(TOPICS), self.random.choice(KEYS)
        if choice < 0.6:
            if (topic, key) not in client.tracked:
                self.take(node, engine.track(client.session, topic, key, b"%d" % self.t, now))
                client.tracked.add((topic, key))
                self.counted["tracked_while_cut"] += bool(self.cut)
        elif choice < 0.75 and client.tracked:
            topic, key = self.random.choice(sorted(client.tracked))
            self.take(node, engine.update(client.session, topic, key, b"u%d" % self.t, now))
        elif choice < 0.9 and client.tracked:
            topic, key = self.random.choice(sorted(client.tracked))
            self.take(node, engine.untrack(client.session, topic, key, now))
            client.tracked.discard((topic, key))
        elif choice < 0.95:
            self.take(node, engine.close_session(client.session, now))
            self.clients.remove(client)
        else:
            client.alive = False      # crashed: never renews, never closes
            self.counted["crashes"] += 1

    def keepalives(self) -> None:
        for client in self.clients:
            key = (client.owner, client.session)
            if client.alive and self.t - self.renewed[key] >= TTL_MS // 3:
                engine = self.engines[client.node]
                self.take(client.node, engine.keepalive(client.session, self.clock(client.node)))
                self.renewed[key] = self.t

    # -- faults and the run -----------------------------------------------

    def fault_step(self) -> None:
        draw = self.random.random()
        live = [node for node in NODES if self.engines[node] is not None]
        dead = [node for node in NODES if self.engines[node] is None]
        if draw < 0.004:
            one, other = self.random.sample(NODES, 2)
            self.cut.add(frozenset((one, other)))
            self.counted["partitions"] += 1
        elif draw < 0.008:
            self.cut.clear()
        elif draw < 0.0095 and len(live) >= 2:
            self.kill(self.random.choice(live))
        elif draw < 0.011 and len(live) >= 2:
            self.stop_cleanly(self.random.choice(live))
        elif draw < 0.015 and dead:
            self.start(self.random.choice(dead))
            self.counted["restarts"] += 1

    def step(self, chaos: bool) -> None:
        self.t += STEP_MS
        self.deliver()
        if chaos:
            self.fault_step()
            if self.random.random() < 0.3:
                self.client_step()
        self.keepalives()
        for node in NODES:
            if self.engines[node] is not None:
                self.take(node, self.engines[node].tick(self.clock(node)))
        self.check_every_step()

    def run(self) -> None:
        while self.t < CHAOS_MS:
            self.step(chaos=True)
        self.cut.clear()
        for node in NODES:
            if self.engines[node] is None:
                self.start(node)
        end = self.t + HEAL_MS
        while self.t < end:
            self.step(chaos=False)

    # -- what must hold ---------------------------------------------------

    def check_every_step(self) -> None:
        for node, engine in self.engines.items():
            if engine is None:
                continue
            held = engine.replica.owners()
            for owner in held:
                # A copy is always exactly a past state of its owner: nothing stale comes back.
                copy = engine.replica.copy_state(owner)
                past = self.history[owner][copy.version]
                assert (copy.sessions, copy.upserts) == (past.sessions, past.upserts), (self.seed, self.t, node)
                # Once a later incarnation is heard of, no earlier one is held.
                assert not any(other.node == owner.node and other.incarnation > owner.incarnation
                               for other in held), (self.seed, self.t, node, owner)
            for topic in TOPICS:
                listing = engine.list(topic)
                assert self.folded[node].get(topic, {}) == listing, (self.seed, self.t, node, topic)
                for key, metas in listing.items():
                    assert len({(meta.ref.node, meta.ref.incarnation, meta.ref.session) for meta in metas}) \
                        == len(metas), (self.seed, self.t, key)
                    for meta in metas:
                        self.check_bounds(engine, meta.ref)

    def check_bounds(self, engine: PresenceEngine, ref) -> None:
        owner = OwnerId(ref.node, ref.incarnation)
        if owner != engine.owner:
            assert self.t < self.last_sent[owner] + DOWN_MS + SKEW_MS, \
                f"seed {self.seed}: {ref} outlived its owner's last frame on {engine.owner.node} at {self.t}"
        assert self.t < self.renewed[(owner, ref.session)] + TTL_MS + SKEW_MS, \
            f"seed {self.seed}: {ref} outlived its session's lease on {engine.owner.node} at {self.t}"

    def truth(self, topic: bytes) -> dict:
        """What every node should list: the entries of each live owner."""
        listing: dict = {}
        for engine in self.engines.values():
            own = engine.replica.copy_state(engine.owner)
            for entry, (meta, version) in own.upserts.items():
                if entry.topic == topic:
                    listing.setdefault(entry.key, []).append(meta_of(engine.owner, entry, meta, version))
        return {key: sorted(metas) for key, metas in listing.items()}


@pytest.mark.parametrize("seed", range(10))
def test_three_nodes_converge_after_heal_and_no_entry_outlives_its_bound(seed):
    simulation = Simulation(seed)
    simulation.run()
    for topic in TOPICS:
        expected = simulation.truth(topic)
        for node, engine in simulation.engines.items():
            assert engine.list(topic) == expected, f"seed {seed}: {node} lists {topic!r} wrong after heal"
    crashed = {(client.owner, client.session) for client in simulation.clients if not client.alive}
    for engine in simulation.engines.values():
        for topic in TOPICS:
            for metas in engine.list(topic).values():
                assert not {(OwnerId(meta.ref.node, meta.ref.incarnation), meta.ref.session)
                            for meta in metas} & crashed, f"seed {seed}: a crashed client's entry remains"
    counted = simulation.counted
    assert counted["partitions"] and counted["crashes"], (seed, counted)


def test_the_runs_meet_every_fault_they_claim_to():
    totals: dict[str, int] = {}
    for seed in range(10):
        simulation = Simulation(seed)
        while simulation.t < CHAOS_MS:
            simulation.step(chaos=True)
        for name, count in simulation.counted.items():
            totals[name] = totals.get(name, 0) + count
    assert all(totals[name] > 0 for name in ("kills", "restarts", "partitions", "crashes", "tracked_while_cut",
                                             "stops", "goodbyes_taken")), totals
