#!/usr/bin/python3
"""The pyzmq baselines of the ztopo benchmark suite (bench/, `make bench`).

Each subcommand is what a competent Python user writes for one scenario:
one process per role where the roles talk over tcp or ipc (the GIL makes
threads a poor fit for work that is all Python), threads sharing one context
for inproc. It prints one JSON line with the field names of the Go harness's
Result: expected, msgs, seconds, rate (or p50_us and p99_us), error.

The clock runs from before the first process is forked to after the last
one is joined, so start-up and shutdown count as they do for the Go runs.
Every wait is bounded: receives time out after RCVTIMEO_MS, joins after
JOIN_S; a run that hits a bound reports an error instead of hanging.

    /usr/bin/python3 bench/py/zbench.py pushpull --count 1000000 --size 16 --transport tcp
"""
import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import zmq

RCVTIMEO_MS = 30000
JOIN_S = 60
SUBSCRIBERS = 4
WORKERS = 4

# fork: children start in milliseconds and create their own context after
# the fork (no context exists in the parent when it forks).
MP = mp.get_context("fork")


def payload(size):
    return bytes(ord("a") + i % 26 for i in range(size))


def free_tcp():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "tcp://127.0.0.1:%d" % port


def endpoint(transport, name, tmp):
    if transport == "tcp":
        return free_tcp()
    if transport == "ipc":
        return "ipc://" + os.path.join(tmp, name)
    return "inproc://bench-" + name


def sock(ctx, kind, rcvtimeo=False):
    s = ctx.socket(kind)
    s.linger = 0
    if rcvtimeo:
        s.rcvtimeo = RCVTIMEO_MS
    return s


def receive(s, n):
    """Receives up to n messages on s (made with rcvtimeo); returns how many
    came before one was late by RCVTIMEO_MS."""
    got = 0
    recv = s.recv
    try:
        for got in range(1, n + 1):
            recv()
    except zmq.Again:
        got -= 1
    return got


def wait(event, what):
    if not event.wait(JOIN_S):
        raise RuntimeError("timed out waiting for " + what)


def join(procs):
    """Joins every process, bounded; returns the first failure as text."""
    err = None
    for p in procs:
        p.join(JOIN_S)
        if p.is_alive():
            p.terminate()
            p.join(5)
            err = err or "%s did not finish" % p.name
        elif p.exitcode not in (0, -15):
            err = err or "%s exited with %s" % (p.name, p.exitcode)
    return err


def stop(procs):
    """Stops the purely reactive processes (workers, servers, proxies)."""
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(5)


def run_proc(target, *args):
    """Runs target in a child, reporting an exception on stderr and in the exit code."""

    def main():
        try:
            target(*args)
        except Exception as e:  # noqa: BLE001 - the parent reports the exit code
            print("%s: %s" % (target.__name__, e), file=sys.stderr)
            os._exit(1)
        os._exit(0)

    p = MP.Process(target=main, name=target.__name__, daemon=True)
    p.start()
    return p


# ---- PUSH -> PULL --------------------------------------------------------


def push(ctx, ep, n, msg, bound, done):
    wait(bound, "the sink to bind")
    s = sock(ctx, zmq.PUSH)
    s.connect(ep)
    send = s.send
    for _ in range(n):
        send(msg)
    # Keep the socket until the sink has everything: closing it with a
    # linger is not enough over ipc, where libzmq 4.3 can drop the tail of
    # the queue at close (zeromq/libzmq#4660); this run lost ~600 of 2M.
    wait(done, "the sink")
    s.close()


def push_proc(ep, n, msg, bound, done):
    ctx = zmq.Context()
    push(ctx, ep, n, msg, bound, done)
    ctx.term()


def pull(ctx, ep, n, bound):
    s = sock(ctx, zmq.PULL, rcvtimeo=True)
    s.bind(ep)
    bound.set()
    got = receive(s, n)
    s.close()
    return got


