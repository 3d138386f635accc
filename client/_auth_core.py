"""Authentication in the SDK, the decisions only: which credentials a
client has, the token it holds, when to get a new one, and the Auth
service's calls as `Operation`s. No I/O: the shells (`_auth_session`)
send the `Authenticate` operation and hand the answer and the clocks in.

A client with `user=` and `password=` authenticates at its first call
(`Auth.Authenticate`), sends `authorization: Bearer TOKEN` on every call
and stream, and authenticates again once RENEW_AT_LIFETIME_FRACTION of the
token's lifetime has passed, so a token seldom expires in use. A call the
server refuses as UNAUTHENTICATED "... authenticate again" (the token
expired, or was ended by a password change) makes the client authenticate
again and repeat that call once (`_core.unary`); never twice, and never
more than one renewal per TOKEN_RENEW_SPACING_MIN_MS whatever the clocks
say, so a client cannot loop on a server that keeps refusing. A client
with `token=` sends that token and cannot renew it: an expired one is an
`Unauthenticated` error for the caller.

What is kept: the user name and the password, in memory, for the
client's lifetime, because a token can only be renewed by authenticating
again (the Auth service has no refresh call); the password is never
logged, never in a repr, and dropped by `forget_password` when the
caller's own password is changed through `client.auth` (the new one is
kept instead).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from tandemkv import errors
from tandemkv.client import _operations as ops
from tandemkv.v1 import auth_pb2

# Renew once three quarters of a token's lifetime (as this client saw it
# begin) have passed: well before expiry, seldom enough to cost nothing.
RENEW_AT_LIFETIME_FRACTION = 0.75
# At most one authentication per second, whatever the clocks say (a clock
# ahead of the server's would make every token look expired on arrival).
TOKEN_RENEW_SPACING_MIN_MS = 1_000
AUTHORIZATION_METADATA_KEY = "authorization"
USER_ENV, PASSWORD_ENV, TOKEN_ENV = "TANDEMKV_USER", "TANDEMKV_PASSWORD", "TANDEMKV_TOKEN"
AUTHENTICATE_METHOD = "/tandemkv.v1.Auth/Authenticate"
# What the server says when a token no longer works and a new one would
# (expired, ended by a password change, signed with a key since changed).
RENEWABLE_REFUSAL_MARKER = "authenticate again"


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Who a client is: a user and password, or a token (never both)."""

    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.token is not None and (self.user is not None or self.password is not None):
            raise ValueError("auth: pass either token= or user= and password=, not both")
        if (self.user is None) != (self.password is None):
            missing = "password=" if self.password is None else "user="
            raise ValueError(f"auth: user= and password= go together; pass {missing} too "
                             f"(or {USER_ENV} and {PASSWORD_ENV})")
        if self.user is not None and not self.user:
            raise ValueError("auth: user= is empty; pass the user's name")
        if self.token is not None and not self.token:
            raise ValueError("auth: token= is empty; pass the token Auth.Authenticate returned")


def resolve_credentials(user: str | None, password: str | None, token: str | None,
                        environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials as passed, else from TANDEMKV_TOKEN or
    TANDEMKV_USER with TANDEMKV_PASSWORD; None: the client sends none (a
    client certificate's CN may still name it)."""
    if user is None and password is None and token is None:
        environ = os.environ if environ is None else environ
        token = environ.get(TOKEN_ENV) or None
        if token is None:
            user, password = environ.get(USER_ENV) or None, environ.get(PASSWORD_ENV) or None
            if user is None and password is None:
                return None
    return Credentials(user, password, token)


class TokenKeeper:
    """The token a client holds and when to replace it. Times are
    milliseconds: `now_ms` on a monotonic clock, `wall_ms` since the epoch
    (the server states expiry in wall time)."""

    def __init__(self, credentials: Credentials):
        self.user = credentials.user
        self._password = credentials.password  # see the module's docstring: kept to renew, never shown
        self.token: str | None = credentials.token
        self.renew_at_ms: float | None = None   # monotonic; None: no renewal planned
        self.expires_at_ms: float | None = None  # monotonic; None: unknown (a token as given)
        self.renewed_at_ms: float | None = None
        self._metadata: tuple[tuple[str, str], ...] = self._header()

    def __repr__(self) -> str:
        return f"TokenKeeper(user={self.user!r}, has_token={self.token is not None})"

    @property
    def renewable(self) -> bool:
        return self._password is not None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries: `authorization: Bearer TOKEN`,
        or nothing before the first token."""
        return self._metadata

    def usable(self, now_ms: float) -> bool:
        """A token is held that has not expired by this client's clock."""
        return self.token is not None and (self.expires_at_ms is None or now_ms < self.expires_at_ms)

    def due(self, now_ms: float) -> bool:
        """Time to authenticate: no token yet, or its renewal time passed."""
        if not self.renewable:
            return False
        if self.token is None:
            return True
        return self.renew_at_ms is not None and now_ms >= self.renew_at_ms and self.spaced(now_ms)

    def spaced(self, now_ms: float) -> bool:
        """TOKEN_RENEW_SPACING_MIN_MS passed since the last authentication."""
        return self.renewed_at_ms is None or now_ms - self.renewed_at_ms >= TOKEN_RENEW_SPACING_MIN_MS

    def authenticate(self) -> ops.Operation:
        """The call that gets a token (only for a renewable keeper)."""
        assert self.user is not None and self._password is not None, "no password to authenticate with"
        request = auth_pb2.AuthenticateRequest(user=self.user, password=self._password)
        return ops.Operation("Auth", "Authenticate", request, lambda response: response, write=False)

    def took(self, response: Any, now_ms: float, wall_ms: float) -> None:
        """Keeps the token `Authenticate` answered; plans its renewal."""
        lifetime_ms = max(float(response.expires_at_ms) - wall_ms, float(TOKEN_RENEW_SPACING_MIN_MS))
        self.token = response.token
        self.expires_at_ms = now_ms + lifetime_ms
        self.renew_at_ms = now_ms + lifetime_ms * RENEW_AT_LIFETIME_FRACTION
        self.renewed_at_ms = now_ms
        self._metadata = self._header()

    def renew_after_refusal(self, now_ms: float) -> str:
        """What to do when a call was refused with a renewable refusal:
        "renew" (authenticate, then repeat the call), "repeat" (another
        caller authenticated just now: repeat with its token) or "give up"
        (a token as given cannot be renewed)."""
        if not self.renewable:
            return "give up"
        return "renew" if self.spaced(now_ms) else "repeat"

    def password_changed(self, user: str, password: str) -> None:
        """The caller changed `user`'s password through this client: when
        that is this client's user, the new password replaces the old one
        (the old one is forgotten), and the next call authenticates."""
        if user == self.user and self.renewable:
            self._password = password
            self.token, self.renew_at_ms, self.expires_at_ms = None, None, None
            self._metadata = self._header()

    def _header(self) -> tuple[tuple[str, str], ...]:
        return ((AUTHORIZATION_METADATA_KEY, f"Bearer {self.token}"),) if self.token else ()


def renewable_refusal(error: errors.TandemKVError, operation: ops.Operation) -> bool:
    """An answer a new token may fix: UNAUTHENTICATED "... authenticate
    again" to any call but `Authenticate` itself."""
    return (isinstance(error, errors.Unauthenticated) and RENEWABLE_REFUSAL_MARKER in error.message
            and not (operation.service == "Auth" and operation.method == "Authenticate"))
