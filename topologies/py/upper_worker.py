#!/usr/bin/python3
"""A ztopo `command` node in Python: upper-cases messages.

ztopo starts this program with the endpoints of the sockets the topology
gives the node in its environment, ZTOPO_<SOCKET>_BIND and
ZTOPO_<SOCKET>_CONNECT (comma-separated lists, the socket name upper case),
plus ZTOPO_NODE, ZTOPO_REPLICA and ZTOPO_TOPOLOGY. The program opens the
sockets itself; ztopo never touches them.

This worker has two sockets, `in` (PULL) and `out` (PUSH). It reads each
message from `in`, upper-cases the ASCII letters of its last frame and
sends it on `out`. When the last frame is END it passes END on and exits
0, which ztopo reads as "this node has completed". SIGTERM or SIGINT stop
it cleanly, also with exit status 0.

Every wait is bounded (poll with a timeout) so that a signal is seen
promptly even when no message comes, and every socket has a bounded linger
so that closing never hangs.
"""

import os
import signal
import sys

import zmq

POLL_MS = 200  # how often a blocked wait looks at the stop flag
LINGER_MS = 2000  # how long close() may wait to deliver what is queued

stopping = False


def on_signal(signum, frame):
    global stopping
    stopping = True


def endpoints(socket, kind):
    value = os.environ.get("ZTOPO_%s_%s" % (socket.upper(), kind), "")
    return [e for e in value.split(",") if e]


def open_socket(ctx, kind, name):
    binds, connects = endpoints(name, "BIND"), endpoints(name, "CONNECT")
    if not binds and not connects:
        sys.exit("upper_worker: no endpoint for socket %r: set ZTOPO_%s_CONNECT or _BIND"
                 % (name, name.upper()))
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    for ep in binds:
        sock.bind(ep)
    for ep in connects:
        sock.connect(ep)
    return sock


def send(sock, frames):
    """Sends frames, waiting for room at most until a stop is asked."""
    while not stopping:
        if sock.poll(POLL_MS, zmq.POLLOUT):
            sock.send_multipart(frames)
            return True
    return False


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node = os.environ.get("ZTOPO_NODE", "upper_worker")

    ctx = zmq.Context()
    pull = open_socket(ctx, zmq.PULL, "in")
    push = open_socket(ctx, zmq.PUSH, "out")

    count = 0
    while not stopping:
        if not pull.poll(POLL_MS, zmq.POLLIN):
            continue
        frames = pull.recv_multipart()
        frames[-1] = frames[-1].upper()  # bytes.upper: ASCII letters only
        if not send(push, frames):
            break
        if frames[-1] == b"END":
            break
        count += 1

    print("%s: upper-cased %d messages" % (node, count), file=sys.stderr)
    pull.close(linger=0)
    push.close()  # waits up to LINGER_MS for END to leave
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
