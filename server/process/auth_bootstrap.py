"""Auth from a cluster's first start: `serve --root-password-file FILE`.

The file holds root's password (its first line). Every member may be given
it. Whichever node is leader while auth is not enabled makes user `root`
with that password, grants it the root role and enables auth: three auth
changes, one per tick of `serve`'s main loop, each proposed only by the
leader. A leader change half way is fine: the next leader sees how far the
store got and goes on.

When to act is read from the auth revision (every auth change bumps it by
one), never from a marker of its own: the bootstrap acts only while the
store holds nothing but the bootstrap's own first steps —
  revision 0: nothing yet;
  revision 1: user root alone, with the file's password, no roles;
  revision 2: the same, root holding the root role.
Enabling makes the revision at least 3 and it never goes down, so a cluster
where auth is enabled, was enabled once and disabled later, or was changed
by hand in any other way, is left alone (`LEAVE_ALONE`).

The password is read here and handed to `node.auth`, which hashes it; it
is never logged, nor put in an error message.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from tandemkv import limits
from tandemkv.errors import TandemKVError, Unauthenticated
from tandemkv.server.strong import auth

log = logging.getLogger("tandemkv.auth_bootstrap")

ADD_ROOT = "user_add"
GRANT_ROOT = "user_grant_role"
ENABLE = "enable"
DONE = "done"
LEAVE_ALONE = "leave alone"
_DONE_WORDS = {ADD_ROOT: "added user root", GRANT_ROOT: "granted user root the root role", ENABLE: "enabled auth"}


def read_root_password(path: Path) -> str:
    """The password on the file's first line; ValueError saying what to fix
    if the file is unreadable, empty, or readable by others. Group-read is
    allowed on a root-owned file only (what Kubernetes makes of a Secret
    mounted with fsGroup, as PostgreSQL allows for its key files)."""
    where = f"root_password_file {path}"
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno())
            data = file.read(limits.ROOT_PASSWORD_FILE_BYTES_MAX + 1)
    except OSError as error:
        raise ValueError(f"cannot read {where}: {error.strerror}") from None
    permissions = stat.S_IMODE(mode.st_mode)
    if permissions & 0o007 or (permissions & 0o070 and mode.st_uid != 0):
        raise ValueError(f"{where} is readable by {'others' if permissions & 0o007 else 'its group'} "
                         f"(mode {permissions:04o}): make it readable by the node's user alone "
                         f"(chmod 0400 {path})")
    if len(data) > limits.ROOT_PASSWORD_FILE_BYTES_MAX:
        raise ValueError(f"{where} is over ROOT_PASSWORD_FILE_BYTES_MAX={limits.ROOT_PASSWORD_FILE_BYTES_MAX} "
                         "bytes: it holds the password on its first line and nothing else")
    try:
        password = data.decode().splitlines()[0].rstrip("\r") if data.strip() else ""
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not UTF-8 text") from None
    if not password:
        raise ValueError(f"{where} is empty: put root's password on its first line")
    if len(password.encode()) > limits.AUTH_PASSWORD_BYTES_MAX:
        raise ValueError(f"{where}: the password is over AUTH_PASSWORD_BYTES_MAX="
                         f"{limits.AUTH_PASSWORD_BYTES_MAX} bytes")
    return password


def next_step(state: auth.AuthState, password_matches) -> str:
    """What the bootstrap does to `state` next (pure). `password_matches()`
    says whether root's stored password is the file's (scrypt: asked only
    when the answer matters)."""
    if state.enabled:
        return DONE
    if state.revision == 0:
        return ADD_ROOT if not state.users and not state.roles else LEAVE_ALONE
    root = state.users.get(auth.ROOT_USER)
    if state.revision > 2 or state.roles or set(state.users) != {auth.ROOT_USER} or root is None:
        return LEAVE_ALONE
    expected_roles = set() if state.revision == 1 else {auth.ROOT_ROLE}
    if root.roles != expected_roles or not password_matches():
        return LEAVE_ALONE
    return GRANT_ROOT if state.revision == 1 else ENABLE


class AuthBootstrap:
    """Runs the bootstrap on one node, one step per `step()` call."""

    def __init__(self, node, password: str):
        self._node = node
        self._password = password
        self._checked: tuple[int, bool] | None = None  # (revision, root's password is the file's)
        self._logged_waiting = False

    def _password_matches(self, state: auth.AuthState) -> bool:
        if self._checked is None or self._checked[0] != state.revision:
            try:
                auth.verify_password(state, auth.ROOT_USER, self._password)
                matches = True
            except Unauthenticated:
                matches = False
            self._checked = (state.revision, matches)
        return self._checked[1]

    def waiting_reason(self) -> str:
        """Why a node started this way does not serve yet (for /readyz)."""
        return ("auth bootstrap: this node serves clients once auth is enabled (root_password_file); "
                "the leader enables it as soon as the cluster has one")

    def step(self) -> str:
        """One look, and one change when this node is the caught-up leader.
        Answers what the store needs (DONE, LEAVE_ALONE or the step still
        to take); a change that fails (lost leadership, a race with another
        leader) is tried again at the next call."""
        node = self._node
        status = node.status()
        state = node.auth.state()
        if state.enabled:
            return DONE
        if not status.ready or not status.leader:
            return ADD_ROOT  # not caught up: the store may be behind; nothing to decide yet
        step = next_step(state, lambda: self._password_matches(state))
        if step in (DONE, LEAVE_ALONE) or status.leader != status.name:
            return step
        fields = {"user": auth.ROOT_USER, "password": self._password} if step == ADD_ROOT else \
            {"user": auth.ROOT_USER, "role": auth.ROOT_ROLE} if step == GRANT_ROOT else {}
        try:
            node.auth.change(step, timeout_s=limits.AUTH_BOOTSTRAP_STEP_TIMEOUT_MS / 1000, **fields)
        except TandemKVError as error:
            # Only the error's kind: the password is never logged.
            log.warning("auth bootstrap: %s did not go through (%s); trying again", step, type(error).__name__)
            return step
        log.info("auth bootstrap: %s", _DONE_WORDS[step])
        return DONE if step == ENABLE else step

    def revision(self) -> int:
        """The auth revision this node applied (for messages)."""
        return self._node.auth.state().revision
