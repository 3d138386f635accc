"""The presence fault run's checker (tests/faults/presence_check.py), on
records written by hand.

Goal: each bound it states is applied as stated, and only as stated: an
entry listed past its lease (a crashed client), past its removal plus the
down bound (untracked, replaced, closed), or past its owner's kill plus
the down bound, or after its owner stopped cleanly (its goodbye) is a
violation, and one listed within them is not; a
renewal of unknown outcome to a paused node stretches the lease to the
pause's end; an entry no client wrote, or listed before its write was
sent, is a violation, while a write of unknown outcome may show; the model
is the held sessions' entries as their last acknowledged writes left
them; convergence is judged against it, node by node.

Method: sessions, calls, faults and observations built directly, with
times in seconds; the verdicts compared with what the docs say.
"""

from __future__ import annotations

from tests.faults.presence_check import (ABANDONED, CLOSED, DOWN_S, FAILED, HELD, OK, REPAIR_S, SKEW_S, UNKNOWN,
                                         Call, Fault, Observation, Session, check_bounds, convergence_deadline,
                                         differences, model)

MARGIN_S = 0.5
TTL_S = 3.0
REF = "n1.a.10.2"          # node n1, incarnation 0xa, session 0x10, version 2


def session(*calls: Call, end: str = HELD, node: str = "n1", ttl_s: float = TTL_S) -> Session:
    return Session(0x10, node, ttl_s, [Call("open", 0.0, 1.0, OK), *calls], end)


def tracked(at_s: float = 2.0, outcome: str = OK) -> Call:
    return Call("track", at_s - 0.1, at_s, outcome, "room", "ann", "m1", REF if outcome == OK else "")


def seen(at_s: float, ref: str = REF, node: str = "n2") -> Observation:
    return Observation(node, "room", at_s, at_s + 0.05, {"ann": [(ref, "m1")]})


def violations(sessions: list[Session], observations: list[Observation], faults: list[Fault] = ()) -> int:
    return check_bounds(sessions, observations, list(faults), margin_s=MARGIN_S).violations


def test_a_crashed_clients_entry_may_show_until_its_lease_ends_and_not_after():
    crashed = session(tracked(), Call("keepalive", 2.5, 3.0, OK), end=ABANDONED)
    lease_end = 3.0 + TTL_S + SKEW_S + MARGIN_S
    assert violations([crashed], [seen(lease_end - 0.1)]) == 0
    assert violations([crashed], [seen(lease_end + 0.1)]) == 1


def test_a_renewal_of_unknown_outcome_to_a_paused_node_counts_until_the_pause_ends():
    doubtful = session(tracked(), Call("keepalive", 2.5, 4.5, UNKNOWN), end=ABANDONED)
    pause = Fault("pause", ("n1",), 2.0, 2.1, 9.0)
    after_call = 4.5 + TTL_S + SKEW_S + MARGIN_S
    assert violations([doubtful], [seen(after_call + 1)]) == 1
    assert violations([doubtful], [seen(after_call + 1)], [pause]) == 0
    assert violations([doubtful], [seen(9.0 + TTL_S + SKEW_S + MARGIN_S + 0.1)], [pause]) == 1
    # A renewal surely not applied (the node said NOT_FOUND) stretches nothing.
    refused = session(tracked(), Call("keepalive", 2.5, 8.0, FAILED), end=ABANDONED)
    assert violations([refused], [seen(1.0 + TTL_S + SKEW_S + MARGIN_S + 0.1)]) == 1


def test_an_untracked_entry_may_show_until_the_down_bound_after_the_untrack():
    long_lived = session(tracked(), Call("untrack", 3.0, 3.1, OK, "room", "ann"), ttl_s=60)
    assert violations([long_lived], [seen(3.1 + DOWN_S + SKEW_S + MARGIN_S - 0.1)]) == 0
    assert violations([long_lived], [seen(3.1 + DOWN_S + SKEW_S + MARGIN_S + 0.1)]) == 1
    # Untracking another key bounds nothing of this one.
    other = session(tracked(), Call("untrack", 3.0, 3.1, OK, "room", "bob"), ttl_s=60)
    assert violations([other], [seen(3.1 + DOWN_S + SKEW_S + MARGIN_S + 0.1)]) == 0


