package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const bound = 30 * time.Second

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// started is a running node: cancel stops it, wait returns Run's result.
type started struct {
	n      *Node
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (s *started) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(bound):
		t.Fatalf("node did not return")
		return nil
	}
}

func start(t *testing.T, zctx *zmq4.Context, cfg Config) *started {
	t.Helper()
	cfg.Context = zctx
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{n: New(cfg), cancel: cancel, done: make(chan struct{})}
	go func() { s.err = s.n.Run(ctx); close(s.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(bound):
			t.Errorf("node did not stop")
		}
	})
	return s
}

// peer opens a test-side socket, closed at cleanup (before the context).
func peer(t *testing.T, zctx *zmq4.Context, typ spec.SocketType, bind, connect string, opts ...spec.Option) *zsock.Socket {
	t.Helper()
	s := &spec.Socket{Name: "peer", Type: typ, Options: opts}
	if bind != "" {
		s.Bind = []string{bind}
	}
	if connect != "" {
		s.Connect = []string{connect}
	}
	if typ == spec.SUB {
		s.Subscribe = []string{""}
	}
	return socktest.Open(t, zctx, s)
}

func q(m [][]byte) string { return fmt.Sprintf("%q", m) }

var forward = handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) { return m.Frames, nil })

func pipeNode(name, in, out string) *spec.Node {
	return &spec.Node{Name: name, Base: name, Sockets: []*spec.Socket{
		{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{in}},
		{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Connect: []string{out}},
	}}
}

