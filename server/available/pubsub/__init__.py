"""Best-effort pub/sub, the pure core: the hub of one node (subscriptions by
topic and prefix, bounded buffers with lag notices, publisher sequence
numbers), the relay's queues, frames and gap accounting, and a receiver's
gap counter. No threads, sockets, gRPC or event loop: the running part is
server/available/pubsub_plane.py and pubsub_relay.py. docs/pubsub.md has
the model and the guarantees.
"""

from tandemkv.server.available.pubsub.buffer import SubscriberBuffer
from tandemkv.server.available.pubsub.gaps import GapCounter
from tandemkv.server.available.pubsub.hub import Hub, Published, Publisher
from tandemkv.server.available.pubsub.index import SubscriptionIndex
from tandemkv.server.available.pubsub.messages import (Lagged, Message, PublisherId, check_payload,
                                                       check_publisher, check_topic)
from tandemkv.server.available.pubsub.relay import InboundStreams, OriginState, OutboundQueue, RelayFrame

__all__ = ["GapCounter", "Hub", "InboundStreams", "Lagged", "Message", "OriginState", "OutboundQueue",
           "Published", "Publisher", "PublisherId", "RelayFrame", "SubscriberBuffer", "SubscriptionIndex",
           "check_payload", "check_publisher", "check_topic"]
