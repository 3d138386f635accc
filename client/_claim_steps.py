"""What the claims of both clients share (`Hold`, `Lock`, `Election` and
their asyncio twins): the name, the token, and the calls that make and
release a claim, as plans of the core (`_core`). The blocking and asyncio
classes in `_claims` and `_claims_async` add only how a lease is renewed
(a thread or a task) and how a block is entered (`with` or `async with`).
"""

from __future__ import annotations

from typing import Any

from tandemkv.client import _coordination_ops as cops
from tandemkv.client._core import Call, Plan
from tandemkv.client._operations import Operation
from tandemkv.client._results import BytesLike, to_bytes
from tandemkv.errors import NotAcquired


class HoldSteps:
    """A registry name held under a lease: registered, then unregistered."""

    token: int

    # Renewal starts once the name is registered (registering does not wait).
    RENEW_WHILE_CLAIMING = False

    def __init__(self, client: Any, name: BytesLike, value: BytesLike):
        self.client = client
        self.name = to_bytes(name, "name")
        self.value = to_bytes(value, "value")
        self.token = 0

    def _claim(self, lease: int) -> Plan:
        return (yield Call(cops.register(self.name, self.value, lease)))

    def _release(self) -> tuple[Operation, str]:
        return cops.unregister(self.name, self.token), f"name {self.name!r}"


class LockSteps:
    """A lock held under a lease: acquired by calls that each wait up to
    CLAIM_WAIT_S_MAX on the server, until it is ours or `wait` has passed."""

    token: int

    # Waiting for a lock may outlast the lease: renew it meanwhile.
    RENEW_WHILE_CLAIMING = True

    def __init__(self, client: Any, name: BytesLike, wait: float | None):
        self.client = client
        self.name = to_bytes(name, "lock name")
        self.wait = wait
        self.token = 0

    def _claim(self, lease: int) -> Plan:
        holder = 0
        for wait_s in cops.waits(self.wait):
            response = yield Call(cops.lock_acquire(self.name, lease, wait_s),
                                  cops.wait_retry(self.client.retry, wait_s))
            if response.acquired:
                return response.claim.token
            holder = response.claim.token
        raise NotAcquired(f"lock {self.name!r} is held (token {holder}); waited {self.wait} s",
                          token=holder)

    def _release(self) -> tuple[Operation, str]:
        return cops.lock_release(self.name, self.token), f"lock {self.name!r}"


class ElectionSteps:
    """A candidacy: the campaign loop (calls that each wait up to
    CLAIM_WAIT_S_MAX on the server). `token` is the candidacy's as soon as
    it is queued, so a campaign that gives up can withdraw it."""

    token: int

    def __init__(self, client: Any, name: BytesLike):
        self.client = client
        self.name = to_bytes(name, "election name")
        self.token = 0

    def _campaign(self, value: BytesLike, lease: int, wait: float | None) -> Plan:
        for wait_s in cops.waits(wait):
            response = yield Call(cops.campaign(self.name, value, lease, wait_s),
                                  cops.wait_retry(self.client.retry, wait_s))
            self.token = response.claim.token
            if response.elected:
                return self.token
        raise NotAcquired(f"not elected in {self.name!r} within {wait} s")
