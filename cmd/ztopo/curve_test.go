package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ztopo/ztopo/internal/curvecert"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/control"
)

const python = testutil.Python

// freePorts returns n tcp ports of 127.0.0.1 free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// curvePeers is the foreign side of TestUpCurvePyzmq: pyzmq clients of the
// topology's CURVE servers. Phase 1: a client with an unknown key, a plain
// client and a client expecting another server key each push 10 messages
// to sink.in, and each waits until its connection failed; a REQ with an
// unknown key and then the allowed REQ ask rep.in: only the allowed one is
// answered. Then it waits for "go" on stdin, and the allowed client pushes
// N messages and END.
const curvePeers = `
import sys, zmq, zmq.auth
from zmq.utils.monitor import recv_monitor_message
keys, sink_ep, rep_ep, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def cert(name):
    return zmq.auth.load_certificate("%s/%s.key_secret" % (keys, name))
py_pub, py_sec = cert("py")
st_pub, st_sec = cert("stranger")
sink_pub, _ = zmq.auth.load_certificate("%s/sink.key" % keys)
rep_pub, _ = zmq.auth.load_certificate("%s/rep.key" % keys)
ctx = zmq.Context()
keep = []  # a collected socket would close, and its monitor address clash
def sock(kind, ep, pub=None, sec=None, server=None):
    s = ctx.socket(kind)
    s.linger = 0
    s.reconnect_ivl = 60000  # one attempt each: refusals are counted exactly
    if pub is not None:
        s.curve_publickey, s.curve_secretkey, s.curve_serverkey = pub, sec, server
    mon = s.get_monitor_socket()
    s.connect(ep)
    keep.extend([s, mon])
    return s, mon
def failed(mon):
    while mon.poll(20000):
        ev = recv_monitor_message(mon)["event"]
        if ev in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                  zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_DISCONNECTED):
            return zmq.Event(ev).name
        if ev == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return "SUCCEEDED"
    return "nothing"
bad = {"unknown key": (st_pub, st_sec, sink_pub), "plain": (None, None, None), "other server key": (py_pub, py_sec, rep_pub)}
for name, (pub, sec, server) in bad.items():
    s, mon = sock(zmq.PUSH, sink_ep, pub, sec, server)
    for i in range(10):
        try:
            s.send_multipart([b"bad", name.encode()], zmq.NOBLOCK)
        except zmq.Again:
            pass
    print("push %s: %s" % (name, failed(mon)), flush=True)
stranger, smon = sock(zmq.REQ, rep_ep, st_pub, st_sec, rep_pub)
stranger.send(b"from stranger")
print("req unknown key: %s" % failed(smon), flush=True)
good, gmon = sock(zmq.REQ, rep_ep, py_pub, py_sec, rep_pub)
good.send(b"from py")
print("req allowed: %s" % (good.recv().decode() if good.poll(20000) else "no answer"), flush=True)
print("req unknown key answered: %s" % bool(stranger.poll(0)), flush=True)
print("phase 1 done", flush=True)
sys.stdin.readline()
push, pmon = sock(zmq.PUSH, sink_ep, py_pub, py_sec, sink_pub)
for i in range(n):
    push.send_multipart([b"ok", str(i).encode()])
push.send(b"END")
push.linger = 10000
push.close()
for k in keep:
    k.close(0)
ctx.term()
print("phase 2 done", flush=True)
`

// curveCommand is a command node: a CURVE client configured from the
// ZTOPO_OUT_CURVE_* variables only, pushing 50 messages and END.
const curveCommand = `
import os, zmq, zmq.auth
pub, sec = zmq.auth.load_certificate(os.environ["ZTOPO_OUT_CURVE_SECRET_FILE"])
assert pub.decode() == os.environ["ZTOPO_OUT_CURVE_PUBLIC"]
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.curve_publickey, s.curve_secretkey = pub, sec
s.curve_serverkey = os.environ["ZTOPO_OUT_CURVE_SERVER"].encode()
s.connect(os.environ["ZTOPO_OUT_CONNECT"])
for i in range(50):
    s.send(b"cmd %d" % i)
s.send(b"END")
s.linger = 10000
s.close()
ctx.term()
`

