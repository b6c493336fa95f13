package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/control"
)

// curveClients is the start of the Python peers of a CURVE server at
// sink.key: argv is the keys directory and the server's endpoint;
// curve_client(name) is a PUSH with name's certificate, connected, and its
// monitor; until(mon, events) waits for one of events.
const curveClients = `
import sys, zmq, zmq.auth
from zmq.utils.monitor import recv_monitor_message
keys, ep = sys.argv[1], sys.argv[2]
sink_pub, _ = zmq.auth.load_certificate("%s/sink.key" % keys)
ctx = zmq.Context()
def curve_client(name, linger, reconnect_ivl=None):
    pub, sec = zmq.auth.load_certificate("%s/%s.key_secret" % (keys, name))
    s = ctx.socket(zmq.PUSH)
    s.linger = linger
    if reconnect_ivl is not None:
        s.reconnect_ivl = reconnect_ivl
    s.curve_publickey, s.curve_secretkey, s.curve_serverkey = pub, sec, sink_pub
    mon = s.get_monitor_socket()
    s.connect(ep)
    return s, mon
def until(mon, *events):
    while mon.poll(30000):
        ev = recv_monitor_message(mon)["event"]
        if ev in events:
            return zmq.Event(ev).name
    return "nothing"
`

// revokePeers: clients a and b, both allowed, each push one message and
// report "connected"; on "reload" from stdin they wait for the reload's
// effect: b must be disconnected and then refused (it prints how long after
// "reload" its connection dropped), a must be let in again. Then b pushes
// 10 messages, and only after that a pushes 10.
const revokePeers = curveClients + `
import time
def client(name):
    return curve_client(name, linger=0)
a, amon = client("a")
b, bmon = client("b")
for name, s, mon in (("a", a, amon), ("b", b, bmon)):
    print("%s: %s" % (name, until(mon, zmq.EVENT_HANDSHAKE_SUCCEEDED)), flush=True)
    s.send(name.encode())
print("connected", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
print("b: %s" % until(bmon, zmq.EVENT_DISCONNECTED), flush=True)
print("b dropped after %.0f ms" % ((time.monotonic() - t0) * 1000), flush=True)
print("b: %s" % until(bmon, zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_SUCCEEDED), flush=True)
print("a: %s" % until(amon, zmq.EVENT_HANDSHAKE_SUCCEEDED), flush=True)
for i in range(10):
    try:
        b.send(b"b %d" % i, zmq.NOBLOCK)  # refused: no peer, so it would block
    except zmq.Again:
        pass
for i in range(10):
    a.send(b"a %d" % i)
print("sent", flush=True)
sys.stdin.readline()
for s in (a, b, amon, bmon):
    s.close(0)
ctx.term()
`

// curveSink is a topology of one CURVE server, sink.in on a free port,
// with the keys sink, a and b made in its directory: the start of the
// tests of allow-list reloads.
type curveSink struct {
	t    *testing.T
	bin  string
	d    e2eDir
	keys string
	name string
	port int
}

func newCurveSink(t *testing.T, prefix string) *curveSink {
	t.Helper()
	testutil.NeedPyzmqCurve(t)
	c := &curveSink{t: t, bin: buildZtopo(t), d: newE2EDir(t)}
	c.keys = filepath.Join(c.d.root, "keys")
	genKeys(t, c.bin, c.keys, "sink", "a", "b")
	c.port = freePorts(t, 1)[0]
	c.name = fmt.Sprintf("%s-%d", prefix, os.Getpid())
	return c
}

// write writes the topology, allowing allow (a YAML list's items), to
// the file name in the test's directory, and returns its path.
func (c *curveSink) write(name, allow string) string {
	c.t.Helper()
	return c.d.write(c.t, name, c.file(allow))
}

func (c *curveSink) file(allow string) string {
	return fmt.Sprintf(`version: 1
name: %s
security: {keys: keys, require: curve}
nodes:
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: "tcp://127.0.0.1:%d", curve: {server: sink, allow: [%s]}}
`, c.name, c.port, allow)
}

