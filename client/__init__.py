"""The TandemKV Python SDK: `Client` (blocking) and `AsyncClient` (asyncio)
with the same surface, recipe objects (`Counter`, the `Txn` builder and
its `Op`s), the `Retry` policy, result types, and the exceptions of
`tandemkv.errors`, re-exported here.

    from tandemkv.client import Client

    with Client() as client:               # endpoints: $TANDEMKV_ENDPOINTS or `tandemkv up`
        client.put("greeting", "hello")
        client.get("greeting")             # b"hello" (None if missing)
        client.counter("hits").incr()      # 1
"""

from tandemkv.client._async import AsyncClient
from tandemkv.client._recipes import AsyncCounter, AsyncTxn, Counter, Op, Txn, TxnOp
from tandemkv.client._results import ClusterStatus, KeyValue, NodeInfo, PutResult, RangeResult, TxnResult
from tandemkv.client._retry import NO_RETRY, Retry
from tandemkv.client._sync import Client
from tandemkv.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutcomeUnknown,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TandemKVError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AlreadyExists", "AsyncClient", "AsyncCounter", "AsyncTxn", "Client", "ClusterStatus", "Counter",
    "FailedPrecondition", "InvalidArgument", "KeyValue", "NO_RETRY", "NodeInfo", "NotFound", "Op",
    "OutcomeUnknown", "OutOfRange", "PermissionDenied", "PutResult", "RangeResult", "ResourceExhausted",
    "Retry", "TandemKVError", "Txn", "TxnOp", "TxnResult", "Unauthenticated", "Unavailable",
]
