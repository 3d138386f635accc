"""A client that leaves before its call's status is sent is not a node
fault: grpcio's asyncio server reports it on its core logger as an ERROR
with an `ExecuteBatchError` traceback (seen in the fuzz tier after a
streaming call's deadline passed), and the node's logging turns that into
one INFO line; any other error on that logger keeps its traceback.

Method: the node's logging (`observe.logs.configure`) on a string stream,
records raised through grpcio's logger name with exceptions named as
grpcio names them.
"""

from __future__ import annotations

import io
import logging

import pytest

from tandemkv.server.observe import logs


class ExecuteBatchError(Exception):
    """Named as grpcio's (grpc._cython.cygrpc.ExecuteBatchError)."""


@pytest.fixture
def stream():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    text = io.StringIO()
    logs.configure("info", "text", "n1", text)
    yield text
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def _raise_and_log(error: Exception) -> None:
    try:
        raise error
    except Exception:
        logging.getLogger(logs.GRPC_CORE_LOGGER).exception(
            "ExecuteBatchError raised in core by servicer method [/tandemkv.v1.Lease/LeaseKeepAlive]")


def test_a_client_that_left_is_one_info_line_without_a_traceback(stream):
    _raise_and_log(ExecuteBatchError('Failed "execute_batch"'))
    line = stream.getvalue()
    assert "Traceback" not in line and line.count("\n") == 1, line
    assert " INFO n1 " in line and "a client left before its call's status was sent" in line
    assert "LeaseKeepAlive" in line


def test_other_errors_on_grpcs_logger_keep_their_traceback(stream):
    _raise_and_log(RuntimeError("a real fault"))
    text = stream.getvalue()
    assert "Traceback" in text and " ERROR n1 " in text and "RuntimeError: a real fault" in text


def test_configuring_twice_installs_the_filter_once(stream):
    logs.configure("info", "text", "n1", stream)
    filters = logging.getLogger(logs.GRPC_CORE_LOGGER).filters
    assert sum(isinstance(f, logs.ClientLeftFilter) for f in filters) == 1
