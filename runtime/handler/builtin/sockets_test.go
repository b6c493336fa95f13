package builtin

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const bound = 30 * time.Second

type running struct {
	n      *node.Node
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func runNode(t *testing.T, zctx *zmq4.Context, sp *spec.Node, h any) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{n: node.New(node.Config{Spec: sp, Context: zctx, Handler: h}), cancel: cancel, done: make(chan struct{})}
	go func() { r.err = r.n.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(bound):
		t.Fatal("node did not stop")
		return nil
	}
}

func TestProxyStreamerWithCapture(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "proxy", Sockets: []*spec.Socket{
		{Name: "backend", Type: spec.PUSH, Bind: []string{"inproc://p-back"}},
		{Name: "capture", Type: spec.PUSH, Bind: []string{"inproc://p-cap"}},
		{Name: "frontend", Type: spec.PULL, Bind: []string{"inproc://p-front"}},
	}}
	r := runNode(t, zctx, sp, &Proxy{})
	src := socktest.Open(t, zctx, &spec.Socket{Name: "src", Type: spec.PUSH, Connect: []string{"inproc://p-front"}})
	dst := socktest.Open(t, zctx, &spec.Socket{Name: "dst", Type: spec.PULL, Connect: []string{"inproc://p-back"}})
	spy := socktest.Open(t, zctx, &spec.Socket{Name: "spy", Type: spec.PULL, Connect: []string{"inproc://p-cap"}})
	var bytes uint64
	for i := 0; i < 100; i++ {
		m := zsocktest.Frames(fmt.Sprint(i), "x")
		bytes += uint64(len(m[0]) + len(m[1]))
		if err := src.Send(m, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		if got, want := q(socktest.Recv(t, dst)), q(zsocktest.Frames(fmt.Sprint(i), "x")); got != want {
			t.Fatalf("backend %d: got %s, want %s", i, got, want)
		}
		if got, want := q(socktest.Recv(t, spy)), q(zsocktest.Frames(fmt.Sprint(i), "x")); got != want {
			t.Fatalf("capture %d: got %s, want %s", i, got, want)
		}
	}
	if err := r.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("stop: got %v, want context.Canceled", err)
	}
	// The proxy's own counters, read when it stopped: a message of two
	// frames counts once, and the capture socket sent a copy of each.
	for name, want := range map[string]zsock.StatsSnapshot{
		"frontend": {MsgsIn: 100, BytesIn: bytes},
		"backend":  {MsgsOut: 100, BytesOut: bytes},
		"capture":  {MsgsOut: 100, BytesOut: bytes},
	} {
		if got := r.n.Stats(name).Snapshot(); got != want {
			t.Errorf("%s counters: got %+v, want %+v", name, got, want)
		}
	}
}

// TestProxyQueueSwap: a REQ/REP exchange through a ROUTER/DEALER proxy
// survives a swap of the proxy handler: the sockets stay, the new proxy
// picks up where the old one stopped, and the counters add up across both.
func TestProxyQueueSwap(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "queue", Sockets: []*spec.Socket{
		{Name: "backend", Type: spec.DEALER, Bind: []string{"inproc://q-back"}},
		{Name: "frontend", Type: spec.ROUTER, Bind: []string{"inproc://q-front"}},
	}}
	r := runNode(t, zctx, sp, &Proxy{})
	client := socktest.Open(t, zctx, &spec.Socket{Name: "c", Type: spec.REQ, Connect: []string{"inproc://q-front"}})
	server := socktest.Open(t, zctx, &spec.Socket{Name: "s", Type: spec.REP, Connect: []string{"inproc://q-back"}})
	for i := 0; i < 50; i++ {
		if i == 25 {
			r.n.SwapHandler(&Proxy{})
		}
		if err := client.Send(zsocktest.Frames(fmt.Sprint("req", i)), 0); err != nil {
			t.Fatal(err)
		}
		req := socktest.Recv(t, server)
		if err := server.Send([][]byte{append([]byte("rep:"), req[0]...)}, 0); err != nil {
			t.Fatal(err)
		}
		if got, want := q(socktest.Recv(t, client)), q(zsocktest.Frames(fmt.Sprint("rep:req", i))); got != want {
			t.Fatalf("reply %d: got %s, want %s", i, got, want)
		}
	}
	if err := r.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("stop: got %v, want context.Canceled", err)
	}
	for _, name := range []string{"frontend", "backend"} {
		got := r.n.Stats(name).Snapshot()
		if got.MsgsIn != 50 || got.MsgsOut != 50 {
			t.Errorf("%s counters: got %d in, %d out; want 50 and 50", name, got.MsgsIn, got.MsgsOut)
		}
	}
}

func TestLBBroker(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "broker", Sockets: []*spec.Socket{
		{Name: "backend", Type: spec.ROUTER, Bind: []string{"inproc://lb-back"}},
		{Name: "frontend", Type: spec.ROUTER, Bind: []string{"inproc://lb-front"}},
	}}
	runNode(t, zctx, sp, build(t, "lbbroker", nil, nil))
	// Clients first: the broker must not read them before a worker is ready.
	c1 := socktest.Open(t, zctx, &spec.Socket{Name: "c1", Type: spec.REQ, Connect: []string{"inproc://lb-front"}, Identity: "c1"})
	c2 := socktest.Open(t, zctx, &spec.Socket{Name: "c2", Type: spec.REQ, Connect: []string{"inproc://lb-front"}, Identity: "c2"})
	for _, c := range []*zsock.Socket{c1, c2} {
		if err := c.Send(zsocktest.Frames("job from "+c.Spec.Name), 0); err != nil {
			t.Fatal(err)
		}
	}
	w := socktest.Open(t, zctx, &spec.Socket{Name: "w", Type: spec.REQ, Connect: []string{"inproc://lb-back"}, Identity: "w1"})
	if err := w.Send(zsocktest.Frames("READY"), 0); err != nil {
		t.Fatal(err)
	}
	// One worker serves both clients in turn: each reply frees it again.
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		m := socktest.Recv(t, w)
		if len(m) != 3 || len(m[1]) != 0 || string(m[2]) != "job from "+string(m[0]) {
			t.Fatalf("worker got %s", q(m))
		}
		seen[string(m[0])] = true
		if err := w.Send(zsocktest.Frames(string(m[0]), "", "done "+string(m[0])), 0); err != nil {
			t.Fatal(err)
		}
	}
	if !seen["c1"] || !seen["c2"] {
		t.Fatalf("clients served: %v", seen)
	}
	for _, c := range []*zsock.Socket{c1, c2} {
		if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames("done "+c.Spec.Name)); got != want {
			t.Errorf("%s: got %s, want %s", c.Spec.Name, got, want)
		}
	}
}
