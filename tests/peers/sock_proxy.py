#!/usr/bin/env python3
"""pyzmq's (libzmq's) zmq_proxy between an XSUB and an XPUB it binds.

Usage: sock_proxy.py <xsub-bind-endpoint> <xpub-bind-endpoint>

Prints ``READY <xsub-endpoint> <xpub-endpoint>`` (ports read back) once both are bound, then runs
zmq.proxy until stdin closes (a watcher thread terminates the context) or 60 s pass.
"""

import os
import signal
import sys
import threading

import zmq


def main():
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(60)
    ctx = zmq.Context()
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    for s in (xsub, xpub):
        s.setsockopt(zmq.LINGER, 0)
    xsub.bind(sys.argv[1])
    xpub.bind(sys.argv[2])
    print("READY", xsub.getsockopt_string(zmq.LAST_ENDPOINT), xpub.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)

    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        zmq.proxy(xsub, xpub)
    except zmq.ContextTerminated:
        pass


if __name__ == "__main__":
    main()
