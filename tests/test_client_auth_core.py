"""The SDK's authentication decisions, without a server: credentials and
where they come from, when a token is renewed, the one repeat of a call
refused as "authenticate again", what the interceptors put on a call, and
the W3C trace context of the current span."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest

from tandemkv import errors
from tandemkv.client import _core as core
from tandemkv.client import _operations as ops
from tandemkv.client import _auth_core as auth_core
from tandemkv.client._auth_core import Credentials, TokenKeeper, resolve_credentials
from tandemkv.client._auth_session import AsyncAuthSession, AuthSession, MetadataInterceptor, trace_metadata
from tandemkv.client._routing import Router
from tandemkv.client import Retry
from tandemkv.v1 import auth_pb2, kv_pb2
from tests.test_client_core import FakeRpcError

NO_JITTER = Retry(jitter=lambda: 1.0, clock=lambda: 0.0)
EXPIRED = FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "the token has expired; authenticate again")


def token_answer(token: str, expires_at_ms: float) -> auth_pb2.AuthenticateResponse:
    return auth_pb2.AuthenticateResponse(token=token, expires_at_ms=int(expires_at_ms))


def test_credentials_are_a_user_with_a_password_or_a_token_and_say_what_is_missing():
    with pytest.raises(ValueError, match="pass password="):
        Credentials(user="app")
    with pytest.raises(ValueError, match="not both"):
        Credentials(user="app", password="pw", token="t")
    with pytest.raises(ValueError, match="empty"):
        Credentials(token="")
    assert "pw" not in repr(Credentials(user="app", password="pw"))
    assert "secret" not in repr(TokenKeeper(Credentials(token="secret")))


def test_credentials_come_from_the_environment_when_none_are_passed():
    env = {"TANDEMKV_USER": "app", "TANDEMKV_PASSWORD": "pw"}
    assert resolve_credentials(None, None, None, env) == Credentials("app", "pw")
    assert resolve_credentials(None, None, None, {**env, "TANDEMKV_TOKEN": "t"}) == Credentials(token="t")
    assert resolve_credentials(None, None, None, {}) is None
    assert resolve_credentials(None, None, "given", env) == Credentials(token="given")


def test_a_token_is_renewed_after_three_quarters_of_its_lifetime_and_not_before():
    keeper = TokenKeeper(Credentials("app", "pw"))
    assert keeper.due(0) and keeper.metadata() == ()
    assert keeper.authenticate().request == auth_pb2.AuthenticateRequest(user="app", password="pw")
    keeper.took(token_answer("t1", 1_000_000 + 600_000), now_ms=50, wall_ms=1_000_000)
    assert keeper.metadata() == (("authorization", "Bearer t1"),)
    assert not keeper.due(50 + 449_999) and keeper.due(50 + 450_000)
    assert keeper.usable(50 + 599_999) and not keeper.usable(50 + 600_000)


def test_a_clock_ahead_of_the_servers_cannot_make_renewals_loop():
    keeper = TokenKeeper(Credentials("app", "pw"))
    keeper.took(token_answer("t1", 1_000), now_ms=0, wall_ms=5_000)  # "expired" on arrival by this clock
    assert not keeper.due(10), "renewed again within TOKEN_RENEW_SPACING_MIN_MS"
    assert keeper.renew_after_refusal(10) == "repeat"
    assert keeper.renew_after_refusal(auth_core.TOKEN_RENEW_SPACING_MIN_MS) == "renew"


def test_a_token_as_given_is_sent_and_never_renewed():
    keeper = TokenKeeper(Credentials(token="given"))
    assert keeper.metadata() == (("authorization", "Bearer given"),)
    assert not keeper.due(10**12) and keeper.renew_after_refusal(0) == "give up"


def test_changing_ones_own_password_replaces_the_kept_one_and_drops_the_token():
    keeper = TokenKeeper(Credentials("app", "old"))
    keeper.took(token_answer("t1", 600_000), 0, 0)
    keeper.password_changed("other", "x")
    assert keeper.metadata()
    keeper.password_changed("app", "new")
    assert keeper.metadata() == () and keeper.due(1)
    assert keeper.authenticate().request.password == "new"


def drive(plan, answers):
    """Runs a plan: each Send takes the next answer (an error is thrown
    in); each Renew is answered True; returns (actions, result or error)."""
    walk, actions = core.Walk(plan), []
    try:
        while (action := walk.next()) is not None:
            actions.append(action)
            if isinstance(action, core.Renew):
                walk.outcome = True
            elif isinstance(action, core.Send):
                answer = answers.pop(0)
                if isinstance(answer, BaseException):
                    walk.failure = answer
                else:
                    walk.outcome = answer
    except errors.TandemKVError as error:
        return actions, error
    return actions, walk.result


def kinds(actions):
    return [type(action).__name__ for action in actions]


def get_plan():
    router = Router(["a:1"])
    router.learn_leader("a:1")
    operation = ops.get("k")
    return core.unary(operation, core.attempts_for(operation, NO_JITTER, router, None))


def test_a_call_refused_as_expired_renews_once_and_is_repeated():
    found = kv_pb2.GetResponse(found=True, kv=kv_pb2.KeyValue(key=b"k", value=b"v"))
    actions, result = drive(get_plan(), [EXPIRED, found])
    assert kinds(actions) == ["Send", "Renew", "Send"] and result.value == b"v"


def test_a_second_expired_refusal_is_the_callers_error_never_a_loop():
    actions, error = drive(get_plan(), [EXPIRED, EXPIRED])
    assert kinds(actions) == ["Send", "Renew", "Send"]
    assert isinstance(error, errors.Unauthenticated) and "expired" in error.message


def test_other_refusals_reach_the_caller_with_the_servers_words():
    denied = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "user 'app' lacks write on key prefix b'k'")
    none = FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "auth is enabled: send 'authorization: Bearer TOKEN'")
    actions, error = drive(get_plan(), [denied])
    assert kinds(actions) == ["Send"] and isinstance(error, errors.PermissionDenied)
    assert error.message == "user 'app' lacks write on key prefix b'k'"
    actions, error = drive(get_plan(), [none])
    assert kinds(actions) == ["Send"] and isinstance(error, errors.Unauthenticated)


class Clock:
    def __init__(self, monkeypatch):
        self.now_ms, self.wall_ms = 1_000.0, 5_000_000.0
        monkeypatch.setattr("tandemkv.client._auth_session._now_ms", lambda: self.now_ms)
        monkeypatch.setattr("tandemkv.client._auth_session._wall_ms", lambda: self.wall_ms)


def test_the_sync_session_authenticates_at_first_use_then_renews_only_when_due(monkeypatch):
    clock, sent = Clock(monkeypatch), []

    def authenticate(operation):
        sent.append(operation.request.user)
        return token_answer(f"t{len(sent)}", clock.wall_ms + 600_000)

    session = AuthSession(Credentials("app", "pw"), authenticate)
    assert session.metadata() == (("authorization", "Bearer t1"),)
    session.refresh_if_due()
    clock.now_ms += 300_000
    session.refresh_if_due()
    assert sent == ["app"]
    clock.now_ms += 200_000
    session.refresh_if_due()
    assert session.metadata() == (("authorization", "Bearer t2"),) and len(sent) == 2
    assert session.renew_after_refusal() and len(sent) == 2, "renewed just now: repeat with that token"


def test_a_wrong_password_is_the_callers_unauthenticated_error(monkeypatch):
    Clock(monkeypatch)

    def authenticate(operation):
        raise errors.Unauthenticated("unknown user or wrong password")

    session = AuthSession(Credentials("app", "bad"), authenticate)
    with pytest.raises(errors.Unauthenticated, match="wrong password"):
        session.metadata()


def test_the_interceptor_adds_the_token_except_to_authenticate(monkeypatch):
    Clock(monkeypatch)
    session = AuthSession(Credentials(token="tok"), lambda operation: None)
    interceptor, seen = MetadataInterceptor(session, tracing=False), []
    details = SimpleNamespace(method="/tandemkv.v1.KV/Put", timeout=1.0, metadata=(("x", "1"),),
                              credentials=None, wait_for_ready=None, compression=None)
    interceptor.intercept_unary_unary(lambda d, r: seen.append(d), details, None)
    assert seen[-1].metadata == (("x", "1"), ("authorization", "Bearer tok"))
    interceptor.intercept_stream_stream(lambda d, r: seen.append(d), details, iter(()))
    assert seen[-1].metadata[-1] == ("authorization", "Bearer tok")
    authenticate = SimpleNamespace(**{**vars(details), "method": auth_core.AUTHENTICATE_METHOD})
    interceptor.intercept_unary_unary(lambda d, r: seen.append(d), authenticate, None)
    assert seen[-1] is authenticate


def test_the_async_session_authenticates_once_for_many_concurrent_calls(monkeypatch):
    clock, sent = Clock(monkeypatch), []

    async def authenticate(operation):
        sent.append(operation.request.user)
        await asyncio.sleep(0)
        return token_answer("t1", clock.wall_ms + 600_000)

    async def scenario():
        session = AsyncAuthSession(Credentials("app", "pw"), authenticate)
        headers = await asyncio.gather(*(session.metadata() for _ in range(20)))
        assert set(headers) == {(("authorization", "Bearer t1"),)}
        clock.now_ms += 460_000  # due, still usable: renewed in the background, this call goes on
        assert await session.metadata() == (("authorization", "Bearer t1"),)
        await asyncio.sleep(0.01)
        return session

    session = asyncio.run(scenario())
    assert sent == ["app", "app"] and session.keeper.renew_at_ms > clock.now_ms


def test_the_current_spans_trace_context_is_sent_as_traceparent():
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk_trace.TracerProvider().get_tracer("test")
    assert trace_metadata() == ()
    with tracer.start_as_current_span("caller") as span:
        headers = dict(trace_metadata())
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert headers["traceparent"].split("-")[1] == trace_id


class Waiter:
    def __init__(self):
        self.error = None

    def claim(self) -> bool:
        return True

    def resolve(self, response) -> None:
        raise AssertionError("no answer expected")

    def reject(self, error) -> None:
        self.error = error


def test_a_batch_refused_for_one_op_refuses_that_callers_op_and_sends_the_others_again():
    from tandemkv.client._pipeline import Coalescer, Flight, Pending

    pendings = [Pending("a:1", operation, 1.0, Waiter()) for operation in
                (ops.get("app/1"), ops.put("other/k", "v"), ops.get("app/2"))]
    refusal = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED,
                           "batch op 1: user 'app' lacks write on key prefix b'other/k'")
    Coalescer().batch_failed(Flight("a:1", pendings), refusal)
    codes = [p.waiter.error.code() for p in pendings]
    assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE]
    assert pendings[1].waiter.error.details() == "user 'app' lacks write on key prefix b'other/k'"
    assert "refused by auth" in pendings[0].waiter.error.details()
