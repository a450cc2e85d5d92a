#!/usr/bin/env python3
"""relay_peer.py with CURVE and PLAIN: the same process, commands and output lines (see relay_peer.py),
plus security keys on NEW, for the relay's security tests (relay/tests/e2e_security.rs):

    curve_secret=<path>      load this certificate (zmq.auth.load_certificate: a NAME.key_secret
                             file) and set CURVE_PUBLICKEY and CURVE_SECRETKEY
    curve_serverkey=<path|z85>
                             CURVE_SERVERKEY: the public key of a certificate file, or 40 Z85
                             characters (the socket is then a CURVE client)
    curve_server=1           CURVE_SERVER (with curve_secret=): the socket is a CURVE server; with no
                             ZAP handler libzmq accepts any client key
    plain_username=<text>    PLAIN_USERNAME (the socket is then a PLAIN client)
    plain_password=<text>    PLAIN_PASSWORD
    monitor=1                print the socket's handshake monitor events, one line each:
                             EVENT <name> <EVENT_NAME> <value>  (HANDSHAKE_SUCCEEDED,
                             HANDSHAKE_FAILED_AUTH, HANDSHAKE_FAILED_PROTOCOL, ...)

Paths must not contain spaces. The security keys are taken out of the NEW line before relay_peer.py
sees it and applied as soon as the socket is created, before it binds or connects.
"""

import os
import sys
import threading

import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relay_peer  # noqa: E402
from peerlib import EVENT_NAMES, StdinLines, out  # noqa: E402

KEYS = ("curve_secret", "curve_serverkey", "curve_server", "plain_username", "plain_password", "monitor")

# The security options of the NEW command being processed, applied by SecureContext.socket.
_pending = {"options": [], "name": None}


def _server_key(value):
    if os.path.exists(value):
        public, _ = zmq.auth.load_certificate(value)
        return public
    return value.encode("ascii")


def _watch(name, monitor):
    """Prints the handshake events of one socket (on a thread: relay_peer's loop is not ours)."""
    while True:
        try:
            event = recv_monitor_message(monitor)
        except zmq.ZMQError:
            break
        kind = EVENT_NAMES.get(event["event"], str(event["event"]))
        if kind == "MONITOR_STOPPED":
            break
        if kind.startswith("HANDSHAKE"):
            out("EVENT", name, kind, event["value"])
    monitor.close(linger=0)


class SecureContext(zmq.Context):
    def socket(self, socket_type, *args, **kwargs):
        sock = super().socket(socket_type, *args, **kwargs)
        options, name = _pending["options"], _pending["name"]
        _pending["options"], _pending["name"] = [], None
        for key, value in options:
            if key == "curve_secret":
                public, secret = zmq.auth.load_certificate(value)
                sock.curve_publickey = public
                sock.curve_secretkey = secret
            elif key == "curve_serverkey":
                sock.curve_serverkey = _server_key(value)
            elif key == "curve_server":
                sock.curve_server = value == "1"
            elif key == "plain_username":
                sock.plain_username = value.encode()
            elif key == "plain_password":
                sock.plain_password = value.encode()
            elif key == "monitor" and value == "1":
                monitor = sock.get_monitor_socket()
                threading.Thread(target=_watch, args=(name, monitor), daemon=True).start()
        return sock


def _strip_security(line):
    """Takes the security keys out of a NEW line (bytes), remembering them for the next socket."""
    text = line.decode("utf-8", "replace")
    words = text.rstrip("\r").split(" ")
    if words[0] != "NEW":
        return line
    kept, options = [], []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key in KEYS:
            options.append((key, value))
        else:
            kept.append(word)
    _pending["options"] = options
    _pending["name"] = words[1] if len(words) > 1 else None
    return " ".join(kept).encode("utf-8")


class SecureStdinLines(StdinLines):
    def feed(self, command):
        return super().feed(lambda line: command(_strip_security(line)))


relay_peer.zmq.Context = SecureContext
relay_peer.StdinLines = SecureStdinLines

if __name__ == "__main__":
    sys.exit(relay_peer.main())
