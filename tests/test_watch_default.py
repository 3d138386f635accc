"""`client.watch(key)` watches that one key, as `tandemkv watch KEY` and
etcd do; `prefix=True` (the CLI's `--prefix`) watches every key starting
with it. Checked on the WatchRequest each watcher sends, sync and asyncio,
and against the CLI's parser."""

from __future__ import annotations

from tandemkv.client import AsyncClient, Client
from tandemkv.server.cli.main import build_parser


def test_a_watch_is_of_the_one_key_unless_prefix_is_asked_for(fake_server):
    with Client([fake_server]) as client:
        exact = client.watch("jobs/1", start_revision=1)
        every = client.watch("jobs/", prefix=True, start_revision=1)
        assert (exact.state.request().range.key, exact.state.request().range.prefix) == (b"jobs/1", False)
        assert (every.state.request().range.key, every.state.request().range.prefix) == (b"jobs/", True)
        exact.close()
        every.close()


def test_the_asyncio_watch_has_the_same_default(fake_server):
    client = AsyncClient([fake_server])
    assert client.watch("jobs/1", start_revision=1).state.request().range.prefix is False
    assert client.watch("jobs/", prefix=True, start_revision=1).state.request().range.prefix is True


def test_the_cli_watch_has_the_same_default():
    parser = build_parser()
    assert parser.parse_args(["watch", "jobs/1"]).prefix is False
    assert parser.parse_args(["watch", "jobs/", "--prefix"]).prefix is True
