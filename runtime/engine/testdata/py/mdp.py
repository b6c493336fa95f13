"""Majordomo Protocol 0.1 peers (RFC 7, https://rfc.zeromq.org/spec/7/),
written from the RFC and the zguide's mdbroker.py / mdwrkapi.py /
mdcliapi.py, for ztopo's interop tests of its mdbroker builtin and of its
workers' MDP side. Only timing is a parameter.

usage:
    mdp.py broker ENDPOINT HEARTBEAT_MS
        a broker: ROUTER bound at ENDPOINT for MDPC01 clients and MDPW01
        workers, requests queued per service, LRU workers, heartbeats to
        waiting workers, expiry after 3 silent heartbeats, mmi.service.
        Prints "ready" once bound; runs until killed or stdin closes.
    worker ENDPOINT SERVICE HEARTBEAT_MS
        a worker of SERVICE replying with the request's last frame
        upper-cased. Prints "ready" once connected, "request" for the
        first request; runs until killed or stdin closes.
    client ENDPOINT SERVICE CLIENTS REQUESTS [TIMEOUT_MS]
        CLIENTS threads with a REQ socket each, sending REQUESTS requests
        ["MDPC01", SERVICE, "c<k>-<i> hello"] one at a time; each reply
        must be ["MDPC01", SERVICE, body] with body the request upper-cased
        or unchanged (a worker swapped meanwhile); no retries: a request
        without a reply within TIMEOUT_MS (default 20000) fails. First it
        asks mmi.service for SERVICE until it is "200" (404 while no worker
        registered yet) and for "no.such" (must be "404"). Prints "ok N replies (U upper)" or "fail: ...".
"""

import sys
import threading
import time
from collections import OrderedDict

import zmq

from peerlib import connect, fail, fail_on, run_threads, watch_stdin

C_CLIENT = b"MDPC01"
W_WORKER = b"MDPW01"
W_READY, W_REQUEST, W_REPLY, W_HEARTBEAT, W_DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
LIVENESS = 3


class Service:
    def __init__(self, name):
        self.name = name
        self.requests = []
        self.waiting = []


class Worker:
    def __init__(self, identity):
        self.identity = identity
        self.service = None
        self.expiry = 0


def broker(endpoint, hb_ms):
    hb = hb_ms / 1000.0
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    services, workers, waiting = {}, {}, []
    stop = threading.Event()
    watch_stdin(stop)

    def service_of(name):
        if name not in services:
            services[name] = Service(name)
        return services[name]

    def delete_worker(w, disconnect):
        if disconnect:
            sock.send_multipart([w.identity, b"", W_WORKER, W_DISCONNECT])
        if w.service is not None and w in w.service.waiting:
            w.service.waiting.remove(w)
        if w in waiting:
            waiting.remove(w)
        workers.pop(w.identity, None)

    def dispatch(svc):
        now = time.time()
        for w in list(waiting):
            if w.expiry < now:
                delete_worker(w, False)
        while svc.waiting and svc.requests:
            msg = svc.requests.pop(0)
            w = svc.waiting.pop(0)
            waiting.remove(w)
            sock.send_multipart([w.identity, b"", W_WORKER, W_REQUEST] + msg)

    def worker_waiting(w):
        waiting.append(w)
        w.service.waiting.append(w)
        w.expiry = time.time() + hb * LIVENESS
        dispatch(w.service)

    print("ready", flush=True)
    heartbeat_at = time.time() + hb
    while not stop.is_set():
        if sock.poll(hb_ms):
            frames = sock.recv_multipart()
            sender, empty, header = frames[0], frames[1], frames[2]
            msg = frames[3:]
            if header == C_CLIENT:
                name = msg.pop(0)
                if name.startswith(b"mmi."):
                    code = b"501"
                    if name == b"mmi.service":
                        svc = services.get(msg[-1])
                        code = b"200" if svc is not None and any(w.service is svc for w in workers.values()) else b"404"
                    sock.send_multipart([sender, b"", C_CLIENT, name, code])
                else:
                    svc = service_of(name)
                    svc.requests.append([sender, b""] + msg)
                    dispatch(svc)
            elif header == W_WORKER:
                command = msg.pop(0)
                known = sender in workers
                if command == W_READY:
                    if known or msg[0].startswith(b"mmi."):
                        w = workers.get(sender) or Worker(sender)
                        delete_worker(w, True)
                    else:
                        w = Worker(sender)
                        workers[sender] = w
                        w.service = service_of(msg.pop(0))
                        worker_waiting(w)
                elif command == W_REPLY:
                    if known:
                        w = workers[sender]
                        client, empty = msg.pop(0), msg.pop(0)
                        sock.send_multipart([client, b"", C_CLIENT, w.service.name] + msg)
                        worker_waiting(w)
                    else:
                        delete_worker(Worker(sender), True)
                elif command == W_HEARTBEAT:
                    if known:
                        workers[sender].expiry = time.time() + hb * LIVENESS
                    else:
                        delete_worker(Worker(sender), True)
                elif command == W_DISCONNECT:
                    if known:
                        delete_worker(workers[sender], False)
                else:
                    print("E: invalid worker command %r" % command, flush=True)
            else:
                print("E: invalid message %r" % frames, flush=True)
        if time.time() > heartbeat_at:
            now = time.time()
            for w in list(waiting):
                if w.expiry < now:
                    delete_worker(w, False)
            for w in waiting:
                sock.send_multipart([w.identity, b"", W_WORKER, W_HEARTBEAT])
            heartbeat_at = time.time() + hb
    ctx.destroy(linger=0)


