"""The observability port's address setting (`http_address`), read without
loading the HTTP server (the command line parses every setting)."""

from __future__ import annotations


def parse_http_address(address: str) -> tuple[str, int]:
    """'host:port' -> (host, port); ValueError says what to write."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"http_address must be 'host:port' (port 0 picks a free one), got {address!r}")
    return host.strip("[]"), int(port)


def http_address_setting(text: str) -> str:
    """The setting as given, once checked ('' turns the port off)."""
    if text.strip():
        parse_http_address(text)
    return text.strip()
