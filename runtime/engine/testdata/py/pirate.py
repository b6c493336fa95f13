"""Lazy Pirate REQ clients (the zguide's reliable request-reply on the client
side), for the engine's test of a process node killed while it serves.

usage: pirate.py ENDPOINT CLIENTS AFTER

CLIENTS threads each send "c<k>-<i> hello" requests to ENDPOINT, one at a
time, without pause, and check that each reply is the request upper-cased.
A request without a reply within TIMEOUT_MS is retried on a new REQ socket
(a REQ socket that lost its reply is stuck), at most RETRIES times. Once
every client has had a reply, the script prints "ready". When a line
arrives on stdin, each client sends AFTER more requests and stops. It then
prints "ok <AFTER * CLIENTS> replies after the line, <n> retries" and exits
0, or "fail: <reason>" and exits 1. Every wait is bounded.
"""

import sys
import threading

import zmq

from peerlib import connect, fail, fail_on, start_threads

TIMEOUT_MS = 1000
RETRIES = 30

endpoint, clients, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = zmq.Context()
line = threading.Event()
first = threading.Barrier(clients + 1)
lock = threading.Lock()
errors, late, retries = [], [0], [0]


def client(k):
    s = connect(ctx, zmq.REQ, endpoint)
    i, left, waited = 0, after, False
    try:
        while left > 0:
            sent_late = line.is_set()
            req = ("c%d-%d hello" % (k, i)).encode()
            i += 1
            for attempt in range(RETRIES + 1):
                s.send(req)
                if s.poll(TIMEOUT_MS):
                    break
                s.close()
                s = connect(ctx, zmq.REQ, endpoint)
                with lock:
                    retries[0] += 1
            else:
                with lock:
                    errors.append("client %d: no reply to %r after %d retries" % (k, req, RETRIES))
                return
            rep = s.recv()
            if rep != req.upper():
                with lock:
                    errors.append("client %d: got %r for %r" % (k, rep, req))
                return
            if not waited:
                waited = True
                first.wait(60)
            if sent_late:
                left -= 1
                with lock:
                    late[0] += 1
    except threading.BrokenBarrierError:
        with lock:
            errors.append("client %d: the others got no reply" % k)
    finally:
        s.close()
        if not waited:
            first.abort()


threads = start_threads(client, clients)
try:
    first.wait(60)
    print("ready", flush=True)
except threading.BrokenBarrierError:
    line.set()
    for t in threads:
        t.join()
    fail("not every client got a reply: " + "; ".join(errors))
sys.stdin.readline()
line.set()
for t in threads:
    t.join()
ctx.term()
fail_on(errors)
print("ok %d replies after the line, %d retries" % (late[0], retries[0]), flush=True)