def worker(endpoint, service, hb_ms):
    ctx = zmq.Context()
    stop = threading.Event()
    watch_stdin(stop)

    def connect_ready():
        s = connect(ctx, zmq.DEALER, endpoint)
        s.send_multipart([b"", W_WORKER, W_READY, service])
        return s

    s = connect_ready()
    print("ready", flush=True)
    first = True
    liveness = LIVENESS
    heartbeat_at = time.time() + hb_ms / 1000.0
    while not stop.is_set():
        if s.poll(hb_ms):
            frames = s.recv_multipart()
            liveness = LIVENESS
            empty, header, command = frames[0], frames[1], frames[2]
            assert empty == b"" and header == W_WORKER, frames
            if command == W_REQUEST:
                client, empty2 = frames[3], frames[4]
                body = frames[5:]
                if first:
                    first = False
                    print("request", flush=True)
                s.send_multipart([b"", W_WORKER, W_REPLY, client, b""] + body[:-1] + [body[-1].upper()])
            elif command == W_DISCONNECT:
                s.close()
                s = connect_ready()
        else:
            liveness -= 1
            if liveness == 0:
                time.sleep(hb_ms / 1000.0)
                s.close()
                s = connect_ready()
                liveness = LIVENESS
        if time.time() > heartbeat_at:
            s.send_multipart([b"", W_WORKER, W_HEARTBEAT])
            heartbeat_at = time.time() + hb_ms / 1000.0
    ctx.destroy(linger=0)


def client(endpoint, service, clients, requests, timeout_ms):
    ctx = zmq.Context()
    errors, replies, upper = [], [0], [0]
    lock = threading.Lock()

    def ask(s, svc, body):
        s.send_multipart([C_CLIENT, svc, body])
        if not s.poll(timeout_ms):
            raise RuntimeError("no reply to %r from %r within %d ms" % (body, svc, timeout_ms))
        frames = s.recv_multipart()
        if len(frames) != 3 or frames[0] != C_CLIENT or frames[1] != svc:
            raise RuntimeError("malformed reply %r" % frames)
        return frames[2]

    s = connect(ctx, zmq.REQ, endpoint)
    try:
        # Workers may still be on their way: ask until the service has one.
        deadline = time.time() + timeout_ms / 1000.0
        while True:
            code = ask(s, b"mmi.service", service)
            if code == b"200":
                break
            if code != b"404" or time.time() > deadline:
                fail("mmi.service %r: %r, want 200" % (service, code))
            time.sleep(0.05)
        code = ask(s, b"mmi.service", b"no.such")
        if code != b"404":
            fail("mmi.service no.such: %r, want 404" % code)
    except RuntimeError as e:
        fail(str(e))
    s.close()

    def run(k):
        s = connect(ctx, zmq.REQ, endpoint)
        try:
            for i in range(requests):
                body = ("c%d-%d hello" % (k, i)).encode()
                rep = ask(s, service, body)
                if rep not in (body, body.upper()):
                    raise RuntimeError("got %r for %r" % (rep, body))
                with lock:
                    replies[0] += 1
                    if rep == body.upper():
                        upper[0] += 1
        except RuntimeError as e:
            with lock:
                errors.append("client %d: %s" % (k, e))
        finally:
            s.close()

    run_threads(run, clients)
    ctx.term()
    fail_on(errors)
    print("ok %d replies (%d upper)" % (replies[0], upper[0]), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "broker":
        broker(sys.argv[2], int(sys.argv[3]))
    elif mode == "worker":
        worker(sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]))
    elif mode == "client":
        timeout = int(sys.argv[6]) if len(sys.argv) > 6 else 20000
        client(sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]), int(sys.argv[5]), timeout)
    else:
        sys.exit("unknown mode " + mode)