// up runs `ztopo up` of topo until every node runs.
func (c *curveSink) up(topo string) *upProc {
	c.t.Helper()
	up := startUp(c.t, c.bin, c.d, "--no-watch", topo)
	up.waitStatus(c.d.topologyRuntime(c.name), allRunning)
	return up
}

// peers starts script (curveClients and its own part) against the server.
func (c *curveSink) peers(script string) *pyPeers {
	c.t.Helper()
	return startPyPeers(c.t, script, c.keys, fmt.Sprintf("tcp://127.0.0.1:%d", c.port))
}

// sinkIn waits until the status of up shows one node with one socket for
// which ok holds, and returns that socket's status.
func (c *curveSink) sinkIn(up *upProc, ok func(s control.SocketStatus) bool) control.SocketStatus {
	c.t.Helper()
	st := up.waitStatus(c.d.topologyRuntime(c.name), func(st control.StatusReply) bool {
		return len(st.Nodes) == 1 && len(st.Nodes[0].Sockets) == 1 && ok(st.Nodes[0].Sockets[0])
	})
	return st.Nodes[0].Sockets[0]
}

// stop tells the peers they are done and stops up, which must exit 0.
func (c *curveSink) stop(up *upProc, peers *pyPeers) {
	c.t.Helper()
	fmt.Fprintln(peers.stdin, "done")
	up.signal(os.Interrupt)
	if code := up.exitCode(e2eBound); code != 0 {
		c.t.Fatalf("ztopo up: exit %d", code)
	}
}

// TestUpCurveRevoke: a reload that removes a key from a CURVE server's
// allow list drops that client's connection and refuses it from then on,
// while the client still allowed is let in again; the server counts
// exactly the allowed client's messages.
func TestUpCurveRevoke(t *testing.T) {
	c := newCurveSink(t, "curve-revoke")
	topo := c.write("topology.yaml", "a, b")
	up := c.up(topo)

	peers := c.peers(revokePeers)
	lines := func(until string) string { return strings.Join(peers.until(until), "\n") }
	if got := lines("connected"); got != "a: HANDSHAKE_SUCCEEDED\nb: HANDSHAKE_SUCCEEDED" {
		t.Fatalf("before the reload: got\n%s", got)
	}
	c.sinkIn(up, func(s control.SocketStatus) bool { return s.MsgsIn == 2 })

	c.write("topology.yaml", "a")
	peers.say(t, "reload")
	out := reloadCLI(t, c.bin, c.d, topo)
	// Revoking is the one allow change that restarts the server, and the
	// plan says why.
	if want := "~ restart sink\n    why: no longer allowed on CURVE server in: b: libzmq cannot close one client's session, so the socket is opened afresh"; !strings.Contains(string(out), want) {
		t.Errorf("reload said:\n%s\nwant %q", out, want)
	}
	got := lines("sent")
	t.Logf("pyzmq peers:\n%s", got)
	for _, want := range []string{"b: DISCONNECTED", "b: HANDSHAKE_FAILED_AUTH", "a: HANDSHAKE_SUCCEEDED"} {
		if !strings.Contains(got, want+"\n") && !strings.HasSuffix(got, want) {
			t.Fatalf("after the reload: got\n%s\nwant a line %q", got, want)
		}
	}
	// The sink was replaced by the reload: its counters start again. It
	// gets a's 10 messages, none of b's (sent first), and refused b.
	s := c.sinkIn(up, func(s control.SocketStatus) bool { return s.MsgsIn >= 10 })
	if s.MsgsIn != 10 || s.AuthFailures < 1 {
		t.Fatalf("sink.in after the reload: got %d messages and %d refusals, want 10 and at least 1", s.MsgsIn, s.AuthFailures)
	}
	c.stop(up, peers)
}