func TestForwardInToOut(t *testing.T) {
	zctx := socktest.Context(t)
	in, out := "inproc://fwd-in", "inproc://fwd-out"
	sink := peer(t, zctx, spec.PULL, out, "")
	st := start(t, zctx, Config{Spec: pipeNode("fwd", in, out), Handler: forward})
	src := peer(t, zctx, spec.PUSH, "", in)
	const n = 1000
	for i := 0; i < n; i++ {
		if err := src.Send(zsocktest.Frames("topic", fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if got, want := q(socktest.Recv(t, sink)), q(zsocktest.Frames("topic", fmt.Sprint(i))); got != want {
			t.Fatalf("message %d: got %s, want %s", i, got, want)
		}
	}
	st.cancel()
	if err := st.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
	testutil.WaitFor(t, "condition", func() bool { return st.n.Stats("out").Snapshot().MsgsOut == n })
	in1, out1 := st.n.Stats("in").Snapshot(), st.n.Stats("out").Snapshot()
	if in1.MsgsIn != n || out1.MsgsOut != n {
		t.Errorf("stats: in %+v, out %+v; want %d each", in1, out1, n)
	}
}

func TestStopWhileBlockedInPoll(t *testing.T) {
	zctx := socktest.Context(t)
	st := start(t, zctx, Config{Spec: pipeNode("idle", "inproc://idle-in", "inproc://idle-out"), Handler: forward})
	st.cancel()
	if err := st.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestStopWhileBlockedOnFullPeer(t *testing.T) {
	zctx := socktest.Context(t)
	sp := pipeNode("stuck", "inproc://stuck-in", "inproc://nobody-reads")
	sp.Sockets[1].Options = []spec.Option{{Name: "sndhwm", Value: 1}}
	st := start(t, zctx, Config{Spec: sp, Handler: forward})
	src := peer(t, zctx, spec.PUSH, "", "inproc://stuck-in")
	for i := 0; i < 100; i++ {
		if err := src.Send(zsocktest.Frames("x"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the node has taken messages and is stuck on its full peer.
	for deadline := time.Now().Add(bound); st.n.Stats("in").Snapshot().MsgsIn < 1; {
		if time.Now().After(deadline) {
			t.Fatal("node took no messages")
		}
		time.Sleep(time.Millisecond)
	}
	st.cancel()
	if err := st.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestRouterRepliesReachTheRightPeer(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://router"
	sp := &spec.Node{Name: "srv", Sockets: []*spec.Socket{{Name: "front", Type: spec.ROUTER, Bind: []string{ep}}}}
	upper := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		if len(m.Frames) != 1 {
			return nil, fmt.Errorf("envelope leaked: %q", m.Frames)
		}
		return [][]byte{bytes.ToUpper(m.Frames[0])}, nil
	})
	start(t, zctx, Config{Spec: sp, Handler: upper})
	a := peer(t, zctx, spec.REQ, "", ep)
	b := peer(t, zctx, spec.DEALER, "", ep)
	if err := a.Send(zsocktest.Frames("from a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(zsocktest.Frames("", "from b"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, a)), q(zsocktest.Frames("FROM A")); got != want {
		t.Errorf("a: got %s, want %s", got, want)
	}
	if got, want := q(socktest.Recv(t, b)), q(zsocktest.Frames("", "FROM B")); got != want {
		t.Errorf("b: got %s, want %s", got, want)
	}
}

func TestReqWorkerProtocol(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://backend"
	broker := peer(t, zctx, spec.ROUTER, ep, "")
	sp := &spec.Node{Name: "worker", Sockets: []*spec.Socket{{Name: "in", Type: spec.REQ, Connect: []string{ep}, Identity: "w1"}}}
	upper := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		return [][]byte{bytes.ToUpper(m.Frames[len(m.Frames)-1])}, nil
	})
	start(t, zctx, Config{Spec: sp, Handler: upper})
	if got, want := q(socktest.Recv(t, broker)), q(zsocktest.Frames("w1", "", "READY")); got != want {
		t.Fatalf("announcement: got %s, want %s", got, want)
	}
	for i := 0; i < 3; i++ {
		if err := broker.Send(zsocktest.Frames("w1", "", "client7", "", fmt.Sprint("req", i)), 0); err != nil {
			t.Fatal(err)
		}
		if got, want := q(socktest.Recv(t, broker)), q(zsocktest.Frames("w1", "", "client7", "", fmt.Sprint("REQ", i))); got != want {
			t.Fatalf("reply %d: got %s, want %s", i, got, want)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://errs"
	sp := &spec.Node{Name: "srv", Sockets: []*spec.Socket{{Name: "rep", Type: spec.REP, Bind: []string{ep}}}}
	h := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		switch string(m.Frames[0]) {
		case "soft":
			return nil, errors.New("bad input")
		case "drop":
			return nil, nil
		case "fatal":
			return nil, fmt.Errorf("lost my state: %w", handler.ErrFatal)
		}
		return m.Frames, nil
	})
	st := start(t, zctx, Config{Spec: sp, Handler: h})
	c := peer(t, zctx, spec.REQ, "", ep)
	for _, tc := range []struct{ send, want string }{{"soft", `[""]`}, {"drop", `[""]`}, {"ok", `["ok"]`}} {
		if err := c.Send(zsocktest.Frames(tc.send), 0); err != nil {
			t.Fatal(err)
		}
		if got := q(socktest.Recv(t, c)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.send, got, tc.want)
		}
	}
	if err := c.Send(zsocktest.Frames("fatal"), 0); err != nil {
		t.Fatal(err)
	}
	err := st.wait(t)
	if err == nil || err.Error() != "lost my state: fatal handler error" {
		t.Fatalf("Run: got %v", err)
	}
}

func TestPanicIsAFailure(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://panic"
	h := handler.HandlerFunc(func(context.Context, handler.Msg) ([][]byte, error) { panic("boom") })
	st := start(t, zctx, Config{Spec: pipeNode("p", ep, "inproc://panic-out"), Handler: h})
	src := peer(t, zctx, spec.PUSH, "", ep)
	if err := src.Send(zsocktest.Frames("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := st.wait(t); err == nil || err.Error() != "panic: boom" {
		t.Fatalf("Run: got %v, want panic: boom", err)
	}
}

type closeCounter struct {
	handler.Handler
	closed atomic.Int32
}

func (c *closeCounter) Close(context.Context) error { c.closed.Add(1); return nil }

// TestSwapKeepsSocketsAndMessages swaps a REP handler while a REQ client
// runs: a REQ that lost its request (a closed and reopened server) would
// never get its reply.
func TestSwapKeepsSocketsAndMessages(t *testing.T) {
	zctx := socktest.Context(t)
	ep := zsocktest.TCP(t)
	sp := &spec.Node{Name: "srv", Sockets: []*spec.Socket{{Name: "rep", Type: spec.REP, Bind: []string{ep}}}}
	tagger := func(tag string) handler.Handler {
		return handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
			return [][]byte{append([]byte(tag), m.Frames[0]...)}, nil
		})
	}
	a := &closeCounter{Handler: tagger("A:")}
	b := &closeCounter{Handler: tagger("B:")}
	st := start(t, zctx, Config{Spec: sp, Handler: a})

	const n = 2000
	var seenB bool
	c := peer(t, zctx, spec.REQ, "", ep)
	for i := 0; i < n; i++ {
		if i == n/2 {
			st.n.SwapHandler(b)
		}
		if err := c.Send(zsocktest.Frames(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
		got := string(socktest.Recv(t, c)[0])
		switch {
		case got == "B:"+fmt.Sprint(i):
			seenB = true
		case got == "A:"+fmt.Sprint(i) && !seenB:
		default:
			t.Fatalf("reply %d: got %q (seen B: %v)", i, got, seenB)
		}
	}
	if !seenB {
		t.Fatal("the new handler never answered")
	}
	if got := a.closed.Load(); got != 1 {
		t.Errorf("old handler closed %d times, want 1", got)
	}
	if got := b.closed.Load(); got != 0 {
		t.Errorf("new handler closed %d times before stop, want 0", got)
	}
	// The counter moves just after the reply left: wait for it.
	testutil.WaitFor(t, "condition", func() bool { return st.n.Stats("rep").Snapshot().MsgsOut == n })
	if s := st.n.Stats("rep").Snapshot(); s.MsgsIn != n || s.MsgsOut != n {
		t.Errorf("stats: %+v, want %d in and out", s, n)
	}
	st.cancel()
	st.wait(t)
	if got := b.closed.Load(); got != 1 {
		t.Errorf("handler closed %d times at stop, want 1", got)
	}
}

// TestSwapIdleClosesOldHandlerPromptly: a swap on an idle node closes the old
// handler without waiting for a message.
func TestSwapIdleClosesOldHandler(t *testing.T) {
	zctx := socktest.Context(t)
	a := &closeCounter{Handler: forward}
	st := start(t, zctx, Config{Spec: pipeNode("idle", "inproc://swap-idle", "inproc://swap-idle-out"), Handler: a})
	st.n.SwapHandler(forward)
	for deadline := time.Now().Add(bound); a.closed.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("old handler not closed")
		}
		time.Sleep(time.Millisecond)
	}
}

// ticker is a Runner that sends its tag on "out" until stopped.
type ticker struct {
	tag     string
	started chan struct{}
}

func (tk *ticker) Run(ctx context.Context, s handler.Sockets) error {
	close(tk.started)
	for {
		if err := s.Send("out", zsocktest.Frames(tk.tag)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func TestSwapRunner(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://runner-out"
	sink := peer(t, zctx, spec.PULL, ep, "")
	sp := &spec.Node{Name: "gen", Sockets: []*spec.Socket{{Name: "out", Type: spec.PUSH, Connect: []string{ep}}}}
	one := &ticker{tag: "one", started: make(chan struct{})}
	two := &ticker{tag: "two", started: make(chan struct{})}
	st := start(t, zctx, Config{Spec: sp, Handler: one})
	if got := string(socktest.Recv(t, sink)[0]); got != "one" {
		t.Fatalf("got %q, want one", got)
	}
	st.n.SwapHandler(two)
	for {
		got := string(socktest.Recv(t, sink)[0])
		if got == "two" {
			break
		}
		if got != "one" {
			t.Fatalf("got %q", got)
		}
	}
}

// completer is a Handler that completes after n messages.
type completer struct{ n, seen int }

func (c *completer) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	c.seen++
	if c.seen == c.n {
		return nil, handler.ErrDone
	}
	return nil, nil
}

func TestHandlerCompletes(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://complete"
	st := start(t, zctx, Config{Spec: pipeNode("sink", ep, "inproc://complete-out"), Handler: &completer{n: 5}})
	src := peer(t, zctx, spec.PUSH, "", ep)
	for i := 0; i < 5; i++ {
		if err := src.Send(zsocktest.Frames("x"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.wait(t); err != nil {
		t.Fatalf("Run: got %v, want nil (completed)", err)
	}
}

func TestSyncExpect(t *testing.T) {
	zctx := socktest.Context(t)
	syncEP := zsocktest.TCP(t)
	running := make(chan struct{})
	tk := &ticker{tag: "x", started: make(chan struct{})}
	sp := &spec.Node{Name: "pub", Sync: &spec.Sync{Expect: 2, Bind: syncEP},
		Sockets: []*spec.Socket{{Name: "out", Type: spec.PUB, Bind: []string{"inproc://sync-pub"}}}}
	start(t, zctx, Config{Spec: sp, Handler: tk, OnRunning: func() { close(running) }})
	c1 := peer(t, zctx, spec.REQ, "", syncEP)
	if err := c1.Send(zsocktest.Frames(""), 0); err != nil {
		t.Fatal(err)
	}
	if got := q(socktest.Recv(t, c1)); got != `[""]` {
		t.Fatalf("sync reply: got %s", got)
	}
	select {
	case <-running:
		t.Fatal("handler started after 1 of 2 peers")
	default:
	}
	c2 := peer(t, zctx, spec.REQ, "", syncEP)
	if err := c2.Send(zsocktest.Frames("anything"), 0); err != nil {
		t.Fatal(err)
	}
	socktest.Recv(t, c2)
	select {
	case <-running:
	case <-time.After(bound):
		t.Fatal("handler did not start")
	}
	<-tk.started
}

func TestSyncExpectStoppable(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "pub", Sync: &spec.Sync{Expect: 3, Bind: "inproc://sync-never"},
		Sockets: []*spec.Socket{{Name: "out", Type: spec.PUB, Bind: []string{"inproc://sync-never-pub"}}}}
	st := start(t, zctx, Config{Spec: sp, Handler: &ticker{started: make(chan struct{})}})
	st.cancel()
	if err := st.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// numbers is a Runner that publishes "0" to "n-1" on out, then waits.
type numbers struct{ n int }

func (nb numbers) Run(ctx context.Context, s handler.Sockets) error {
	for i := 0; i < nb.n; i++ {
		if err := s.Send("out", zsocktest.Frames(fmt.Sprint(i))); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestSyncExpectWaitsForSubscription: a publisher whose PUB connects to a
// proxy's XSUB starts once its sync peer has signalled and a subscription
// has come up to it, not before: a proxy forwards a subscriber's
// subscription after the subscriber has signalled, and what is published
// before it arrives is dropped. The first update is the first published.
func TestSyncExpectWaitsForSubscription(t *testing.T) {
	zctx := socktest.Context(t)
	xsubEP, syncEP := zsocktest.TCP(t), zsocktest.TCP(t)
	xsub := peer(t, zctx, spec.XSUB, xsubEP, "")
	running := make(chan struct{})
	sp := &spec.Node{Name: "pub", Sync: &spec.Sync{Expect: 1, Bind: syncEP},
		Sockets: []*spec.Socket{{Name: "out", Type: spec.PUB, Connect: []string{xsubEP}}}}
	start(t, zctx, Config{Spec: sp, Handler: numbers{n: 5}, OnRunning: func() { close(running) }})
	c := peer(t, zctx, spec.REQ, "", syncEP)
	if err := c.Send(zsocktest.Frames(""), 0); err != nil {
		t.Fatal(err)
	}
	socktest.Recv(t, c)
	// The barrier's peers are in, no subscription is: the handler waits
	// (this only gives a wrong start the time to show).
	select {
	case <-running:
		t.Fatal("handler started before a subscription reached its PUB")
	case <-time.After(200 * time.Millisecond):
	}
	if err := xsub.Send([][]byte{{1}}, 0); err != nil { // subscribe to everything
		t.Fatal(err)
	}
	select {
	case <-running:
	case <-time.After(bound):
		t.Fatal("handler did not start after the subscription")
	}
	for i := 0; i < 5; i++ {
		if got := string(socktest.Recv(t, xsub)[0]); got != fmt.Sprint(i) {
			t.Fatalf("update %d: got %q (an update was published before the subscription arrived)", i, got)
		}
	}
}

// TestSyncConnect: the subscriber's first message is the publisher's first:
// it signals only once connected and subscribed.
func TestSyncConnect(t *testing.T) {
	zctx := socktest.Context(t)
	pubEP, syncEP := zsocktest.TCP(t), zsocktest.IPC(t, "sync")
	got := make(chan string, 100)
	h := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		got <- string(m.Frames[len(m.Frames)-1])
		return nil, nil
	})
	sp := &spec.Node{Name: "sub", Sync: &spec.Sync{Connect: syncEP, ConnectNode: "pub"},
		Sockets: []*spec.Socket{{Name: "in", Type: spec.SUB, Connect: []string{pubEP}, Subscribe: []string{"t"}}}}
	running := make(chan struct{})
	start(t, zctx, Config{Spec: sp, Handler: h, OnRunning: func() { close(running) }})

	// The publisher comes up after the subscriber: connect-before-bind.
	pub := peer(t, zctx, spec.PUB, pubEP, "")
	rep := peer(t, zctx, spec.REP, syncEP, "")
	socktest.Recv(t, rep)
	if err := rep.Send(zsocktest.Frames(""), 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := pub.Send(zsocktest.Frames("t", fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		select {
		case m := <-got:
			if m != fmt.Sprint(i) {
				t.Fatalf("message %d: got %q (an update was lost before the barrier)", i, m)
			}
		case <-time.After(bound):
			t.Fatalf("message %d not received", i)
		}
	}
	<-running
}

// fakeAsync answers in reverse order of submission, in batches of two.
type fakeAsync struct {
	mu      sync.Mutex
	held    []handler.Result
	results chan handler.Result
	closed  atomic.Int32
	pending atomic.Int32
}

func newFakeAsync() *fakeAsync { return &fakeAsync{results: make(chan handler.Result, 100)} }

func (f *fakeAsync) Handle(context.Context, handler.Msg) ([][]byte, error) {
	panic("Handle called on an Async handler")
}

func (f *fakeAsync) Submit(_ context.Context, m handler.Msg, tag uint64) error {
	f.pending.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = append(f.held, handler.Result{Tag: tag, Frames: [][]byte{bytes.ToUpper(m.Frames[0])}})
	if len(f.held) == 2 || strings.HasPrefix(string(m.Frames[0]), "now") {
		for i := len(f.held) - 1; i >= 0; i-- {
			f.results <- f.held[i]
			f.pending.Add(-1)
		}
		f.held = nil
	}
	return nil
}

func (f *fakeAsync) Results() <-chan handler.Result { return f.results }
func (f *fakeAsync) Pending() int                   { return int(f.pending.Load()) }
func (f *fakeAsync) Close(context.Context) error    { f.closed.Add(1); return nil }

func TestAsyncOutOfOrder(t *testing.T) {
	zctx := socktest.Context(t)
	in, out := "inproc://async-in", "inproc://async-out"
	sink := peer(t, zctx, spec.PULL, out, "")
	f := newFakeAsync()
	st := start(t, zctx, Config{Spec: pipeNode("plug", in, out), Handler: f})
	src := peer(t, zctx, spec.PUSH, "", in)
	for _, m := range []string{"a", "b", "c", "d"} {
		if err := src.Send(zsocktest.Frames(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, string(socktest.Recv(t, sink)[0]))
	}
	if g := strings.Join(got, ""); g != "BADC" {
		t.Fatalf("got %s, want BADC", g)
	}
	st.cancel()
	st.wait(t)
	if f.closed.Load() != 1 {
		t.Errorf("closed %d times, want 1", f.closed.Load())
	}
}

// TestAsyncOnRepIsLockstep: a REP with an Async handler is not read again
// before its reply went out, and replies reach their requester.
func TestAsyncOnRepIsLockstep(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://async-rep"
	sp := &spec.Node{Name: "srv", Sockets: []*spec.Socket{{Name: "rep", Type: spec.REP, Bind: []string{ep}}}}
	f := newFakeAsync()
	start(t, zctx, Config{Spec: sp, Handler: f})
	c := peer(t, zctx, spec.REQ, "", ep)
	for i := 0; i < 5; i++ {
		if err := c.Send(zsocktest.Frames(fmt.Sprint("now", i)), 0); err != nil {
			t.Fatal(err)
		}
		if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames(fmt.Sprint("NOW", i))); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
}

// lateAsync answers each message from a goroutine of its own when the test
// releases it, through a handler.ResultQueue as the plugin and exec hosts
// do, so the node is told of each Result (handler.Notifier).
type lateAsync struct {
	q      *handler.ResultQueue
	held   chan handler.Result
	closed atomic.Int32
}

func newLateAsync() *lateAsync {
	return &lateAsync{q: handler.NewResultQueue(16), held: make(chan handler.Result, 16)}
}

func (l *lateAsync) Handle(context.Context, handler.Msg) ([][]byte, error) {
	panic("Handle called on an Async handler")
}

func (l *lateAsync) Submit(_ context.Context, m handler.Msg, tag uint64) error {
	l.q.Add(1)
	l.held <- handler.Result{Tag: tag, Frames: [][]byte{bytes.ToUpper(m.Frames[0])}}
	return nil
}

func (l *lateAsync) Results() <-chan handler.Result { return l.q.C() }
func (l *lateAsync) Pending() int                   { return l.q.Pending() }
func (l *lateAsync) OnResult(f func())              { l.q.OnResult(f) }
func (l *lateAsync) Close(context.Context) error {
	l.closed.Add(1)
	l.q.Close()
	return nil
}

// release answers the oldest message the handler holds, once the node has
// had time to go to sleep waiting for it.
func (l *lateAsync) release(t *testing.T) {
	t.Helper()
	select {
	case r := <-l.held:
		go func() {
			time.Sleep(5 * time.Millisecond)
			l.q.Put(r)
		}()
	case <-time.After(bound):
		t.Fatal("the handler never got the message")
	}
}

// TestAsyncResultWakesTheNode: a REP node whose Async handler answers later,
// from another goroutine, while nothing else arrives. The node sleeps in its
// poll with no timer (the handler is a Notifier), so each reply reaching the
// client proves the Result woke it.
func TestAsyncResultWakesTheNode(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://async-wake"
	sp := &spec.Node{Name: "srv", Sockets: []*spec.Socket{{Name: "rep", Type: spec.REP, Bind: []string{ep}}}}
	l := newLateAsync()
	start(t, zctx, Config{Spec: sp, Handler: l})
	c := peer(t, zctx, spec.REQ, "", ep)
	for i := 0; i < 20; i++ {
		if err := c.Send(zsocktest.Frames(fmt.Sprint("late", i)), 0); err != nil {
			t.Fatal(err)
		}
		l.release(t)
		if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames(fmt.Sprint("LATE", i))); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
}

// TestSwapFromAsyncToFastPath: a forward swapped in while the old Async
// handler still holds a message does not go into libzmq's proxy (which
// could not deliver the old handler's Result) until that Result is out:
// the held message arrives as soon as it is answered, messages sent since
// the swap are forwarded, and the old handler is closed once it holds
// nothing.
func TestSwapFromAsyncToFastPath(t *testing.T) {
	zctx := socktest.Context(t)
	in, out := "inproc://async-fast-in", "inproc://async-fast-out"
	sink := peer(t, zctx, spec.PULL, out, "")
	l := newLateAsync()
	st := start(t, zctx, Config{Spec: pipeNode("plug", in, out), Handler: l})
	src := peer(t, zctx, spec.PUSH, "", in)
	send := func(m string) {
		t.Helper()
		if err := src.Send(zsocktest.Frames(m), 0); err != nil {
			t.Fatal(err)
		}
	}
	send("a")
	var r handler.Result
	select {
	case r = <-l.held: // the old handler holds "a", unanswered
	case <-time.After(bound):
		t.Fatal("the handler never got the message")
	}
	fwd := &passthrough{}
	st.n.SwapHandler(fwd)
	send("b")
	if got := string(socktest.Recv(t, sink)[0]); got != "b" {
		t.Fatalf("got %q, want b (forwarded by the new handler)", got)
	}
	l.q.Put(r)
	if got := string(socktest.Recv(t, sink)[0]); got != "A" {
		t.Fatalf("got %q, want A (the old handler's answer)", got)
	}
	testutil.WaitFor(t, "condition", func() bool { return l.closed.Load() == 1 })
	for i := 0; i < 100; i++ {
		send(fmt.Sprint(i))
		if got := string(socktest.Recv(t, sink)[0]); got != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", got, i)
		}
	}
	st.cancel()
	st.wait(t)
	if got := st.n.Stats("out").Snapshot().MsgsOut; got != 102 {
		t.Errorf("out: %d messages, want 102", got)
	}
}

// TestCompletedNodeAcknowledgesCopies: a node that completed and holds its
// sockets open still acknowledges what comes on an at-least-once edge — a
// copy, sent again, of a message it already took. Its sender completes
// only once everything it sent is acknowledged, and would otherwise send
// it again until stopped (the topology never completing).
func TestCompletedNodeAcknowledgesCopies(t *testing.T) {
	zctx := socktest.Context(t)
	in, ackEP := "inproc://completed-acks-in", "inproc://completed-acks-ack"
	sp := &spec.Node{Name: "sink", Sockets: []*spec.Socket{
		{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{in}, Acks: true},
	}}
	var took atomic.Int32
	done := handler.HandlerFunc(func(context.Context, handler.Msg) ([][]byte, error) {
		took.Add(1)
		return nil, handler.ErrDone
	})
	completed := make(chan struct{})
	start(t, zctx, Config{Spec: sp, Handler: done, HoldOnComplete: true, OnCompleted: func() { close(completed) }})
	acks := peer(t, zctx, spec.PULL, ackEP, "")
	src := peer(t, zctx, spec.PUSH, "", in)
	id := strings.Repeat("i", originIDSize)
	msg := zsocktest.Frames(ALOMarker, ackEP, id, "payload")
	for i, what := range []string{"the message", "its copy, after completion"} {
		if err := src.Send(msg, 0); err != nil {
			t.Fatal(err)
		}
		if got := socktest.Recv(t, acks); len(got) != 1 || string(got[0]) != id {
			t.Fatalf("%s: acknowledgement %q, want [%q]", what, got, id)
		}
		if i == 0 {
			select {
			case <-completed:
			case <-time.After(bound):
				t.Fatal("the node did not complete")
			}
		}
	}
	if n := took.Load(); n != 1 {
		t.Errorf("the handler took %d messages, want 1", n)
	}
}
