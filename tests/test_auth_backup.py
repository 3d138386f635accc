"""The auth store travels in a backup: a node restored from a backup taken
with auth enabled starts with auth enabled, the same users and roles, and
signs a user in with the password set before the backup.

Method: the one-node helpers of test_backup.py; the backup through
`node.take_backup`, the restore through `tandemkv snapshot restore`.
"""

from __future__ import annotations

import shutil

from tests.test_backup import READY_S, one_node, run_cli


def test_a_restored_node_keeps_users_roles_and_auth_enabled(tmp_path, capsys):
    source = one_node(tmp_path / "source")
    source.start()
    try:
        source.wait_ready(READY_S)
        source.auth.user_add("root", "pw")
        source.auth.user_grant_role("root", "root")
        source.auth.role_add("app")
        source.auth.role_grant_permission("app", "key", b"app/", "write")
        source.auth.enable()
        revision = source.auth.state().revision
        backup_file, _ = source.take_backup()
        with backup_file, open(tmp_path / "auth.tkv", "wb") as out:
            shutil.copyfileobj(backup_file, out)
    finally:
        source.stop()
    restored = one_node(tmp_path / "n9", name="n9")
    config = restored.config
    code, _, _ = run_cli(capsys, "snapshot", "restore", tmp_path / "auth.tkv", "--data-dir", config.data_dir,
                         "--name", "n9", "--raft", config.raft_address, "--client", config.client_address)
    assert code == 0
    restored.start()
    try:
        restored.wait_ready(READY_S)
        state = restored.auth.state()
        assert state.enabled and state.revision == revision and set(state.roles) == {"app"}
        assert restored.auth.authenticate("root", "pw").token
    finally:
        restored.stop()
