"""REQ clients for the tests of swaps under load (testutil.StartReqClients).

usage: reqclients.py ENDPOINT CLIENTS WARM AFTER [BODY]

CLIENTS threads each own a REQ socket connected to ENDPOINT and send
"c<k>-<i> BODY" requests (BODY: hello), one at a time, as fast as replies
come. Once
every client has had WARM replies, the script prints "ready". When a line
arrives on stdin, each client sends AFTER more requests and stops. Then it
prints one JSON object: per client, every request with its reply frames
(None if none came within 20s) and whether it was sent after the line.
"""
import json
import sys
import threading

import zmq

endpoint, clients = sys.argv[1], int(sys.argv[2])
warm, after = int(sys.argv[3]), int(sys.argv[4])
body = sys.argv[5] if len(sys.argv) > 5 else "hello"
ctx = zmq.Context()
swapped = threading.Event()
first = threading.Barrier(clients + 1)
results = [None] * clients


def client(k):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 20000)
    s.connect(endpoint)
    rows, left, i, waited = [], after, 0, False
    try:
        while left > 0:
            late = swapped.is_set()
            req = "c%d-%d %s" % (k, i, body)
            i += 1
            s.send_string(req)
            try:
                rep = [f.decode() for f in s.recv_multipart()]
            except zmq.Again:
                rows.append([req, None, late])
                break
            rows.append([req, rep, late])
            if not waited and i >= warm:
                waited = True
                first.wait()
            if late:
                left -= 1
    finally:
        s.close()
        results[k] = rows
        if not waited:
            first.abort()


threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads:
    t.start()
try:
    first.wait(timeout=60)
    print("ready", flush=True)
except threading.BrokenBarrierError:
    print("broken", flush=True)
sys.stdin.readline()
swapped.set()
for t in threads:
    t.join()
print(json.dumps(results), flush=True)
ctx.term()
