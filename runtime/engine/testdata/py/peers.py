"""ZeroMQ peers written with pyzmq, for ztopo's integration tests.

Each subcommand plays the part of a zguide program that nobody here wrote,
talking to a topology run by ztopo. It exits 0 and prints "ok ..." when
everything it received was right, 1 with a reason otherwise; every wait is
bounded.

    reqclients ENDPOINT CLIENTS REQUESTS TRANSFORM
        CLIENTS threads, each a REQ socket sending REQUESTS requests and
        checking each reply (TRANSFORM: same or upper).
    syncsub PUB SYNC
        the zguide syncsub: SUB connect (everything), REQ sync (empty
        request, wait for the reply), count updates until END.
    envsub PUB SYNC TOPIC
        like syncsub, filtering on TOPIC: every message must be
        [TOPIC, body]; counts until [TOPIC, END].
    pubsub FRONTEND BACKEND PUBLISHERS SUBSCRIBERS
        publishers (PUB connect FRONTEND) and subscribers (SUB connect
        BACKEND) through an XSUB/XPUB proxy; succeeds once every subscriber
        has seen intact updates from every publisher.
    sink ENDPOINT COUNT
        a PULL bound at ENDPOINT that must receive exactly COUNT messages.
"""

import sys
import threading
import time

import zmq

from peerlib import connect, fail, fail_on, run_threads, start_threads

TIMEOUT_MS = 20000


def recv(sock, what):
    if not sock.poll(TIMEOUT_MS):
        fail("timed out waiting for " + what)
    return sock.recv_multipart()


def reqclients(endpoint, clients, requests, transform):
    ctx = zmq.Context()
    errors = []
    done = []

    def client(i):
        s = connect(ctx, zmq.REQ, endpoint)
        try:
            for j in range(requests):
                body = ("client-%d request-%d" % (i, j)).encode()
                s.send(body)
                if not s.poll(TIMEOUT_MS):
                    errors.append("client %d: no reply to request %d" % (i, j))
                    return
                reply = s.recv_multipart()
                want = body.upper() if transform == "upper" else body
                if reply != [want]:
                    errors.append("client %d: got %r, want %r" % (i, reply, [want]))
                    return
            done.append(i)
        finally:
            s.close()

    run_threads(client, clients)
    ctx.term()
    fail_on(errors)
    print("ok %d replies" % (clients * requests))


def sync(ctx, endpoint):
    s = connect(ctx, zmq.REQ, endpoint)
    s.send(b"")
    recv(s, "the sync reply")
    s.close()


def syncsub(pub, sync_ep):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(pub)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    time.sleep(0.2)  # the zguide's own remedy: let the subscription travel
    sync(ctx, sync_ep)
    n = 0
    while True:
        m = recv(sub, "an update")
        if m == [b"END"]:
            break
        n += 1
    sub.close()
    ctx.term()
    print("ok %d updates" % n)


def envsub(pub, sync_ep, topic):
    topic = topic.encode()
    ctx = zmq.Context()
    sub = connect(ctx, zmq.SUB, pub)
    sub.setsockopt(zmq.SUBSCRIBE, topic)
    time.sleep(0.2)
    sync(ctx, sync_ep)
    n = 0
    while True:
        m = recv(sub, "an update")
        if len(m) != 2 or m[0] != topic:
            fail("envelope broken: %r" % m)
        if m[1] == b"END":
            break
        n += 1
    sub.close()
    ctx.term()
    print("ok %d updates" % n)


def pubsub(frontend, backend, publishers, subscribers):
    ctx = zmq.Context()
    seen = [set() for _ in range(subscribers)]
    errors = []
    stop = threading.Event()
    lock = threading.Lock()

    def subscriber(i):
        s = connect(ctx, zmq.SUB, backend)
        s.setsockopt(zmq.SUBSCRIBE, b"news")
        deadline = time.time() + TIMEOUT_MS / 1000
        while len(seen[i]) < publishers and time.time() < deadline:
            if not s.poll(100):
                continue
            m = s.recv_multipart()
            if len(m) != 2 or m[0] != b"news" or not m[1].startswith(b"from publisher-"):
                with lock:
                    errors.append("subscriber %d got %r" % (i, m))
                break
            seen[i].add(m[1].split(b" ")[1])
        s.close()

    def publisher(i):
        s = connect(ctx, zmq.PUB, frontend)
        k = 0
        while not stop.is_set():
            s.send_multipart([b"news", b"from publisher-%d #%d" % (i, k)])
            s.send_multipart([b"weather", b"not subscribed"])
            k += 1
            time.sleep(0.01)
        s.close()

    subs = start_threads(subscriber, subscribers)
    pubs = start_threads(publisher, publishers)
    for t in subs:
        t.join()
    stop.set()
    for t in pubs:
        t.join()
    ctx.term()
    fail_on(errors)
    for i, s in enumerate(seen):
        if len(s) != publishers:
            fail("subscriber %d heard only %r" % (i, sorted(s)))
    print("ok %d subscribers heard %d publishers" % (subscribers, publishers))


def sink(endpoint, count):
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.setsockopt(zmq.LINGER, 0)
    s.bind(endpoint)
    print("ready", flush=True)
    n = 0
    while n < count:
        recv(s, "message %d of %d" % (n + 1, count))
        n += 1
    # Nothing more may come.
    if s.poll(200):
        fail("more than %d messages: %r" % (count, s.recv_multipart()))
    s.close()
    ctx.term()
    print("ok %d messages" % n)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "reqclients":
        reqclients(args[0], int(args[1]), int(args[2]), args[3])
    elif cmd == "syncsub":
        syncsub(args[0], args[1])
    elif cmd == "envsub":
        envsub(args[0], args[1], args[2])
    elif cmd == "pubsub":
        pubsub(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "sink":
        sink(args[0], int(args[1]))
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()
