package engine

import (
	"context"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const python = testutil.Python

// pyPeer is a running pyzmq peer (testdata/py/peers.py).
type pyPeer struct {
	cmd  *exec.Cmd
	out  testutil.Buffer // stdout and stderr
	done chan error
}

func (p *pyPeer) output() string { return p.out.String() }

func startPy(t *testing.T, args ...string) *pyPeer {
	t.Helper()
	return startPyFile(t, "peers.py", args...)
}

// startPyFile is startPy for another script of testdata/py.
func startPyFile(t *testing.T, script string, args ...string) *pyPeer {
	t.Helper()
	testutil.NeedPyzmq(t)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	p := &pyPeer{cmd: exec.CommandContext(ctx, python, append([]string{"testdata/py/" + script}, args...)...), done: make(chan error, 1)}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); cancel() }()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// startPyReady starts a peer that prints "ready" once bound, and waits
// for that line.
func startPyReady(t *testing.T, args ...string) *pyPeer {
	t.Helper()
	p := startPy(t, args...)
	testutil.WaitFor(t, "the pyzmq peer to get ready", func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("pyzmq peer ended early: %v\n%s", err, p.output())
		default:
		}
		return strings.HasPrefix(p.output(), "ready\n")
	})
	return p
}

// result waits for the peer and returns its last output line; the peer
// must have succeeded.
func (p *pyPeer) result(t *testing.T) string {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		out := strings.TrimSpace(p.output())
		if err != nil {
			t.Fatalf("pyzmq peer failed: %v\n%s", err, out)
		}
		lines := strings.Split(out, "\n")
		return lines[len(lines)-1]
	case <-time.After(bound + 10*time.Second):
		t.Fatal("pyzmq peer hangs")
		return ""
	}
}

// wantResult waits for the peer's last line and fails the test, saying
// what the peer is, unless that line is want.
func (p *pyPeer) wantResult(t *testing.T, what, want string) {
	t.Helper()
	if got := p.result(t); got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// without drops the nodes of a base name (they are replaced by pyzmq peers).
func without(topo *spec.Topology, base string) *spec.Topology {
	var keep []*spec.Node
	for _, n := range topo.Nodes {
		if n.Base != base {
			keep = append(keep, n)
		}
	}
	topo.Nodes = keep
	return topo
}

func endpoint(t *testing.T, topo *spec.Topology, node, socket string) string {
	t.Helper()
	n := topo.Node(node)
	if n == nil || n.Socket(socket) == nil || len(n.Socket(socket).Bind) == 0 {
		t.Fatalf("no bound socket %s.%s", node, socket)
	}
	return n.Socket(socket).Bind[0]
}

// TestPyzmqClients runs the broker topologies of topologies/ with pyzmq
// REQ clients in place of the files' own.
func TestPyzmqClients(t *testing.T) {
	for _, tc := range []struct {
		file, transform  string
		clients, perEach int
	}{
		{"sharedqueue.yaml", "upper", 3, 10},
		{"mtserver.yaml", "same", 4, 5},
		{"lbbroker.yaml", "same", 4, 5},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			topo := without(loadFile(t, topoFile(tc.file), nil), "client")
			front := endpoint(t, topo, topo.Nodes[0].Name, "frontend")
			s := startEngine(t, topo, Options{})
			py := startPy(t, "reqclients", front, fmt.Sprint(tc.clients), fmt.Sprint(tc.perEach), tc.transform)
			py.wantResult(t, "pyzmq", fmt.Sprintf("ok %d replies", tc.clients*tc.perEach))
			s.cancel()
			if err := s.wait(t, bound); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := sum(s.e, "worker", "in", in); got != uint64(tc.clients*tc.perEach) {
				t.Errorf("workers got %d requests, want %d", got, tc.clients*tc.perEach)
			}
		})
	}
}

// TestPyzmqSyncSubscribers: three zguide syncsubs against the syncpub
// publisher, raised to expect them; each gets every update.
func TestPyzmqSyncSubscribers(t *testing.T) {
	topo := without(loadFile(t, topoFile("syncpub.yaml"), nil), "subscriber")
	pub := topo.Node("publisher")
	pub.Sync.Expect = 3
	pubEP, syncEP := pub.Socket("out").Bind[0], pub.Sync.Bind
	var peers []*pyPeer
	for i := 0; i < 3; i++ {
		peers = append(peers, startPy(t, "syncsub", pubEP, syncEP))
	}
	if _, err := runTopo(t, topo, Options{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, p := range peers {
		if got := p.result(t); got != "ok 10000 updates" {
			t.Errorf("subscriber %d: %s", i, got)
		}
	}
}

// TestPyzmqEnvelopeSubscriber: a pyzmq SUB filtering on one topic of a
// ztopo publisher gets [topic, body] for exactly its share.
func TestPyzmqEnvelopeSubscriber(t *testing.T) {
	pubEP, syncEP := zsocktest.TCP(t), zsocktest.TCP(t)
	pub := builtinNode("publisher", "generate",
		map[string]any{"count": 100, "topics": []string{"A", "B"}, "payload": "We would like to see this", "end": "END"},
		sock("out", spec.PUB, list(pubEP), nil))
	pub.Sync = &spec.Sync{Expect: 1, Bind: syncEP}
	py := startPy(t, "envsub", pubEP, syncEP, "B")
	if _, err := runTopo(t, &spec.Topology{Name: "envelope", Nodes: []*spec.Node{pub}}, Options{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := py.result(t); got != "ok 50 updates" {
		t.Errorf("pyzmq: %s", got)
	}
}

// TestPyzmqThroughPubSubProxy: pyzmq publishers and subscribers meet
// through the XSUB/XPUB proxy of pubsub-proxy.yaml.
func TestPyzmqThroughPubSubProxy(t *testing.T) {
	topo := without(without(loadFile(t, topoFile("pubsub-proxy.yaml"), nil), "publisher"), "subscriber")
	front, back := endpoint(t, topo, "proxy", "frontend"), endpoint(t, topo, "proxy", "backend")
	s := startEngine(t, topo, Options{})
	py := startPy(t, "pubsub", front, back, "2", "3")
	if got := py.result(t); got != "ok 3 subscribers heard 2 publishers" {
		t.Errorf("pyzmq: %s", got)
	}
	s.cancel()
	if err := s.wait(t, bound); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestPyzmqSinkAfterPipeline: a ztopo pipeline ends in a pyzmq sink; the
// topology completes by itself and the sink has every message.
func TestPyzmqSinkAfterPipeline(t *testing.T) {
	const n = 20000
	vent, sinkEP := zsocktest.IPC(t, "vent"), zsocktest.TCP(t)
	py := startPyReady(t, "sink", sinkEP, fmt.Sprint(n))
	topo := &spec.Topology{Name: "tosink", Nodes: []*spec.Node{
		builtinNode("ventilator", "generate", map[string]any{"count": n, "size": 16}, sock("out", spec.PUSH, list(vent), nil)),
		builtinNode("worker.0", "forward", nil, sock("in", spec.PULL, nil, list(vent)), sock("out", spec.PUSH, nil, list(sinkEP))),
		builtinNode("worker.1", "forward", nil, sock("in", spec.PULL, nil, list(vent)), sock("out", spec.PUSH, nil, list(sinkEP))),
	}}
	if _, err := runTopo(t, topo, Options{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := py.result(t), fmt.Sprintf("ok %d messages", n); got != want {
		t.Errorf("pyzmq sink: got %q, want %q", got, want)
	}
}