// TestUpCurvePyzmq runs a topology that requires CURVE with pyzmq peers:
// a goroutine CURVE server (sink, count) that counts exactly the allowed
// client's messages, a process node CURVE server (rep, echo) that answers
// only the allowed REQ, and a Python command node that is a CURVE client of
// a process node server (psink) from its ZTOPO_OUT_CURVE_* variables. The
// refusals are counted in status and logged with the offered key, and no
// secret appears in the log.
func TestUpCurvePyzmq(t *testing.T) {
	testutil.NeedPyzmqCurve(t)
	bin := buildZtopo(t)
	d := newE2EDir(t)
	keys := filepath.Join(d.root, "keys")
	genKeys(t, bin, keys, "sink", "rep", "psink", "py", "cmd", "stranger")
	ports := freePorts(t, 3)
	d.write(t, "cmd.py", curveCommand)
	name := fmt.Sprintf("curve-e2e-%d", os.Getpid())
	topo := d.write(t, "topology.yaml", fmt.Sprintf(`version: 1
name: %s
security: {keys: keys, require: curve}
nodes:
  sink:
    handler: count
    config: {until: END}
    sockets:
      in: {type: PULL, bind: "tcp://127.0.0.1:%d", curve: {server: sink, allow: [py]}}
  rep:
    run: process
    handler: echo
    sockets:
      in: {type: REP, bind: "tcp://127.0.0.1:%d", curve: {server: rep, allow: [py]}}
  psink:
    run: process
    handler: count
    config: {until: END}
    sockets:
      in: {type: PULL, bind: "tcp://127.0.0.1:%d", curve: {server: psink}}
  cmd:
    command: [%s, cmd.py]
    sockets:
      out: {type: PUSH, connect: psink.in, curve: {client: cmd}}
`, name, ports[0], ports[1], ports[2], python))
	up := startUp(t, bin, d, "--no-watch", topo)
	up.waitStatus(d.topologyRuntime(name), func(st control.StatusReply) bool {
		for _, n := range st.Nodes {
			if n.Name == "sink" || n.Name == "rep" {
				if n.State != "running" {
					return false
				}
			}
		}
		return len(st.Nodes) == 4
	})

	const n = 100
	peers := startPyPeers(t, curvePeers, keys,
		fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]), fmt.Sprint(n))
	phase1 := peers.until("phase 1 done")
	got := strings.Join(phase1, "\n")
	for _, want := range []string{
		"req allowed: from py",
		"req unknown key answered: False",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("pyzmq peers said:\n%s\nwant a line %q", got, want)
		}
	}
	for _, line := range phase1 {
		if strings.Contains(line, "SUCCEEDED") || strings.HasSuffix(line, ": nothing") {
			t.Fatalf("a refused client was not refused: %q\n%s", line, got)
		}
	}
	// Every refused client is counted exactly once: the unknown keys by
	// the ZAP handlers, the plain client and the one expecting another
	// server key (refused by libzmq before ZAP) by sink.in's monitor.
	up.waitStatus(d.topologyRuntime(name), func(st control.StatusReply) bool {
		f := map[string]uint64{}
		for _, nd := range st.Nodes {
			for _, s := range nd.Sockets {
				if s.Curve == "server" {
					f[nd.Name] = s.AuthFailures
				}
			}
		}
		return f["sink"] >= 3 && f["rep"] >= 1
	})
	t.Setenv("XDG_RUNTIME_DIR", d.runtime)
	var out strings.Builder
	if code := run([]string{"status", topo}, &out, &out); code != 0 {
		t.Fatalf("status: exit %d: %s", code, out.String())
	}
	for _, want := range []string{"sink.in: CURVE server, 3 handshakes refused", "rep.in: CURVE server, 1 handshakes refused", "psink.in: CURVE server, 0 handshakes refused"} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("status: no line %q in\n%s", want, out.String())
		}
	}
	peers.say(t, "go")
	if !peers.sc.Scan() || peers.sc.Text() != "phase 2 done" {
		t.Fatalf("pyzmq peers: got %q, want phase 2 done", peers.sc.Text())
	}
	if code := up.exitCode(e2eBound); code != 0 {
		t.Fatalf("ztopo up: exit %d", code)
	}
	log := up.log()
	// A line names its node as "node=NAME" or, in the text format, as a
	// "NAME |" prefix.
	ofNode := func(line, node string) bool {
		return strings.Contains(line, "node="+node+" ") || strings.HasSuffix(line, "node="+node) ||
			regexp.MustCompile(`^(\S+ )?`+regexp.QuoteMeta(node)+` +\|`).MatchString(line)
	}
	received := regexp.MustCompile(`received (\d+) messages in `)
	for node, want := range map[string]int{"sink": n, "psink": 50} {
		var got []string
		for _, line := range strings.Split(log, "\n") {
			if m := received.FindStringSubmatch(line); m != nil && ofNode(line, node) {
				got = append(got, m[1])
			}
		}
		if len(got) != 1 || got[0] != fmt.Sprint(want) {
			t.Errorf("%s: got received %v messages, want once %d", node, got, want)
		}
	}
	stranger, err := curvecert.ReadPublic(filepath.Join(keys, "stranger.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"sink", "rep"} {
		found := false
		for _, line := range strings.Split(log, "\n") {
			hasKey := strings.Contains(line, "key="+stranger) || strings.Contains(line, `key="`+stranger+`"`)
			found = found || strings.Contains(line, "refused a CURVE handshake") && ofNode(line, node) &&
				strings.Contains(line, "socket=in") && strings.Contains(line, "peer=127.0.0.1") && hasKey
		}
		if !found {
			t.Errorf("no log line of %s refusing the stranger's key", node)
		}
	}
	for _, name := range []string{"sink", "rep", "psink", "py", "cmd", "stranger"} {
		c, err := curvecert.ReadSecret(filepath.Join(keys, name+".key_secret"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log, c.Secret) {
			t.Fatalf("the log shows the secret key of %s", name)
		}
	}
}

// pyPeers is a Python script run as a test's peers: the test writes lines
// to its stdin and reads what it prints. The cleanup closes stdin and
// waits for it.
type pyPeers struct {
	stdin io.Writer
	sc    *bufio.Scanner
}

func startPyPeers(t *testing.T, script string, args ...string) *pyPeers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eBound)
	cmd := exec.CommandContext(ctx, python, append([]string{"-c", script}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		cancel()
	})
	return &pyPeers{stdin: stdin, sc: bufio.NewScanner(stdout)}
}

// until returns the lines printed before the line marker.
func (p *pyPeers) until(marker string) []string {
	var got []string
	for p.sc.Scan() && p.sc.Text() != marker {
		got = append(got, p.sc.Text())
	}
	return got
}

// say writes a line to the peers.
func (p *pyPeers) say(t *testing.T, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		t.Fatal(err)
	}
}

// genKeys makes CURVE certificates named names in dir with `ztopo keys gen`.
func genKeys(t *testing.T, bin, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if out, err := exec.Command(bin, "keys", "gen", name, "--dir", dir).CombinedOutput(); err != nil {
			t.Fatalf("keys gen %s: %v: %s", name, err, out)
		}
	}
}

// reloadCLI runs `ztopo reload FILE` against d's runtime directory and
// returns what it printed; the test fails if it fails.
func reloadCLI(t *testing.T, bin string, d e2eDir, file string) string {
	t.Helper()
	reload := exec.Command(bin, "reload", file)
	reload.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+d.runtime)
	out, err := reload.CombinedOutput()
	if err != nil {
		t.Fatalf("reload: %v: %s", err, out)
	}
	return string(out)
}
