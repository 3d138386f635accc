"""`python -m examples.chat --port 8001 [--endpoints host:port,...]`: serves
the chat page and its WebSocket on 127.0.0.1 until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from examples.chat.app import build_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.chat", description=__doc__)
    parser.add_argument("--port", type=int, default=8001, help="HTTP port of this instance (default 8001)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--endpoints", default=None,
                        help="the cluster's client endpoints, host:port,... (default: $TANDEMKV_ENDPOINTS, "
                             "else the cluster `tandemkv up` started in this directory)")
    parser.add_argument("--name", default=None, help="this instance's name, shown beside its users "
                                                     "(default: chat-PORT)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: give a port between 1 and 65535")
    try:
        app = build_app(args.endpoints, args.name or f"chat-{args.port}")
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    print(f"chat: http://{args.host}:{args.port}/ (instance {args.name or f'chat-{args.port}'})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
