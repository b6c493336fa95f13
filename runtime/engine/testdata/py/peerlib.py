"""What the pyzmq peers of this directory share (imported by them: Python
puts a script's directory first on the module path).

    fail(msg)                 print "fail: MSG" and exit 1
    fail_on(errors)           fail with the errors joined, if there are any
    connect(ctx, kind, ep)    a socket of kind, linger 0, connected to ep
    start_threads(target, n)  target(0) .. target(n-1), each in a thread
    run_threads(target, n)    the same, waiting for all of them to end
    watch_stdin(stop)         set the event stop once stdin closes
"""

import sys
import threading

import zmq


def fail(msg):
    print("fail: " + msg, flush=True)
    sys.exit(1)


def fail_on(errors):
    if errors:
        fail("; ".join(errors))


def connect(ctx, kind, endpoint):
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    return s


def start_threads(target, n):
    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    return threads


def run_threads(target, n):
    for t in start_threads(target, n):
        t.join()


def watch_stdin(stop):
    def run():
        sys.stdin.read()
        stop.set()
    threading.Thread(target=run, daemon=True).start()
