#!/usr/bin/python3
"""A ztopo plugin in Python: upper-cases the last frame of each message.

ztopo starts it with ZTOPO_PLUGIN_ENDPOINT set, and it speaks the plugin
protocol ztopo-plugin/1 over a DEALER socket:

    plugin -> ztopo   [b"READY", b"ztopo-plugin/1"]   once, first
    ztopo  -> plugin  [b"REQ", id, frame...]          a message to handle
    plugin -> ztopo   [b"REP", id, frame...]          the result (no frame: drop it)
    plugin -> ztopo   [b"ERR", id, text]              this message failed
    ztopo  -> plugin  [b"STOP"]                       finish and exit

Answers may come in any order; id is opaque, send it back as it came.
Needs pyzmq (Debian: python3-zmq; elsewhere: pip install pyzmq).
"""
import os
import sys

import zmq


def handle(frames):
    """Returns the frames to send on; raise to answer ERR."""
    # Payloads are bytes: upper-case ASCII letters only, whatever the encoding.
    frames[-1] = frames[-1].upper()
    return frames


def main():
    endpoint = os.environ["ZTOPO_PLUGIN_ENDPOINT"]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)  # let last answers leave, but never hang on exit
    sock.setsockopt(zmq.RCVTIMEO, 1000)  # wake up now and then to check on ztopo
    sock.connect(endpoint)
    parent = os.getppid()
    sock.send_multipart([b"READY", b"ztopo-plugin/1"])
    print("upper_plugin ready for node %s" % os.environ.get("ZTOPO_NODE", "?"), file=sys.stderr)
    while True:
        try:
            msg = sock.recv_multipart()
        except zmq.Again:
            if os.getppid() != parent:
                break  # ztopo is gone (it kills its plugins on Linux; elsewhere, this)
            continue
        cmd = msg[0]
        if cmd == b"STOP":
            break
        if cmd != b"REQ" or len(msg) < 3:
            continue  # a newer ztopo may send more; ignore what we do not know
        req_id, frames = msg[1], msg[2:]
        try:
            out = handle(frames)
        except Exception as e:  # one bad message must not end the plugin
            sock.send_multipart([b"ERR", req_id, str(e).encode()])
            continue
        sock.send_multipart([b"REP", req_id] + list(out or []))
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
