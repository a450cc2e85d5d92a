#!/usr/bin/env python3
"""A peer that dies mid-message, for tests/tests/faults_interop.rs (reliability.md B-1): the test
kills it with SIGKILL once it printed ``SENT``, so the crash is a real process crash.

Modes (first argument):

    raw-partial HOST PORT OPENING_HEX PARTIAL_HEX
        a plain TCP socket (no libzmq): connect, write OPENING_HEX (a ZMTP greeting and READY), then
        PARTIAL_HEX (frames of a message whose last frame never comes), print ``SENT``, and sleep.
        The server's greeting is never read, so the kernel answers the kill with a RST.
    zmq-sndmore ENDPOINT
        a pyzmq PUSH connects, sends the whole message [b"whole"], then b"part-1" and b"part-2"
        with SNDMORE (a three-part message that is never finished), prints ``SENT``, and sleeps.
        libzmq writes a multipart message to the wire only when it is complete, so nothing of the
        unfinished one leaves the process: the test checks the crash costs nothing else.

The process exits when stdin closes, or after 30 s, if nobody killed it.
"""

import os
import socket
import sys
import threading
import time


def out(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def exit_when_stdin_closes():
    def watch():
        while sys.stdin.buffer.read(1):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    exit_when_stdin_closes()
    mode = sys.argv[1]
    if mode == "raw-partial":
        host, port, opening, partial = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        s = socket.create_connection((host, port))
        s.sendall(bytes.fromhex(opening))
        s.sendall(bytes.fromhex(partial))
        out("SENT")
    elif mode == "zmq-sndmore":
        import zmq

        ctx = zmq.Context()
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(sys.argv[2])
        s.send(b"whole")
        s.send(b"part-1", zmq.SNDMORE)
        s.send(b"part-2", zmq.SNDMORE)
        out("SENT")
    else:
        out("BAD", mode)
        return
    time.sleep(30)


if __name__ == "__main__":
    main()