def test_a_closed_or_updated_entry_is_bounded_like_an_untracked_one():
    closed = session(tracked(), Call("close", 3.0, 3.1, OK), end=CLOSED, ttl_s=60)
    updated = session(tracked(), Call("update", 3.0, 3.1, OK, "room", "ann", "m2", "n1.a.10.3"), ttl_s=60)
    late = seen(3.1 + DOWN_S + SKEW_S + MARGIN_S + 0.1)
    assert violations([closed], [late]) == 1 and violations([updated], [late]) == 1


def test_a_killed_owners_entry_may_show_until_the_down_bound_after_the_kill():
    held = session(tracked(), ttl_s=60)
    kill = Fault("kill", ("n1",), 4.0, 4.2, 7.0)
    assert violations([held], [seen(4.2 + DOWN_S + SKEW_S + MARGIN_S - 0.1)], [kill]) == 0
    assert violations([held], [seen(4.2 + DOWN_S + SKEW_S + MARGIN_S + 0.1)], [kill]) == 1
    assert violations([held], [seen(30.0)], [Fault("kill", ("n2",), 4.0, 4.2, 7.0)]) == 0


def test_a_cleanly_stopped_owners_entry_must_be_gone_once_its_process_exited():
    held = session(tracked(), ttl_s=60)
    stop = Fault("stop", ("n1",), 4.0, 5.5, 8.0)      # SIGTERM at 4.0, exited by 5.5: its goodbye went before
    assert violations([held], [seen(5.5 + MARGIN_S - 0.1)], [stop]) == 0
    assert violations([held], [seen(5.5 + MARGIN_S + 0.1)], [stop]) == 1


def test_an_entry_no_client_wrote_or_shown_before_its_write_is_a_violation():
    assert violations([session(tracked())], [seen(2.5, ref="n1.a.99.2")]) == 1
    assert violations([session(tracked(at_s=5.0))], [seen(1.5)]) == 1
    # A track of unknown outcome may show; its session then ends by the close.
    doubtful = session(tracked(outcome=UNKNOWN), Call("close", 3.0, 3.1, OK), end=CLOSED, ttl_s=60)
    assert violations([doubtful], [seen(2.5, ref="n1.a.10.5")]) == 0


def test_the_model_is_the_held_sessions_entries_as_their_last_writes_left_them():
    held = session(tracked(), Call("update", 3.0, 3.1, OK, "room", "ann", "m2", "n1.a.10.3"),
                   Call("track", 4.0, 4.1, OK, "room", "bob", "b", "n1.a.10.4"),
                   Call("untrack", 5.0, 5.1, OK, "room", "bob"),
                   Call("track", 6.0, 6.1, UNKNOWN, "room", "cid", "c"))
    gone = session(tracked(), end=ABANDONED)
    assert model([held, gone], "room") == {"ann": [("n1.a.10.3", "m2")]}
    assert model([held], "lobby") == {}


def test_convergence_is_judged_node_by_node_against_the_model_by_its_deadline():
    expected = {"ann": [(REF, "m1")]}
    assert differences(expected, {"n1": expected, "n2": dict(expected)}) == []
    found = differences(expected, {"n1": expected, "n2": {}, "n3": None})
    assert found == ["n2: lists {} where the model has {'ann': [('n1.a.10.2', 'm1')]}", "n3: no answer"]
    crashed = session(tracked(), end=ABANDONED)
    assert convergence_deadline([session(tracked())], [], 20.0, margin_s=0) == 20.0 + REPAIR_S
    assert convergence_deadline([crashed], [], 2.0, margin_s=0) == 1.0 + TTL_S + SKEW_S
