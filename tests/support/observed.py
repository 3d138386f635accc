"""A `ServeCluster` whose nodes serve their observability port
(`http_address`) and log in a chosen format, and HTTP helpers to read it.

    with ServeCluster(tmp_path, nodes=3) as cluster:   # after observe(cluster, ...)
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from tests.support.cluster import ServeCluster
from tests.support.ports import free_ports

HTTP_TIMEOUT_S = 5.0
POLL_S = 0.1


def observe(cluster: ServeCluster, log_format: str = "text") -> dict[str, str]:
    """Gives every node of a not yet started `cluster` an HTTP port and the
    log format; returns each node's base URL by name."""
    urls = {}
    for member, port in zip(cluster.members, free_ports(len(cluster.members))):
        path = cluster.config_path(member.name)
        # Top-level keys go before the TOML file's first table.
        path.write_text(f'http_address = "127.0.0.1:{port}"\nlog_format = "{log_format}"\n' + path.read_text())
        urls[member.name] = f"http://127.0.0.1:{port}"
    return urls


def get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; (0, why) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


def wait_for_status(url: str, status: int, timeout_s: float) -> str:
    """Polls `url` until it answers `status`; returns the body."""
    deadline = time.monotonic() + timeout_s
    last = (0, "")
    while time.monotonic() < deadline:
        last = get(url)
        if last[0] == status:
            return last[1]
        time.sleep(POLL_S)
    raise AssertionError(f"{url} answered {last} and never {status} within {timeout_s} s")
