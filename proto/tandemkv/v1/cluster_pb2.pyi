from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FOLLOWER: _ClassVar[Role]
    CANDIDATE: _ClassVar[Role]
    LEADER: _ClassVar[Role]

class GossipPeerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GOSSIP_PEER_STATE_UNSPECIFIED: _ClassVar[GossipPeerState]
    GOSSIP_PEER_ALIVE: _ClassVar[GossipPeerState]
    GOSSIP_PEER_SUSPECT: _ClassVar[GossipPeerState]
    GOSSIP_PEER_DEAD: _ClassVar[GossipPeerState]
FOLLOWER: Role
CANDIDATE: Role
LEADER: Role
GOSSIP_PEER_STATE_UNSPECIFIED: GossipPeerState
GOSSIP_PEER_ALIVE: GossipPeerState
GOSSIP_PEER_SUSPECT: GossipPeerState
GOSSIP_PEER_DEAD: GossipPeerState

class Member(_message.Message):
    __slots__ = ("name", "raft_address", "client_address", "voter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    raft_address: str
    client_address: str
    voter: bool
    def __init__(self, name: _Optional[str] = ..., raft_address: _Optional[str] = ..., client_address: _Optional[str] = ..., voter: bool = ...) -> None: ...

class MemberSet(_message.Message):
    __slots__ = ("members", "config_index")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_INDEX_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    config_index: int
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., config_index: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GossipPeer(_message.Message):
    __slots__ = ("name", "state", "rounds_silent", "heartbeat_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_SILENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: GossipPeerState
    rounds_silent: int
    heartbeat_ms: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[GossipPeerState, str]] = ..., rounds_silent: _Optional[int] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("name", "role", "leader", "leader_client_address", "term", "commit_index", "applied_index", "has_quorum", "ready", "members", "gossip_running", "gossip_round", "gossip_peers", "gossip_rejected")
    class GossipRejectedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    LEADER_CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    HAS_QUORUM_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_RUNNING_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_ROUND_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_PEERS_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_REJECTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    leader: str
    leader_client_address: str
    term: int
    commit_index: int
    applied_index: int
    has_quorum: bool
    ready: bool
    members: _containers.RepeatedCompositeFieldContainer[Member]
    gossip_running: bool
    gossip_round: int
    gossip_peers: _containers.RepeatedCompositeFieldContainer[GossipPeer]
    gossip_rejected: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., leader: _Optional[str] = ..., leader_client_address: _Optional[str] = ..., term: _Optional[int] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., has_quorum: bool = ..., ready: bool = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., gossip_running: bool = ..., gossip_round: _Optional[int] = ..., gossip_peers: _Optional[_Iterable[_Union[GossipPeer, _Mapping]]] = ..., gossip_rejected: _Optional[_Mapping[str, int]] = ...) -> None: ...

class MembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MembersResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class MemberListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberListResponse(_message.Message):
    __slots__ = ("members", "config_index", "leader", "change_in_progress")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    config_index: int
    leader: str
    change_in_progress: str
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., config_index: _Optional[int] = ..., leader: _Optional[str] = ..., change_in_progress: _Optional[str] = ...) -> None: ...

class MemberAddRequest(_message.Message):
    __slots__ = ("member", "learner")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    LEARNER_FIELD_NUMBER: _ClassVar[int]
    member: Member
    learner: bool
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., learner: bool = ...) -> None: ...

class MemberPromoteRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class MemberRemoveRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
