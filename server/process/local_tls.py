"""`tandemkv up --tls`: a development CA and certificates under the
cluster's data directory, each node's config set to use them (with client
certificates required), and what a client passes to connect.

  tls/ca.pem, tls/ca.key          the cluster's CA (the key signs the others)
  tls/nK.pem, tls/nK.key          node K's certificate (server and client use,
                                  for 127.0.0.1, ::1 and localhost)
  tls/client.pem, tls/client.key  a client certificate for the SDK and CLI

Made once: `up` again keeps them (and a node's certificate can be replaced
while it runs: the node takes the new one at the next connection). Only for
a local cluster: the CA key lies next to what it signed.
"""

from __future__ import annotations

from pathlib import Path

TLS_DIR = "tls"
CLIENT_NAME = "client"


def enable(data_dir: Path, config_paths: list[Path]) -> None:
    """Makes whichever certificates are missing and adds the TLS settings
    to each node's config that has none yet."""
    from tandemkv.server.security import dev_certs

    tls_dir = data_dir / TLS_DIR
    tls_dir.mkdir(mode=0o700, exist_ok=True)
    ca_pem, ca_key = tls_dir / "ca.pem", tls_dir / "ca.key"
    if not (ca_pem.exists() and ca_key.exists()):
        dev_certs.make_ca().write(ca_pem, ca_key)
    ca = dev_certs.Issued(ca_pem.read_bytes(), ca_key.read_bytes())
    for name in [path.stem for path in config_paths] + [CLIENT_NAME]:
        cert, key = tls_dir / f"{name}.pem", tls_dir / f"{name}.key"
        if not (cert.exists() and key.exists()):
            node = name != CLIENT_NAME
            dev_certs.issue(ca, name, hosts=dev_certs.LOCAL_HOSTS if node else (), server=node).write(cert, key)
    for path in config_paths:
        _add_settings(path, {"tls_cert": f"{TLS_DIR}/{path.stem}.pem", "tls_key": f"{TLS_DIR}/{path.stem}.key",
                             "tls_ca": f"{TLS_DIR}/ca.pem", "tls_client_auth": True})


def _add_settings(path: Path, settings: dict[str, object]) -> None:
    """Adds top-level settings the TOML file lacks, before its first table
    (`[timings]`): a key after a table header would belong to that table."""
    lines = path.read_text().splitlines()
    present = {line.split("=", 1)[0].strip() for line in lines if "=" in line}
    added = [f"{key} = {_toml(value)}" for key, value in settings.items() if key not in present]
    if not added:
        return
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    while first_table > 0 and not lines[first_table - 1].strip():  # before the blank line(s) too
        first_table -= 1
    lines[first_table:first_table] = added
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(path)


def _toml(value: object) -> str:
    return "true" if value is True else f'"{value}"'


def client_files(data_dir: Path, config_paths: list[Path]) -> dict[str, str] | None:
    """{"ca", "cert", "key"}: absolute paths of the client's files when the
    nodes' configs turn TLS on and `up --tls` made them; else None."""
    if not _uses_tls(config_paths):
        return None
    tls_dir = (data_dir / TLS_DIR).resolve()
    files = {"ca": tls_dir / "ca.pem", "cert": tls_dir / f"{CLIENT_NAME}.pem", "key": tls_dir / f"{CLIENT_NAME}.key"}
    if not all(path.exists() for path in files.values()):
        return None
    return {role: str(path) for role, path in files.items()}


def _uses_tls(config_paths: list[Path]) -> bool:
    """Whether the nodes' configs turn TLS on (`up --tls` once, or by hand)."""
    return any(line.split("=", 1)[0].strip() == "tls_cert"
               for path in config_paths for line in path.read_text().splitlines() if "=" in line)


def client_words(files: dict[str, str]) -> str:
    """What `up` prints: the flags and environment a client passes."""
    return (f"TLS with client certificates: pass --ca {files['ca']} --cert {files['cert']} --key {files['key']}\n"
            f"export TANDEMKV_CA={files['ca']} TANDEMKV_CERT={files['cert']} TANDEMKV_KEY={files['key']}")