def cmd_pushpull(a):
    tmp = tempfile.mkdtemp(prefix="zb")
    try:
        ep = endpoint(a.transport, "sink", tmp)
        msg = payload(a.size)
        t0 = time.perf_counter()
        if a.transport == "inproc":
            bound, done = threading.Event(), threading.Event()
            ctx = zmq.Context()
            t = threading.Thread(target=push, args=(ctx, ep, a.count, msg, bound, done))
            t.start()
            got = pull(ctx, ep, a.count, bound)
            done.set()
            t.join(JOIN_S)
            ctx.term()
            err = "the sender did not finish" if t.is_alive() else None
        else:
            bound, done = MP.Event(), MP.Event()
            p = run_proc(push_proc, ep, a.count, msg, bound, done)
            ctx = zmq.Context()
            got = pull(ctx, ep, a.count, bound)
            done.set()
            ctx.term()
            err = join([p])
        return throughput(a.count, got, time.perf_counter() - t0, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- ventilator -> 4 workers -> sink ----------------------------------------


def ventilator(ep, n, msg, sink_bound, bound, done):
    ctx = zmq.Context()
    wait(sink_bound, "the sink to bind")
    s = sock(ctx, zmq.PUSH)
    s.bind(ep)
    bound.set()
    send = s.send
    for _ in range(n):
        send(msg)
    # linger 0: keep the socket until the sink has everything.
    wait(done, "the sink")
    s.close()
    ctx.term()


def worker(vent, sink, vent_bound):
    ctx = zmq.Context()
    wait(vent_bound, "the ventilator to bind")
    rx = sock(ctx, zmq.PULL)
    tx = sock(ctx, zmq.PUSH)
    rx.connect(vent)
    tx.connect(sink)
    recv, send = rx.recv_multipart, tx.send_multipart
    while True:  # until the parent stops it
        send(recv())


def cmd_pipeline(a):
    vent, sink_ep = free_tcp(), free_tcp()
    t0 = time.perf_counter()
    sink_bound, vent_bound, done = MP.Event(), MP.Event(), MP.Event()
    workers = [run_proc(worker, vent, sink_ep, vent_bound) for _ in range(WORKERS)]
    v = run_proc(ventilator, vent, a.count, payload(a.size), sink_bound, vent_bound, done)
    ctx = zmq.Context()
    s = sock(ctx, zmq.PULL, rcvtimeo=True)
    s.bind(sink_ep)
    sink_bound.set()
    got = receive(s, a.count)
    done.set()
    stop(workers)
    err = join([v])
    s.close()
    ctx.term()
    return throughput(a.count, got, time.perf_counter() - t0, err)


# ---- REQ/REP round trips -----------------------------------------------------


def echo(s):
    recv, send = s.recv_multipart, s.send_multipart
    while True:
        send(recv())


def rep_server(ep, bound):
    ctx = zmq.Context()
    s = sock(ctx, zmq.REP)
    s.bind(ep)
    bound.set()
    echo(s)


def broker(front, bound):
    ctx = zmq.Context()
    fe = sock(ctx, zmq.ROUTER)
    be = sock(ctx, zmq.DEALER)
    fe.bind(front)
    be.bind("inproc://bench-backend")

    def work():
        s = sock(ctx, zmq.REP)
        s.connect("inproc://bench-backend")
        echo(s)

    threading.Thread(target=work, daemon=True).start()
    bound.set()
    zmq.proxy(fe, be)  # until the parent stops it


def client(a, ep, server):
    t0 = time.perf_counter()
    bound = MP.Event()
    p = run_proc(server, ep, bound)
    wait(bound, "the server to bind")
    if a.client:
        return ext_client(a, ep, p, t0)
    ctx = zmq.Context()
    s = sock(ctx, zmq.REQ, rcvtimeo=True)
    s.connect(ep)
    msg = payload(a.size)
    lat = []
    err = None
    clock = time.perf_counter_ns
    try:
        for i in range(a.warmup + a.count):
            t = clock()
            s.send(msg)
            rep = s.recv()
            if i >= a.warmup:
                lat.append(clock() - t)
            if rep != msg:
                err = "round trip %d: got %r" % (i, rep)
                break
    except zmq.Again:
        err = "round trip timed out"
    s.close()
    ctx.term()
    stop([p])
    lat.sort()

    def rank(q):
        return lat[max(0, int(q * len(lat) + 0.999999) - 1)] / 1e3 if lat else 0

    return result(a.count, len(lat), time.perf_counter() - t0, err, p50_us=rank(0.50), p99_us=rank(0.99))


def ext_client(a, ep, server, t0):
    """Times the round trips with the C baseline's client, a process of its own."""
    args = [a.client, "client", "--connect", ep, "--count", str(a.count), "--size", str(a.size), "--warmup", str(a.warmup)]
    out = subprocess.run(args, stdout=subprocess.PIPE, timeout=JOIN_S + RCVTIMEO_MS / 1000, check=False).stdout
    stop([server])
    lines = out.decode().strip().splitlines()
    if not lines:
        return result(a.count, 0, time.perf_counter() - t0, "the client printed no result")
    r = json.loads(lines[-1])
    r["seconds"] = time.perf_counter() - t0
    return r


def cmd_reqrep(a):
    return client(a, free_tcp(), rep_server)


def cmd_broker(a):
    return client(a, free_tcp(), broker)


# ---- PUB -> XSUB/XPUB proxy -> 4 SUB ------------------------------------------


def fan_proxy(front, back, bound):
    ctx = zmq.Context()
    fe = sock(ctx, zmq.XSUB)
    be = sock(ctx, zmq.XPUB)
    be.setsockopt(zmq.XPUB_VERBOSE, 1)
    be.setsockopt(zmq.XPUB_NODROP, 1)
    be.setsockopt(zmq.SNDHWM, 0)
    fe.bind(front)
    be.bind(back)
    bound.set()
    zmq.proxy(fe, be)


def subscriber(back, i, n, bound, counts):
    ctx = zmq.Context()
    wait(bound, "the proxy to bind")
    s = sock(ctx, zmq.SUB, rcvtimeo=True)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    # A topic of its own, which no message matches: the publisher starts
    # once it has seen all four, so no subscriber misses the first messages.
    s.setsockopt(zmq.SUBSCRIBE, b"sub-%d" % i)
    s.connect(back)
    counts[i] = receive(s, n)
    s.close()
    ctx.term()


def cmd_fanout(a):
    front, back = free_tcp(), free_tcp()
    t0 = time.perf_counter()
    bound = MP.Event()
    counts = MP.Array("q", SUBSCRIBERS)
    proxy = run_proc(fan_proxy, front, back, bound)
    subs = [run_proc(subscriber, back, i, a.count, bound, counts) for i in range(SUBSCRIBERS)]
    wait(bound, "the proxy to bind")
    ctx = zmq.Context()
    pub = sock(ctx, zmq.XPUB, rcvtimeo=True)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    pub.setsockopt(zmq.XPUB_NODROP, 1)
    # No send high-water mark: with only XPUB_NODROP, libzmq 4.3.4 lost a
    # few messages in 500,000 now and then (the Go run too).
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.connect(front)
    err = None
    seen = set()
    try:
        while len(seen) < SUBSCRIBERS:
            sub = pub.recv()
            if sub[:1] == b"\x01" and len(sub) > 1:
                seen.add(sub[1:])
    except zmq.Again:
        err = "publisher saw %d of %d subscribers" % (len(seen), SUBSCRIBERS)
    if err is None:
        msg = payload(a.size)
        send = pub.send
        for _ in range(a.count):
            send(msg)
    err = join(subs) or err
    pub.close()
    ctx.term()
    stop([proxy])
    return throughput(a.count * SUBSCRIBERS, sum(counts), time.perf_counter() - t0, err)


# ---- output ------------------------------------------------------------------


def result(expected, msgs, seconds, err, **kw):
    r = {"expected": expected, "msgs": msgs, "seconds": seconds}
    r.update(kw)
    if err:
        r["error"] = err
    return r


def throughput(expected, msgs, seconds, err):
    return result(expected, msgs, seconds, err, rate=msgs / seconds if seconds > 0 else 0)


COMMANDS = {
    "pushpull": cmd_pushpull,
    "pipeline": cmd_pipeline,
    "reqrep": cmd_reqrep,
    "broker": cmd_broker,
    "fanout": cmd_fanout,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", choices=sorted(COMMANDS))
    ap.add_argument("--count", type=int, required=True, help="messages, or timed round trips")
    ap.add_argument("--size", type=int, default=16, help="payload bytes")
    ap.add_argument("--transport", default="tcp", choices=["inproc", "ipc", "tcp"])
    ap.add_argument("--warmup", type=int, default=1000, help="untimed round trips first")
    ap.add_argument("--client", help="the C baseline's binary: its client subcommand times the round trips")
    a = ap.parse_args()
    try:
        r = COMMANDS[a.scenario](a)
    except Exception as e:  # noqa: BLE001 - reported as the run's error
        r = result(a.count, 0, 0, "%s: %s" % (type(e).__name__, e))
    print(json.dumps(r), flush=True)
    return 1 if r.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