// allowPeers: client a (allowed) connects and pushes 5 messages; client b
// (not allowed yet) is refused. After "reload" on stdin, a fresh b is let
// in and pushes 10, and a, on the connection it had all along, 5 more.
const allowPeers = curveClients + `
def client(name):
    # One attempt: b's refusal is counted once.
    return curve_client(name, linger=5000, reconnect_ivl=60000)
a, amon = client("a")
print("a: %s" % until(amon, zmq.EVENT_HANDSHAKE_SUCCEEDED), flush=True)
for i in range(5):
    a.send(b"a %d" % i)
b, bmon = client("b")
print("b: %s" % until(bmon, zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_SUCCEEDED), flush=True)
old = (b, bmon)  # kept open: a closed socket's monitor address would clash
print("ready", flush=True)
sys.stdin.readline()
b, bmon = client("b")
print("b again: %s" % until(bmon, zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_SUCCEEDED), flush=True)
for i in range(10):
    b.send(b"b %d" % i)
for i in range(5):
    a.send(b"a %d" % (i + 5))
# Every event a's monitor saw since its handshake: a dropped connection
# would show as DISCONNECTED.
seen = []
while amon.poll(0):
    seen.append(zmq.Event(recv_monitor_message(amon)["event"]).name)
print("a saw: %s" % (",".join(seen) or "nothing"), flush=True)
print("sent", flush=True)
sys.stdin.readline()
for s in (a, b, amon, bmon) + old:
    s.close(0)
ctx.term()
`

// TestUpCurveAllowAdded: a reload that adds a key to a CURVE server's
// allow list restarts nothing: plan and reload say so, the client already
// in keeps its connection, the new key is let in at its next handshake,
// and the server counts every message of both across the reload.
func TestUpCurveAllowAdded(t *testing.T) {
	c := newCurveSink(t, "curve-allow")
	topo := c.write("topology.yaml", "a")
	wider := c.write("wider.yaml", "a, b")
	var plan strings.Builder
	if code := run([]string{"plan", topo, wider}, &plan, &plan); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, plan.String())
	}
	const wantPlan = "* allow sink (applied to new handshakes; nothing restarts)\n    sockets.in.curve.allow.b: added\n"
	if !strings.Contains(plan.String(), wantPlan) || !strings.Contains(plan.String(), "0 to restart") {
		t.Fatalf("plan:\n%s\nwant %q and 0 to restart", plan.String(), wantPlan)
	}

	up := c.up(topo)
	peers := c.peers(allowPeers)
	lines := func(until string) string { return strings.Join(peers.until(until), "\n") }
	if got := lines("ready"); got != "a: HANDSHAKE_SUCCEEDED\nb: HANDSHAKE_FAILED_AUTH" {
		t.Fatalf("before the reload: got\n%s", got)
	}
	c.sinkIn(up, func(s control.SocketStatus) bool { return s.MsgsIn == 5 && s.AuthFailures == 1 })

	c.write("topology.yaml", "a, b")
	out := reloadCLI(t, c.bin, c.d, topo)
	if !strings.Contains(string(out), wantPlan) || !strings.Contains(string(out), "0 to restart") {
		t.Fatalf("reload said:\n%s\nwant %q and 0 to restart", out, wantPlan)
	}
	peers.say(t, "reload")
	got := lines("sent")
	if want := "b again: HANDSHAKE_SUCCEEDED\na saw: nothing"; got != want {
		t.Fatalf("after the reload: got\n%s\nwant\n%s", got, want)
	}
	// The same sink, counting on: 5 from a before, 10 from b, 5 from a.
	s := c.sinkIn(up, func(s control.SocketStatus) bool { return s.MsgsIn >= 20 })
	if s.MsgsIn != 20 || s.AuthFailures != 1 {
		t.Fatalf("sink.in: got %d messages and %d refusals, want 20 and 1", s.MsgsIn, s.AuthFailures)
	}
	st := up.waitStatus(c.d.topologyRuntime(c.name), func(control.StatusReply) bool { return true })
	if r := st.Nodes[0].Restarts; r != 0 {
		t.Errorf("sink restarted %d times, want 0", r)
	}
	c.stop(up, peers)
	if !strings.Contains(up.log(), "allow list updated in place") {
		t.Errorf("up's log has no %q", "allow list updated in place")
	}
}
