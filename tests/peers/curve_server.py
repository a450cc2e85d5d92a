"""A libzmq (pyzmq) CURVE ROUTER for `curve_handshakes client`: the bench's fixed server keys, no ZAP
handler (any client key is accepted). Prints its endpoint, then serves until killed."""
import sys

import zmq

SERVER_PUBLIC = b"+#Lcz^LmE:FIw[XJK1f>-2UxZx7}*MlI1R<1Axuo"
SERVER_SECRET = b"CB.VWmoctMCt/v:Ek=}g8S13Rb$x3imC2mA=E(BP"

ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.curve_server = True
s.curve_publickey = SERVER_PUBLIC
s.curve_secretkey = SERVER_SECRET
s.bind(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:*")
print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
try:
    while True:
        s.recv_multipart()
except KeyboardInterrupt:
    pass
