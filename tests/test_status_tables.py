"""The two status tables agree: the server's (a status name to a gRPC code,
`tandemkv.server.api.edge.GRPC_CODE_BY_STATUS`) and the SDK's (a gRPC code
to an error class, `tandemkv.client._retry.ERROR_BY_STATUS_CODE`).

Method: every error class TandemKV defines goes through both tables; what
comes back is the class of the same status (the class itself, or for the
classes that share a status, e.g. `NotAcquired`, the general one)."""

from __future__ import annotations

import grpc
import pytest

from tandemkv import errors
from tandemkv.client._retry import ERROR_BY_STATUS_CODE
from tandemkv.server.api.edge import GRPC_CODE_BY_STATUS, DeadlineTooShort
from tandemkv.server.api.wire import MalformedRequest

ERROR_CLASSES = sorted({value for value in vars(errors).values()
                        if isinstance(value, type) and issubclass(value, errors.TandemKVError)}
                       | {DeadlineTooShort, MalformedRequest}, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("status", list(errors.Status))
def test_every_status_has_the_grpc_code_of_the_same_name(status):
    assert GRPC_CODE_BY_STATUS[status] == grpc.StatusCode[status.value]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_comes_back_from_the_wire_with_its_status(cls):
    assert isinstance(cls.status, errors.Status), f"{cls.__name__}.status is not a Status"
    code = GRPC_CODE_BY_STATUS[cls.status]
    back = ERROR_BY_STATUS_CODE.get(code, errors.TandemKVError)
    assert back.status is cls.status, f"{cls.__name__} goes out as {code.name}, comes back as {back.__name__}"
    if cls in ERROR_BY_STATUS_CODE.values():
        assert back is cls


def test_the_sdk_table_has_one_class_per_code_and_each_names_that_code():
    for code, cls in ERROR_BY_STATUS_CODE.items():
        assert GRPC_CODE_BY_STATUS[cls.status] == code, cls.__name__
