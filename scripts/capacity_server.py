#!/usr/bin/env python3
"""The libzmq side of scripts/capacity.sh: a pyzmq ROUTER (NULL mechanism) on tcp://127.0.0.1:<free
port> that echoes every message to its sender, as `conn_capacity serve` does with zmtp. Prints
`ENDPOINT tcp://127.0.0.1:<port>` and runs until killed. The soft RLIMIT_NOFILE is raised to the
hard limit (each connection is one descriptor)."""
import resource
import sys

import zmq

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

ctx = zmq.Context()
# libzmq caps its sockets per context (1023 by default) and sizes its poller from it; connections
# are not sockets, but raise it anyway so the cap never matters.
ctx.set(zmq.MAX_SOCKETS, 65536)
sock = ctx.socket(zmq.ROUTER)
sock.setsockopt(zmq.LINGER, 0)
port = sock.bind_to_random_port("tcp://127.0.0.1")
print(f"ENDPOINT tcp://127.0.0.1:{port}", flush=True)
print(f"libzmq {zmq.zmq_version()} pyzmq {zmq.__version__}", file=sys.stderr, flush=True)
while True:
    sock.send_multipart(sock.recv_multipart(copy=False), copy=False)
