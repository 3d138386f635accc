from tandemkv.v1 import kv_pb2 as _kv_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BEST_EFFORT: _ClassVar[DeliveryMode]
    DURABLE: _ClassVar[DeliveryMode]
BEST_EFFORT: DeliveryMode
DURABLE: DeliveryMode

class PublisherId(_message.Message):
    __slots__ = ("node", "incarnation", "session")
    NODE_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    node: str
    incarnation: int
    session: int
    def __init__(self, node: _Optional[str] = ..., incarnation: _Optional[int] = ..., session: _Optional[int] = ...) -> None: ...

class PubSubMessage(_message.Message):
    __slots__ = ("topic", "payload", "publisher", "seq", "offset", "publish_ms")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MS_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    payload: bytes
    publisher: PublisherId
    seq: int
    offset: int
    publish_ms: int
    def __init__(self, topic: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., publisher: _Optional[_Union[PublisherId, _Mapping]] = ..., seq: _Optional[int] = ..., offset: _Optional[int] = ..., publish_ms: _Optional[int] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("topic", "payload", "mode", "local_only", "skip_subscription", "request_id", "batch")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ONLY_FIELD_NUMBER: _ClassVar[int]
    SKIP_SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    payload: bytes
    mode: DeliveryMode
    local_only: bool
    skip_subscription: int
    request_id: bytes
    batch: _containers.RepeatedCompositeFieldContainer[PublishRequest]
    def __init__(self, topic: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., mode: _Optional[_Union[DeliveryMode, str]] = ..., local_only: bool = ..., skip_subscription: _Optional[int] = ..., request_id: _Optional[bytes] = ..., batch: _Optional[_Iterable[_Union[PublishRequest, _Mapping]]] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("header", "publisher", "seq", "delivered_locally", "offset", "batch")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_LOCALLY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    publisher: PublisherId
    seq: int
    delivered_locally: int
    offset: int
    batch: _containers.RepeatedCompositeFieldContainer[PublishResponse]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., publisher: _Optional[_Union[PublisherId, _Mapping]] = ..., seq: _Optional[int] = ..., delivered_locally: _Optional[int] = ..., offset: _Optional[int] = ..., batch: _Optional[_Iterable[_Union[PublishResponse, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("add_topics", "add_prefixes", "remove_topics", "remove_prefixes", "mode", "from_offset", "from_now", "grant_messages")
    ADD_TOPICS_FIELD_NUMBER: _ClassVar[int]
    ADD_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TOPICS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FROM_NOW_FIELD_NUMBER: _ClassVar[int]
    GRANT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    add_topics: _containers.RepeatedScalarFieldContainer[bytes]
    add_prefixes: _containers.RepeatedScalarFieldContainer[bytes]
    remove_topics: _containers.RepeatedScalarFieldContainer[bytes]
    remove_prefixes: _containers.RepeatedScalarFieldContainer[bytes]
    mode: DeliveryMode
    from_offset: int
    from_now: bool
    grant_messages: int
    def __init__(self, add_topics: _Optional[_Iterable[bytes]] = ..., add_prefixes: _Optional[_Iterable[bytes]] = ..., remove_topics: _Optional[_Iterable[bytes]] = ..., remove_prefixes: _Optional[_Iterable[bytes]] = ..., mode: _Optional[_Union[DeliveryMode, str]] = ..., from_offset: _Optional[int] = ..., from_now: bool = ..., grant_messages: _Optional[int] = ...) -> None: ...

class RetentionGap(_message.Message):
    __slots__ = ("from_offset", "first_offset")
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    from_offset: int
    first_offset: int
    def __init__(self, from_offset: _Optional[int] = ..., first_offset: _Optional[int] = ...) -> None: ...

class SubscriptionEvent(_message.Message):
    __slots__ = ("message", "lagged", "gap")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAGGED_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    message: PubSubMessage
    lagged: int
    gap: RetentionGap
    def __init__(self, message: _Optional[_Union[PubSubMessage, _Mapping]] = ..., lagged: _Optional[int] = ..., gap: _Optional[_Union[RetentionGap, _Mapping]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("header", "subscription_id", "events")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    header: _kv_pb2.ResponseHeader
    subscription_id: int
    events: _containers.RepeatedCompositeFieldContainer[SubscriptionEvent]
    def __init__(self, header: _Optional[_Union[_kv_pb2.ResponseHeader, _Mapping]] = ..., subscription_id: _Optional[int] = ..., events: _Optional[_Iterable[_Union[SubscriptionEvent, _Mapping]]] = ...) -> None: ...

class RelayHello(_message.Message):
    __slots__ = ("origin", "incarnation", "from_start", "token", "target")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    origin: str
    incarnation: int
    from_start: bool
    token: bytes
    target: str
    def __init__(self, origin: _Optional[str] = ..., incarnation: _Optional[int] = ..., from_start: bool = ..., token: _Optional[bytes] = ..., target: _Optional[str] = ...) -> None: ...

class RelayedMessage(_message.Message):
    __slots__ = ("topic", "payload", "session", "seq")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    topic: bytes
    payload: bytes
    session: int
    seq: int
    def __init__(self, topic: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., session: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class RelayFrame(_message.Message):
    __slots__ = ("hello", "first_seq", "messages", "overflowed")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    hello: RelayHello
    first_seq: int
    messages: _containers.RepeatedCompositeFieldContainer[RelayedMessage]
    overflowed: int
    def __init__(self, hello: _Optional[_Union[RelayHello, _Mapping]] = ..., first_seq: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[RelayedMessage, _Mapping]]] = ..., overflowed: _Optional[int] = ...) -> None: ...

class RelayReply(_message.Message):
    __slots__ = ("accepted", "received", "overflowed", "lost_in_transit")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    LOST_IN_TRANSIT_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    received: int
    overflowed: int
    lost_in_transit: int
    def __init__(self, accepted: bool = ..., received: _Optional[int] = ..., overflowed: _Optional[int] = ..., lost_in_transit: _Optional[int] = ...) -> None: ...
