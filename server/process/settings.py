"""Where a node's settings come from: a TOML file, `TANDEMKV_*` environment
variables and command-line flags, in rising priority (flag > env > file).

One table, `SETTINGS`, names every setting once; the file key, the flag and
the environment variable are derived from it (`data_dir`, `--data-dir`,
`TANDEMKV_DATA_DIR`). Raft timings live under `[timings]` in the file and
are flat everywhere else. This module builds a `NodeConfig` and knows
nothing about running a node.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping

from tandemkv.server.node.config import Member, NodeConfig, RaftTimings
from tandemkv.server.observe.address import http_address_setting
from tandemkv.server.observe.logs import parse_log_format
from tandemkv.server.process.discovery import parse_discovery

ENV_PREFIX = "TANDEMKV_"


@dataclasses.dataclass(frozen=True)
class Setting:
    key: str
    parse: Callable[[str], Any]
    help: str
    timing: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()


def parse_peers(text: str) -> tuple[Member, ...]:
    """'n2=RAFT_ADDR,CLIENT_ADDR;n3=...' (the client address is optional)."""
    members = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, addresses = item.partition("=")
        raft_address, _, client_address = addresses.partition(",")
        if not sep or not name or not raft_address:
            raise ValueError(f"peer {item!r} must look like 'name=raft_host:port,client_host:port'")
        members.append(Member(name.strip(), raft_address.strip(), client_address.strip()))
    return tuple(members)


def parse_bool(text: str) -> bool:
    """'true'/'false' (also 1/0, yes/no, on/off)."""
    word = text.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {text!r}")


SETTINGS = (
    Setting("name", str, "this node's unique member name"),
    Setting("data_dir", Path, "directory for this node's LMDB files"),
    Setting("raft_address", str, "host:port for Raft traffic between members"),
    Setting("client_address", str, "host:port the gRPC API listens on"),
    Setting("peers", parse_peers, "other members: 'n2=raft_addr,client_addr;n3=...'"),
    Setting("discovery", parse_discovery,
            "'static' (the peers setting, default), 'dns:NAME' (A records) or 'dns-srv:NAME' "
            "(SRV records _raft._tcp.NAME, _client._tcp.NAME); see docs/discovery.md"),
    Setting("discovery_expect", int, "DNS discovery: members a new cluster starts with (wait for them)"),
    Setting("discovery_nameserver", str, "DNS discovery: 'ip[:port]' to ask (default: the system's)"),
    Setting("discovery_name_template", str, "dns: a member's name from its address, '{ip}' (default) "
            "or a template with {ip} / {ip_dashed}"),
    Setting("discovery_srv_target", str, "dns-srv: Raft addresses use the target 'host' name (default) "
            "or its 'ip' from the same nameserver"),
    Setting("discovery_start_wait_ms", int, "DNS discovery: how long start-up asks before giving up "
            "(default 300000)"),
    Setting("join", str, "client address host:port of any member of a running cluster: a node "
            "with no state yet asks it for the members (and to be added), then starts with them"),
    Setting("cluster_secret", str, "shared secret for Raft traffic (prefer cluster_secret_file)"),
    Setting("cluster_secret_file", Path, "file holding the shared secret"),
    Setting("durability", str, "'durable' (fsync before ack, default) or 'relaxed'"),
    # TLS on the client port (docs/security.md); files are re-read when they change.
    Setting("tls_cert", Path, "PEM certificate chain the client port presents (TLS on with tls_key)"),
    Setting("tls_key", Path, "PEM private key of tls_cert"),
    Setting("tls_ca", Path, "PEM CA bundle: checks client certificates, and members trust it"),
    Setting("tls_client_auth", parse_bool, "require client certificates signed by tls_ca (mTLS)"),
    # Auth (docs/security.md): a client port beyond loopback needs auth or client certificates.
    Setting("insecure_allow_unauthenticated", parse_bool, "serve a client address beyond loopback with "
            "neither auth enabled nor client certificates required (anyone reaching it reads and writes all)"),
    Setting("root_password_file", Path, "file holding root's password (first line, mode 0400): the leader "
            "adds user root with it and enables auth at the cluster's first start; clients are served once auth "
            "is on (docs/security.md)"),
    Setting("map_size_bytes", int, "LMDB map size in bytes; equal on every member"),
    Setting("log_level", str, "DEBUG, INFO (default), WARNING or ERROR"),
    Setting("log_format", parse_log_format, "'text' (default) or 'json': one event per line, tagged with "
            "the node's name, term and request id (docs/observability.md)"),
    # Metrics, /livez, /readyz and the dashboard (docs/observability.md).
    Setting("http_address", http_address_setting, "host:port for /metrics, /livez, /readyz and /dashboard (off when empty)"),
    Setting("tracing", parse_bool, "OpenTelemetry spans for every RPC, to the global tracer provider (needs the "
            "otel extra; docs/observability.md)"),
    *(Setting(f.name, int if f.type == "int" else float, f"Raft timing {f.name}", timing=True)
      for f in dataclasses.fields(RaftTimings)),
)
_BY_KEY = {s.key: s for s in SETTINGS}


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with the settings below")
    for setting in SETTINGS:
        # A yes/no setting's flag alone means yes (`--tls-client-auth`).
        switch = {"nargs": "?", "const": "true"} if setting.parse is parse_bool else {}
        parser.add_argument(setting.flag, dest=setting.key, metavar="VALUE",
                            help=f"{setting.help} (env {setting.env})", **switch)


def gather(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """Every setting given anywhere, parsed, highest priority winning."""
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(from_file(args.config))
    for setting in SETTINGS:
        for raw in (environ.get(setting.env), getattr(args, setting.key, None)):
            if raw is not None and raw != "":
                values[setting.key] = _parse(setting, raw)
    return values


def _parse(setting: Setting, raw: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as error:
        raise ValueError(f"setting {setting.key} ({setting.flag} / {setting.env}): {error}") from None


def from_file(path: Path) -> dict[str, Any]:
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read config file {path}: {error}") from None
    values = {key: value for key, value in table.items() if key not in ("timings", "peers")}
    values.update(table.get("timings", {}))
    unknown = sorted(set(values) - set(_BY_KEY))
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}; known: {sorted(_BY_KEY)}")
    for key in ("data_dir", "cluster_secret_file", "tls_cert", "tls_key", "tls_ca", "root_password_file"):
        if key in values:
            values[key] = path.parent / Path(values[key]).expanduser()
    values["peers"] = tuple(Member(**peer) for peer in table.get("peers", ()))
    return values


def node_config(values: dict[str, Any]) -> NodeConfig:
    """A validated `NodeConfig`; ValueError names the setting to fix."""
    missing = [key for key in ("name", "data_dir", "raft_address", "client_address") if not values.get(key)]
    if missing:
        raise ValueError(
            "missing settings: " + ", ".join(f"{k} ({_BY_KEY[k].flag} or {_BY_KEY[k].env})" for k in missing)
        )
    secret = values.get("cluster_secret")
    if not secret and values.get("cluster_secret_file"):
        secret_path = values["cluster_secret_file"]
        try:
            secret = Path(secret_path).read_text().strip()
        except OSError as error:
            raise ValueError(f"cannot read cluster_secret_file {secret_path}: {error}") from None
    timings = RaftTimings(**{s.key: values[s.key] for s in SETTINGS if s.timing and s.key in values})
    optional = {key: values[key] for key in ("durability", "map_size_bytes", "member_since_index")
                if key in values}
    return NodeConfig(
        name=values["name"], data_dir=Path(values["data_dir"]), raft_address=values["raft_address"],
        client_address=values["client_address"], peers=values.get("peers", ()),
        cluster_secret=secret or None, timings=timings, **optional,
    )


def to_toml(config: NodeConfig, secret_file: Path | None) -> str:
    """`config` as a TOML file `serve --config` reads back (the secret by path)."""
    lines = [f"{key} = {_toml_value(getattr(config, key))}"
             for key in ("name", "data_dir", "raft_address", "client_address", "durability", "map_size_bytes")]
    if secret_file is not None:
        lines.append(f"cluster_secret_file = {_toml_value(secret_file)}")
    lines.append("\n[timings]")
    lines += [f"{f.name} = {getattr(config.timings, f.name)!r}" for f in dataclasses.fields(RaftTimings)]
    for peer in config.peers:
        lines += ["\n[[peers]]", f"name = {_toml_value(peer.name)}",
                  f"raft_address = {_toml_value(peer.raft_address)}",
                  f"client_address = {_toml_value(peer.client_address)}"]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
