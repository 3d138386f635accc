"""The TandemKV Python SDK: `Client` (blocking) and `AsyncClient` (asyncio)
with the same surface, recipe objects (`Counter`, the `Txn` builder and
its `Op`s), the `Retry` policy, result types, and the exceptions of
`tandemkv.errors`, re-exported here.

    from tandemkv.client import Client

    with Client() as client:               # endpoints: $TANDEMKV_ENDPOINTS or `tandemkv up`
        client.put("greeting", "hello")
        client.get("greeting")             # b"hello" (None if missing)
        client.counter("hits").incr()      # 1
        with client.registry.hold("svc", "host:port", ttl=10) as token:
            ...                            # the name is ours while this runs

Calls made at the same time on one client (threads, or tasks) pipeline by
themselves into batched calls while earlier ones are in flight; each keeps
its own request id, retries and exception. `Client(pipeline=False)` and
`AsyncClient(pipeline=False)` send one RPC per call.
"""

from tandemkv.client._async import AsyncClient
from tandemkv.client._auth import AsyncAuth, Auth, AuthStatus, AuthToken, Permission, RoleInfo, UserInfo
from tandemkv.client._claims import Election, Hold, Lock, Registry
from tandemkv.client._claims_async import AsyncElection, AsyncHold, AsyncLock, AsyncRegistry
from tandemkv.client._coordination_ops import LeaseInfo, Registration
from tandemkv.client._crdt import CrdtCounter, CrdtMap, CrdtRegister, CrdtSet, CrdtTables
from tandemkv.client._crdt_async import (AsyncCrdtCounter, AsyncCrdtMap, AsyncCrdtRegister, AsyncCrdtSet,
                                         AsyncCrdtTables)
from tandemkv.client._job_run_many import RunManyFailed
from tandemkv.client._job_worker import Worker
from tandemkv.client._job_worker_async import AsyncWorker
from tandemkv.client._job_worker_core import WorkerStats
from tandemkv.client._leases import AsyncLease, Lease
from tandemkv.client._members import AsyncMembers, MemberInfo, MemberList, Members
from tandemkv.client._presence import Presence, PresenceWatch, Tracked
from tandemkv.client._presence_async import AsyncPresence, AsyncPresenceWatch, AsyncTracked
from tandemkv.client._presence_core import PresenceDiff, PresenceMeta
from tandemkv.client._pubsub import PublishStream, PubSub, Subscription
from tandemkv.client._pubsub_async import AsyncPublishStream, AsyncPubSub, AsyncSubscription
from tandemkv.client._pubsub_core import Gap, Lagged, Message, Published, Publisher
from tandemkv.client._recipes import AsyncCounter, AsyncTxn, Counter, Op, Txn, TxnOp
from tandemkv.client._results import (ClusterStatus, GossipPeer, GossipView, KeyValue, NodeInfo, PutResult,
                                      RangeResult, TxnResult)
from tandemkv.client._retry import NO_RETRY, Retry
from tandemkv.client._sync import Client
from tandemkv.client._tls import TLSConfig
from tandemkv.client._watch import AsyncObserver, AsyncWatcher, Observer, WatchEvent, Watcher, WatchOverflow
from tandemkv.errors import (
    AlreadyExists,
    Compacted,
    FailedPrecondition,
    InvalidArgument,
    NotAcquired,
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
    "AsyncCrdtCounter", "AsyncCrdtMap", "AsyncCrdtRegister", "AsyncCrdtSet", "AsyncCrdtTables",
    "CrdtCounter", "CrdtMap", "CrdtRegister", "CrdtSet", "CrdtTables", "AlreadyExists", "AsyncClient",
    "AsyncCounter", "AsyncElection", "AsyncHold", "AsyncLease", "AsyncLock", "AsyncObserver",
    "AsyncPubSub", "AsyncRegistry", "AsyncSubscription", "AsyncTxn", "AsyncWatcher", "Client",
    "ClusterStatus", "Compacted", "Counter", "Election", "FailedPrecondition", "Gap", "GossipPeer",
    "GossipView", "Hold", "InvalidArgument", "KeyValue", "Lagged", "Lease", "LeaseInfo", "Lock",
    "Message", "NO_RETRY", "NodeInfo", "NotAcquired", "NotFound", "Observer", "Op", "OutcomeUnknown",
    "OutOfRange", "PermissionDenied", "PubSub", "Published", "Publisher", "PutResult", "RangeResult",
    "Registration", "Registry", "ResourceExhausted", "Retry", "Subscription", "TandemKVError", "Txn",
    "TxnOp", "TxnResult", "Unauthenticated", "Unavailable", "WatchEvent", "Watcher", "WatchOverflow",
    "AsyncPresence", "AsyncPresenceWatch", "AsyncTracked", "Presence", "PresenceDiff", "PresenceMeta",
    "PresenceWatch", "Tracked", "AsyncMembers", "MemberInfo", "MemberList", "Members", "TLSConfig",
    "AsyncAuth", "Auth", "AuthStatus", "AuthToken", "Permission", "RoleInfo", "UserInfo",
    "AsyncWorker", "RunManyFailed", "Worker", "WorkerStats",
    "AsyncPublishStream", "PublishStream",
]
