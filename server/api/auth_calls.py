"""Who a call comes from and whether it may run: the gate the Dispatcher asks
before a handler (authentication from call metadata or the client
certificate's CN, then authorization by method and request).

- Credentials: `authorization: Bearer TOKEN` in the call's metadata (a token
  from Auth.Authenticate), else the CN of a verified client certificate
  (mTLS), which names a user. Neither: the call has no user, which is
  enough only while auth is disabled.
- Verifying a token costs one HMAC; the gate caches (token -> user), and
  the decisions it allowed, for the auth revision they were made at, so a
  change to any user or role (a new revision) empties both and a revoked
  user is refused at its next call.
- The rules: each method names its resource kind, the request field that
  names the resource, and read or write. A method with no rule is for root
  only while auth is on, so a new RPC is closed until someone opens it here
  (today: table and cron administration, queue limits (Jobs.SetQueueLimit:
  a limit that any worker of the queue could lift would shield nothing),
  counters, presence, streams of publishes and subscriptions, maintenance).
- Job calls that name a job by id (complete, fail, progress, get, retry,
  cancel, discard) are checked against the queue the job belongs to, as
  this node has applied it (a local read: the gate never waits on Raft);
  a job this node does not know is for root only.
- Any signed-in user may use leases (grant, keep alive, revoke, look up):
  a lock or an election needs one, and a lease names no resource.
- Batch.Call is checked op by op, each against its own method's rule; the
  first op refused refuses the whole call, naming the op.
- Member calls (the pub/sub relay's streams, presence exchanges, gossip
  frames) carry no user: they pass the gate, and each frame or stream
  hello is authenticated by the cluster secret where it is received (an
  HMAC keyed by the secret), so a caller without the secret is refused
  there.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

from tandemkv import errors
from tandemkv.server.strong import auth

AUTHORIZATION_METADATA_KEY = "authorization"
BEARER_PREFIX = "bearer "
# Tokens whose user the gate remembers per auth revision.
VERIFIED_TOKENS_MAX = 4_096
# Decisions (user, kind, mode, names) the gate remembers as allowed per auth revision.
ALLOWED_DECISIONS_MAX = 4_096
# Methods anyone may call, signed in or not.
OPEN_METHODS = frozenset({
    "/tandemkv.v1.Auth/Authenticate", "/tandemkv.v1.Auth/AuthStatus", "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch", "/tandemkv.v1.Cluster/Status", "/tandemkv.v1.Cluster/Members",
})
# Members' calls, authenticated by the cluster secret inside their frames.
MEMBER_METHODS = frozenset({
    "/tandemkv.v1.PubSub/Relay", "/tandemkv.v1.Presence/Exchange", "/tandemkv.v1.Gossip/Deliver",
})
# Methods any signed-in user may call.
SIGNED_IN_METHODS = frozenset({
    "/tandemkv.v1.Lease/Grant", "/tandemkv.v1.Lease/KeepAlive", "/tandemkv.v1.Lease/Revoke",
    "/tandemkv.v1.Lease/TimeToLive",
    # Opened by any signed-in caller; each watch it creates is checked as a
    # Watch.Watch (server/api/coordination_servicers.py).
    "/tandemkv.v1.Watch/Watches",
})
BATCH_METHOD = "/tandemkv.v1.Batch/Call"
# A batch op's field -> the method whose rule it follows.
BATCH_OP_METHODS = {
    "put": "/tandemkv.v1.KV/Put", "get": "/tandemkv.v1.KV/Get", "delete": "/tandemkv.v1.KV/Delete",
    "range": "/tandemkv.v1.KV/Range", "counter_incr": "/tandemkv.v1.Counter/Incr",
    "counter_get": "/tandemkv.v1.Counter/Get", "counter_set": "/tandemkv.v1.Counter/Set",
    "counter_compare_and_set": "/tandemkv.v1.Counter/CompareAndSet",
    "counter_delete": "/tandemkv.v1.Counter/Delete", "whereis": "/tandemkv.v1.Registry/Whereis",
}


class Rule(NamedTuple):
    kind: str
    mode: str
    # The resource the request names: (start, end); end None is "to the last",
    # end == start is one name.
    names: Callable[[Any], tuple[bytes, bytes | None]]


def _one(field: str) -> Callable[[Any], tuple[bytes, bytes | None]]:
    def names(request: Any) -> tuple[bytes, bytes | None]:
        value = getattr(request, field)
        value = value.encode() if isinstance(value, str) else bytes(value)
        return value, value
    return names


def _prefix(field: str) -> Callable[[Any], tuple[bytes, bytes | None]]:
    def names(request: Any) -> tuple[bytes, bytes | None]:
        prefix = bytes(getattr(request, field))
        return prefix, auth._prefix_end(prefix)
    return names


def _key_range(request: Any) -> tuple[bytes, bytes | None]:
    r = request.range
    if r.prefix:
        return r.key, auth._prefix_end(r.key)
    if not r.range_end:
        return r.key, r.key
    return r.key, (None if r.range_end == b"\0" else r.range_end)


def _by_job_id(request: Any) -> tuple[bytes, bytes | None]:
    """A marker the gate recognises: it checks the queue of the job
    `request.id` names (`AuthGate._check_one`), never this answer."""
    raise LookupError("a job's queue is named by the gate, which looks the job up")


RULES: dict[str, Rule] = {
    "/tandemkv.v1.KV/Put": Rule("key", "write", _one("key")),
    "/tandemkv.v1.KV/Get": Rule("key", "read", _one("key")),
    "/tandemkv.v1.KV/Range": Rule("key", "read", _key_range),
    "/tandemkv.v1.KV/Delete": Rule("key", "write", _key_range),
    "/tandemkv.v1.Watch/Watch": Rule("key", "read", _key_range),
    "/tandemkv.v1.Registry/Register": Rule("registry", "write", _one("name")),
    "/tandemkv.v1.Registry/Unregister": Rule("registry", "write", _one("name")),
    "/tandemkv.v1.Registry/Whereis": Rule("registry", "read", _one("name")),
    "/tandemkv.v1.Registry/List": Rule("registry", "read", _prefix("prefix")),
    "/tandemkv.v1.Lock/Acquire": Rule("lock", "write", _one("name")),
    "/tandemkv.v1.Lock/Release": Rule("lock", "write", _one("name")),
    "/tandemkv.v1.Election/Campaign": Rule("election", "write", _one("election")),
    "/tandemkv.v1.Election/Proclaim": Rule("election", "write", _one("election")),
    "/tandemkv.v1.Election/Resign": Rule("election", "write", _one("election")),
    "/tandemkv.v1.Election/Leader": Rule("election", "read", _one("election")),
    "/tandemkv.v1.Election/Observe": Rule("election", "read", _one("election")),
    "/tandemkv.v1.Crdt/Update": Rule("crdt", "write", _one("table")),
    "/tandemkv.v1.Crdt/Read": Rule("crdt", "read", _one("table")),
    "/tandemkv.v1.Crdt/Scan": Rule("crdt", "read", _one("table")),
    "/tandemkv.v1.Crdt/Subscribe": Rule("crdt", "read", _one("table")),
    "/tandemkv.v1.PubSub/Publish": Rule("topic", "write", _one("topic")),
    "/tandemkv.v1.Jobs/Enqueue": Rule("queue", "write", _one("queue")),
    "/tandemkv.v1.Jobs/Claim": Rule("queue", "write", _one("queue")),
    "/tandemkv.v1.Jobs/EnqueueMany": Rule("queue", "write", _one("queue")),
    # Every settled job must be of the named queue (the state machine refuses the others).
    "/tandemkv.v1.Jobs/Settle": Rule("queue", "write", _one("queue")),
    "/tandemkv.v1.Jobs/List": Rule("queue", "read", _one("queue")),
    "/tandemkv.v1.Jobs/Stats": Rule("queue", "read", _one("queue")),
    "/tandemkv.v1.Jobs/Heartbeat": Rule("queue", "write", _one("queue")),
    "/tandemkv.v1.Jobs/Workers": Rule("queue", "read", _one("queue")),
    "/tandemkv.v1.Jobs/Complete": Rule("queue", "write", _by_job_id),
    "/tandemkv.v1.Jobs/Fail": Rule("queue", "write", _by_job_id),
    "/tandemkv.v1.Jobs/Progress": Rule("queue", "write", _by_job_id),
    "/tandemkv.v1.Jobs/Retry": Rule("queue", "write", _by_job_id),
    "/tandemkv.v1.Jobs/Cancel": Rule("queue", "write", _by_job_id),
    "/tandemkv.v1.Jobs/Discard": Rule("queue", "write", _by_job_id),
    "/tandemkv.v1.Jobs/Get": Rule("queue", "read", _by_job_id),
}
ADMIN_PREFIX = "/tandemkv.v1.Auth/"


def credentials(metadata: tuple[tuple[str, Any], ...] | None) -> str | None:
    """The bearer token of a call's metadata, or None; a malformed header is
    UNAUTHENTICATED with what to send instead."""
    for key, value in metadata or ():
        if key.lower() != AUTHORIZATION_METADATA_KEY:
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        if not text.lower().startswith(BEARER_PREFIX) or not text[len(BEARER_PREFIX):].strip():
            raise errors.Unauthenticated("the authorization header must be 'Bearer TOKEN'")
        return text[len(BEARER_PREFIX):].strip()
    return None


def certificate_cn(context: Any) -> str | None:
    """The CN of the call's client certificate: present only when the
    client port requires client certificates (tls_client_auth), where gRPC
    has verified it against tls_ca before the call reached us."""
    names = context.auth_context().get("x509_common_name")
    return names[0].decode() if names else None


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class AuthGate:
    """Decides one call. `state` returns the applied auth store (the node's
    `auth.state`); `now_ms` the wall clock (token expiry)."""

    def __init__(self, state: Callable[[], auth.AuthState], now_ms: Callable[[], int] = wall_clock_ms,
                 job_queue: Callable[[int], bytes | None] | None = None) -> None:
        self._state, self._now_ms = state, now_ms
        # The queue of a job by id as this node applied it (None: unknown).
        self._job_queue = job_queue
        self._revision = -1
        self._verified: dict[str, tuple[str, int]] = {}  # token -> (user, expiry check time)
        self._allowed: set[tuple] = set()  # (user, kind, mode, start, end) allowed at _revision

    def _follow(self, store: auth.AuthState) -> None:
        """Forgets what was decided at an older revision of the store."""
        if store.revision != self._revision:
            self._verified.clear()
            self._allowed.clear()
            self._revision = store.revision

    def caller(self, store: auth.AuthState, token: str | None, certificate_cn: str | None) -> str | None:
        self._follow(store)
        if token is not None:
            # Expiry is checked on every call; the HMAC only once per revision.
            cached = self._verified.get(token)
            if cached is None:
                user = auth.verify_token(store, token, self._now_ms())
                if len(self._verified) >= VERIFIED_TOKENS_MAX:
                    self._verified.clear()
                expiry_ms = int(token.split(".")[1])
                self._verified[token] = (user, expiry_ms)
                return user
            user, expiry_ms = cached
            if self._now_ms() >= expiry_ms:
                raise errors.Unauthenticated("the token has expired; authenticate again")
            return user
        if certificate_cn is not None and certificate_cn in store.users:
            return certificate_cn
        return None

    def check_call(self, path: str, request: Any, context: Any) -> str | None:
        """`check` for a gRPC call: its metadata and client certificate."""
        store = self._state()
        if not store.enabled or path in OPEN_METHODS or path in MEMBER_METHODS:
            return None
        return self._decide(store, path, request, context.invocation_metadata(), certificate_cn(context))

    def check(self, path: str, request: Any, metadata, certificate_cn: str | None = None) -> str | None:
        """The calling user (None while auth is off or for an open method),
        or Unauthenticated / PermissionDenied naming what is missing.
        `request` is None for a client-streaming call (its rule, if any,
        cannot see its messages: root only)."""
        store = self._state()
        if not store.enabled or path in OPEN_METHODS or path in MEMBER_METHODS:
            return None
        return self._decide(store, path, request, metadata, certificate_cn)

    def _decide(self, store: auth.AuthState, path: str, request: Any, metadata,
                certificate_cn: str | None) -> str | None:
        user = self.caller(store, credentials(metadata), certificate_cn)
        if path in SIGNED_IN_METHODS:
            auth.require_signed_in(store, user)
            return user
        if path == BATCH_METHOD and request is not None:
            for number, op in enumerate(request.ops):
                field = op.WhichOneof("op")
                if field is not None:
                    self._check_rule(store, user, BATCH_OP_METHODS[field], getattr(op, field), f"batch op {number}: ")
            return user
        self._check_rule(store, user, path, request)
        return user

    def _check_rule(self, store: auth.AuthState, user: str | None, path: str, request: Any,
                    where: str = "") -> None:
        rule = RULES.get(path) if request is not None else None
        try:
            self._check_one(store, user, path, rule, request)
        except (errors.PermissionDenied, errors.Unauthenticated) as refusal:
            if not where:
                raise
            raise type(refusal)(where + refusal.message) from None

    def _check_one(self, store: auth.AuthState, user: str | None, path: str, rule: Rule | None,
                   request: Any) -> None:
        if rule is None:
            what = "user and role changes" if path.startswith(ADMIN_PREFIX) else f"calls of {path}"
            auth.require_root(store, user, what)
            return
        if rule.names is _by_job_id:
            queue = self._job_queue(request.id) if self._job_queue is not None else None
            if queue is None:
                auth.require_root(store, user, f"calls naming job {request.id}, which this node does not "
                                               "know (nor so its queue),")
                return
            start, end = queue, queue
        else:
            start, end = rule.names(request)
        decision = (user, rule.kind, rule.mode, start, end)
        if decision in self._allowed:
            return
        if end == start:
            auth.authorize(store, user, rule.kind, start, rule.mode)
        else:
            auth.authorize_range(store, user, rule.kind, start, end, rule.mode)
        if len(self._allowed) >= ALLOWED_DECISIONS_MAX:
            self._allowed.clear()
        self._allowed.add(decision)


def applied_job_queue(node: Any) -> Callable[[int], bytes | None] | None:
    """The queue of a job as `node` has applied it, for the gate (a stale
    read of local state), or None for a node without jobs."""
    jobs = getattr(node, "jobs", None)
    if jobs is None:
        return None

    def queue_of(job_id: int) -> bytes | None:
        answer = jobs.get(job_id, stale=True)
        return bytes(answer.job.queue) if answer.found else None
    return queue_of
