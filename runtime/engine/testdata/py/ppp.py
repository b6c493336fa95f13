"""Paranoid Pirate peers written from the zguide (chapter 4, ppqueue.py and
ppworker.py), for ztopo's interop tests of its ppqueue builtin and of its
workers' PPP side. Only the timing is a parameter, so that tests need not
wait whole seconds.

usage:
    ppp.py queue FRONTEND BACKEND HEARTBEAT_MS
        the zguide's ppqueue: ROUTER frontend (clients), ROUTER backend
        (workers), LRU of ready workers, heartbeats to idle workers, purge
        after 3 missed beats. Prints "ready" once bound, then "evicted ID"
        for each expired worker; runs until killed or stdin closes.
    worker BACKEND HEARTBEAT_MS
        the zguide's ppworker, replying with the request upper-cased:
        DEALER with a random identity, "\\x01" when ready, "\\x02" every
        heartbeat, reconnect with backoff after 3 silent heartbeats. Prints
        "ready" once connected, "heard" at the first message from the
        queue, "reconnect" at each reconnect; runs until
        killed or stdin closes.
"""

import random
import sys
import threading
import time
from collections import OrderedDict

import zmq

from peerlib import watch_stdin

LIVENESS = 3
READY = b"\x01"
HEARTBEAT = b"\x02"


def queue(frontend_ep, backend_ep, hb_ms):
    hb = hb_ms / 1000.0
    ctx = zmq.Context()
    frontend = ctx.socket(zmq.ROUTER)
    backend = ctx.socket(zmq.ROUTER)
    for s in (frontend, backend):
        s.setsockopt(zmq.LINGER, 0)
    frontend.bind(frontend_ep)
    backend.bind(backend_ep)
    workers = OrderedDict()  # address -> expiry

    def ready(address):
        workers.pop(address, None)
        workers[address] = time.time() + hb * LIVENESS

    poll_workers = zmq.Poller()
    poll_workers.register(backend, zmq.POLLIN)
    poll_both = zmq.Poller()
    poll_both.register(frontend, zmq.POLLIN)
    poll_both.register(backend, zmq.POLLIN)
    stop = threading.Event()
    watch_stdin(stop)
    print("ready", flush=True)
    heartbeat_at = time.time() + hb
    while not stop.is_set():
        poller = poll_both if workers else poll_workers
        socks = dict(poller.poll(hb_ms))
        if socks.get(backend) == zmq.POLLIN:
            frames = backend.recv_multipart()
            address = frames[0]
            ready(address)
            msg = frames[1:]
            if len(msg) == 1:
                if msg[0] not in (READY, HEARTBEAT):
                    print("E: invalid message from worker: %r" % msg, flush=True)
            else:
                frontend.send_multipart(msg)
        if socks.get(frontend) == zmq.POLLIN and workers:
            frames = frontend.recv_multipart()
            address, _ = workers.popitem(last=False)
            backend.send_multipart([address] + frames)
        if time.time() >= heartbeat_at:
            for address in workers:
                backend.send_multipart([address, HEARTBEAT])
            heartbeat_at = time.time() + hb
        now = time.time()
        for address, expiry in list(workers.items()):
            if expiry < now:
                del workers[address]
                print("evicted %r" % address, flush=True)
    ctx.destroy(linger=0)


def worker(backend_ep, hb_ms):
    ctx = zmq.Context()
    poller = zmq.Poller()
    stop = threading.Event()
    watch_stdin(stop)

    def connect():
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IDENTITY, b"%04X-%04X" % (random.randint(0, 0x10000), random.randint(0, 0x10000)))
        poller.register(s, zmq.POLLIN)
        s.connect(backend_ep)
        s.send(READY)
        return s

    s = connect()
    print("ready", flush=True)
    heard = False
    liveness = LIVENESS
    interval, interval_max = hb_ms, 32 * hb_ms
    heartbeat_at = time.time() + hb_ms / 1000.0
    while not stop.is_set():
        socks = dict(poller.poll(hb_ms))
        if socks.get(s) == zmq.POLLIN:
            frames = s.recv_multipart()
            if not heard:
                heard = True
                print("heard", flush=True)
            if len(frames) == 3:
                client, empty, body = frames
                s.send_multipart([client, empty, body.upper()])
                liveness = LIVENESS
            elif len(frames) == 1 and frames[0] == HEARTBEAT:
                liveness = LIVENESS
            else:
                print("E: invalid message: %r" % frames, flush=True)
            interval = hb_ms
        else:
            liveness -= 1
            if liveness == 0:
                time.sleep(interval / 1000.0)
                if interval < interval_max:
                    interval *= 2
                poller.unregister(s)
                s.close()
                s = connect()
                print("reconnect", flush=True)
                liveness = LIVENESS
        if time.time() > heartbeat_at:
            heartbeat_at = time.time() + hb_ms / 1000.0
            s.send(HEARTBEAT)
    ctx.destroy(linger=0)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "queue":
        queue(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "worker":
        worker(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("unknown mode " + mode)
