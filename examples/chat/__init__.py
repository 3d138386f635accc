"""A chat web app on TandemKV: rooms, the last messages of a room from the
strong plane, live messages through pub/sub, who is online through presence.

Run several instances against one cluster (each may name a different node);
every browser sees the same rooms. See examples/chat/README.md.
"""
