package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// passthrough is a forward that lets the node proxy; it counts the calls
// it should never get.
type passthrough struct{ calls atomic.Int64 }

func (p *passthrough) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	p.calls.Add(1)
	return m.Frames, nil
}
func (p *passthrough) Passthrough() bool { return true }

func TestFastPathForwardsAndCountsExactly(t *testing.T) {
	zctx := socktest.Context(t)
	in, out := "inproc://fast-in", "inproc://fast-out"
	sink := peer(t, zctx, spec.PULL, out, "")
	h := &passthrough{}
	st := start(t, zctx, Config{Spec: pipeNode("fwd", in, out), Handler: h})
	src := peer(t, zctx, spec.PUSH, "", in)

	// In batches well under the high-water marks, so that sending never
	// waits for this goroutine to receive.
	const n, batch = 10000, 500
	var bytes uint64
	for b := 0; b < n; b += batch {
		for i := b; i < b+batch; i++ {
			m := zsocktest.Frames("topic", fmt.Sprintf("body-%d", i))
			bytes += uint64(len(m[0]) + len(m[1]))
			if err := src.Send(m, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i := b; i < b+batch; i++ {
			if got, want := q(socktest.Recv(t, sink)), q(zsocktest.Frames("topic", fmt.Sprintf("body-%d", i))); got != want {
				t.Fatalf("message %d: got %s, want %s", i, got, want)
			}
		}
	}
	// While it runs the counters follow within statsIdle+statsBusy.
	testutil.WaitFor(t, "condition", func() bool {
		return st.n.Stats("in").Snapshot().MsgsIn == n && st.n.Stats("out").Snapshot().MsgsOut == n
	})
	st.cancel()
	if err := st.wait(t); err != context.Canceled {
		t.Fatalf("run: got %v, want %v", err, context.Canceled)
	}
	// The counts below hold on both paths; only the fast one skips Handle.
	if got, want := h.calls.Load(), int64(0); zbatch.Fast && got != want {
		t.Errorf("Handle called %d times on the fast path, want 0", got)
	}
	want := zsock.StatsSnapshot{MsgsIn: n, BytesIn: bytes}
	if got := st.n.Stats("in").Snapshot(); got != want {
		t.Errorf("in stats: got %+v, want %+v", got, want)
	}
	want = zsock.StatsSnapshot{MsgsOut: n, BytesOut: bytes}
	if got := st.n.Stats("out").Snapshot(); got != want {
		t.Errorf("out stats: got %+v, want %+v", got, want)
	}
}

// TestFastPathSwap: swapping the handler of a proxying node stops the
// proxy before SwapHandler returns; the new handler gets every message sent
// from then on, none is lost, and the counters add up across both.
func TestFastPathSwap(t *testing.T) {
	zctx := socktest.Context(t)
	in, out := "inproc://fast-swap-in", "inproc://fast-swap-out"
	sink := peer(t, zctx, spec.PULL, out, "")
	st := start(t, zctx, Config{Spec: pipeNode("fwd", in, out), Handler: &passthrough{}})
	src := peer(t, zctx, spec.PUSH, "", in)
	tagged := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		return [][]byte{append([]byte("B:"), m.Frames[0]...)}, nil
	})

	const n = 2000
	for i := 0; i < n; i++ {
		if i == n/2 {
			st.n.SwapHandler(tagged)
		}
		if err := src.Send(zsocktest.Frames(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
		got := string(socktest.Recv(t, sink)[0])
		want := fmt.Sprint(i)
		if i >= n/2 {
			want = "B:" + want
		}
		if got != want {
			t.Fatalf("message %d: got %q, want %q", i, got, want)
		}
	}
	st.cancel()
	st.wait(t)
	if got := st.n.Stats("in").Snapshot().MsgsIn; got != n {
		t.Errorf("in: got %d messages, want %d", got, n)
	}
	if got := st.n.Stats("out").Snapshot().MsgsOut; got != n {
		t.Errorf("out: got %d messages, want %d", got, n)
	}
}

// TestFastPathEchoes: a lone REP whose handler passes messages through is
// answered by the C echo loop: pipelined multi-frame requests come back
// whole and in order, Handle is never called, a swap hands the socket to
// the new handler between two requests, and the counters add up exactly.
func TestFastPathEchoes(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://fast-echo"
	h := &passthrough{}
	sp := &spec.Node{Name: "srv", Sockets: []*spec.Socket{{Name: "rep", Type: spec.REP, Bind: []string{ep}}}}
	st := start(t, zctx, Config{Spec: sp, Handler: h})
	// A DEALER need not wait for each reply: with an empty delimiter
	// first, it speaks to a REP.
	client := peer(t, zctx, spec.DEALER, "", ep)
	const n, batch = 2000, 500
	var bytes uint64
	for b := 0; b < n; b += batch {
		for i := b; i < b+batch; i++ {
			m := zsocktest.Frames("", fmt.Sprintf("body-%d", i), "tail")
			bytes += uint64(len(m[1]) + len(m[2]))
			if err := client.Send(m, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i := b; i < b+batch; i++ {
			if got, want := q(socktest.Recv(t, client)), q(zsocktest.Frames("", fmt.Sprintf("body-%d", i), "tail")); got != want {
				t.Fatalf("reply %d: got %s, want %s", i, got, want)
			}
		}
	}
	if got := h.calls.Load(); zbatch.Fast && got != 0 {
		t.Errorf("Handle called %d times on the fast path, want 0", got)
	}
	tagged := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		return [][]byte{append([]byte("B:"), m.Frames[0]...)}, nil
	})
	const swapped = 200
	for i := 0; i < swapped; i++ {
		if i == swapped/2 {
			st.n.SwapHandler(tagged)
		}
		body := fmt.Sprintf("late-%d", i)
		bytes += uint64(len(body))
		if err := client.Send(zsocktest.Frames("", body), 0); err != nil {
			t.Fatal(err)
		}
		want := body
		if i >= swapped/2 {
			want = "B:" + body
		}
		if got := socktest.Recv(t, client); len(got) != 2 || string(got[1]) != want {
			t.Fatalf("reply %d: got %s, want %q", i, q(got), want)
		}
	}
	st.cancel()
	st.wait(t)
	got := st.n.Stats("rep").Snapshot()
	if got.MsgsIn != n+swapped || got.MsgsOut != n+swapped || got.BytesIn != bytes {
		t.Errorf("rep stats: got %+v, want %d messages in and out, %d bytes in", got, n+swapped, bytes)
	}
}

func TestFastPathOnlyForOneWayPairs(t *testing.T) {
	mk := func(inType, outType spec.SocketType, inRole spec.Role) *run {
		sock := func(name string, typ spec.SocketType) *zsock.Socket {
			return &zsock.Socket{Spec: &spec.Socket{Name: name, Type: typ}}
		}
		return &run{
			recv: []*rsock{{name: "in", sock: sock("in", inType), role: inRole}},
			outs: []*rsock{{name: "out", sock: sock("out", outType), role: spec.RoleOut}},
		}
	}
	if !zbatch.Fast {
		if _, _, got := mk(spec.PULL, spec.PUSH, spec.RoleIn).fastPath(&passthrough{}, nil); got {
			t.Fatal("fastPath on pebbe's fallback = true, want false")
		}
		t.Skip("pebbe's fallback (ztopo_slowpath): no fast path at all")
	}
	tests := []struct {
		name string
		r    *run
		h    handler.Handler
		want bool
	}{
		{"pull push", mk(spec.PULL, spec.PUSH, spec.RoleIn), &passthrough{}, true},
		{"sub pub", mk(spec.SUB, spec.PUB, spec.RoleIn), &passthrough{}, true},
		{"xsub in", mk(spec.XSUB, spec.PUSH, spec.RoleIn), &passthrough{}, false},
		{"xpub out", mk(spec.PULL, spec.XPUB, spec.RoleIn), &passthrough{}, false},
		{"dealer in", mk(spec.DEALER, spec.PUSH, spec.RoleIn), &passthrough{}, false},
		{"not a passthrough", mk(spec.PULL, spec.PUSH, spec.RoleIn), forward, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, got := tt.r.fastPath(tt.h, nil); got != tt.want {
				t.Errorf("fastPath = %v, want %v", got, tt.want)
			}
		})
	}
	r := mk(spec.PULL, spec.PUSH, spec.RoleIn)
	r.outs = append(r.outs, r.outs[0])
	if _, _, got := r.fastPath(&passthrough{}, nil); got {
		t.Error("fastPath with two out sockets = true, want false")
	}

	// A lone REP is echoed in C; anything more needs the Go loop.
	lone := func(typ spec.SocketType, set func(*rsock)) *run {
		s := &rsock{name: "rep", sock: &zsock.Socket{Spec: &spec.Socket{Name: "rep", Type: typ}}, role: spec.RoleInOut}
		if set != nil {
			set(s)
		}
		return &run{socks: []*rsock{s}, recv: []*rsock{s}}
	}
	echoes := []struct {
		name string
		r    *run
		want bool
	}{
		{"lone rep", lone(spec.REP, nil), true},
		{"router", lone(spec.ROUTER, nil), false},
		{"acks", lone(spec.REP, func(s *rsock) { s.acks = true }), false},
		{"worker protocol", lone(spec.REP, func(s *rsock) { s.wk = &workerState{} }), false},
	}
	for _, tt := range echoes {
		t.Run(tt.name, func(t *testing.T) {
			in, out, got := tt.r.fastPath(&passthrough{}, nil)
			if got != tt.want || got && (in != tt.r.socks[0] || out != in) {
				t.Errorf("fastPath = %v, %v, %v; want %v on the REP both ways", in, out, got, tt.want)
			}
		})
	}
	r = lone(spec.REP, nil)
	r.socks = append(r.socks, mk(spec.PULL, spec.PUSH, spec.RoleIn).outs[0])
	if _, _, got := r.fastPath(&passthrough{}, nil); got {
		t.Error("fastPath of a REP beside another socket = true, want false")
	}
}

// discardCounter is a Discarder that completes after limit messages;
// Handle must not be called while it discards.
type discardCounter struct {
	limit, n, handled int
	off               bool
}

func (d *discardCounter) Handle(context.Context, handler.Msg) ([][]byte, error) {
	d.handled++
	d.n++
	if d.n == d.limit {
		return nil, handler.ErrDone
	}
	return nil, nil
}
func (d *discardCounter) Discarding() (bool, int) { return !d.off, d.limit - d.n }
func (d *discardCounter) Discarded(n int, _, _ time.Time) bool {
	d.n += n
	return d.n >= d.limit
}

// TestFastPathSinks: a discarding handler on a lone PULL counts in the C
// sink loop: exactly up to its limit, never through Handle, with the
// socket's counters exact when it completes; swapped, the new handler gets
// every message after the ones already counted.
func TestFastPathSinks(t *testing.T) {
	if !zbatch.Fast {
		t.Skip("pebbe's fallback (ztopo_slowpath): no C sink")
	}
	lone := func(ep string) *spec.Node {
		return &spec.Node{Name: "sink", Base: "sink", Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{ep}}}}
	}
	send := func(t *testing.T, src *zsock.Socket, from, to int) (bytes uint64) {
		for i := from; i < to; i++ {
			m := zsocktest.Frames("x", fmt.Sprint(i))
			bytes += uint64(len(m[0]) + len(m[1]))
			if err := src.Send(m, 0); err != nil {
				t.Fatal(err)
			}
		}
		return bytes
	}
	t.Run("limit", func(t *testing.T) {
		zctx := socktest.Context(t)
		ep := "inproc://sink-limit"
		d := &discardCounter{limit: 700}
		// Queued before the node binds (inproc connects first): the node
		// completes with 200 of them left, and no send waits for it.
		src := peer(t, zctx, spec.PUSH, "", ep)
		bytes := send(t, src, 0, 700)
		send(t, src, 700, 900)
		st := start(t, zctx, Config{Spec: lone(ep), Handler: d})
		if err := st.wait(t); err != nil {
			t.Fatalf("Run: got %v, want nil (completed)", err)
		}
		if d.n != 700 || d.handled != 0 {
			t.Errorf("got %d counted, %d through Handle, want 700, 0", d.n, d.handled)
		}
		if got, want := st.n.Stats("in").Snapshot(), (zsock.StatsSnapshot{MsgsIn: 700, BytesIn: bytes}); got != want {
			t.Errorf("in stats: got %+v, want %+v", got, want)
		}
	})
	t.Run("swap", func(t *testing.T) {
		zctx := socktest.Context(t)
		ep := "inproc://sink-swap"
		d := &discardCounter{limit: 1 << 30}
		src := peer(t, zctx, spec.PUSH, "", ep)
		st := start(t, zctx, Config{Spec: lone(ep), Handler: d})
		bytes := send(t, src, 0, 1000)
		testutil.WaitFor(t, "1000 counted", func() bool { return st.n.Stats("in").Snapshot().MsgsIn == 1000 })
		h := &passthrough{}
		st.n.SwapHandler(h)
		bytes += send(t, src, 1000, 1500)
		testutil.WaitFor(t, "500 handled", func() bool { return h.calls.Load() == 500 })
		st.cancel()
		st.wait(t)
		if d.n != 1000 || d.handled != 0 {
			t.Errorf("got %d counted, %d through Handle, want 1000, 0", d.n, d.handled)
		}
		if got, want := st.n.Stats("in").Snapshot(), (zsock.StatsSnapshot{MsgsIn: 1500, BytesIn: bytes}); got != want {
			t.Errorf("in stats: got %+v, want %+v", got, want)
		}
	})
}

// tapCount is a Tapper that counts what it saw come in.
type tapCount struct{ in atomic.Int64 }

func (c *tapCount) Tap(out bool, _, _ [][]byte) {
	if !out {
		c.in.Add(1)
	}
}

// TestFastPathSinkTapped: a tap attached to a counting sink's socket takes
// the node out of its C loop once it wakes, so that the tap sees every
// message from then on, and the count stays exact.
func TestFastPathSinkTapped(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://sink-tapped"
	d := &discardCounter{limit: 1 << 30}
	sp := &spec.Node{Name: "sink", Base: "sink", Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{ep}}}}
	src := peer(t, zctx, spec.PUSH, "", ep)
	st := start(t, zctx, Config{Spec: sp, Handler: d})
	for i := 0; i < 100; i++ {
		if err := src.Send(zsocktest.Frames(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "100 counted", func() bool { return st.n.Stats("in").Snapshot().MsgsIn == 100 })
	tap := &tapCount{}
	st.n.Stats("in").AttachTap(tap)
	st.n.TapChanged()
	// The node acts on the tap when it wakes: until then the C loop counts.
	testutil.WaitFor(t, "the node out of its C loop", func() bool { return st.n.CountersLag() == 0 })
	for i := 100; i < 150; i++ {
		if err := src.Send(zsocktest.Frames(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "the tap saw 50", func() bool { return tap.in.Load() == 50 })
	st.cancel()
	st.wait(t)
	if d.n != 150 || d.handled != 0 {
		t.Errorf("got %d counted, %d through Handle, want 150, 0", d.n, d.handled)
	}
}

// TestDiscarderTakesNoMoreThanItsLimit: a discarding handler counts
// exactly up to its limit, never through Handle, and completes; a handler
// that says it does not discard gets every message through Handle.
func TestDiscarderTakesNoMoreThanItsLimit(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("off=%v", off), func(t *testing.T) {
			zctx := socktest.Context(t)
			ep := fmt.Sprintf("inproc://discard-%v", off)
			d := &discardCounter{limit: 5, off: off}
			// Queued before the node binds (inproc connects first), so
			// that all 8 wait when it starts and it could take them all.
			src := peer(t, zctx, spec.PUSH, "", ep)
			for i := 0; i < 8; i++ {
				if err := src.Send(zsocktest.Frames("x", fmt.Sprint(i)), zmq4.DONTWAIT); err != nil {
					t.Fatal(err)
				}
			}
			st := start(t, zctx, Config{Spec: pipeNode("sink", ep, "inproc://discard-out-"+fmt.Sprint(off)), Handler: d})
			if err := st.wait(t); err != nil {
				t.Fatalf("Run: got %v, want nil (completed)", err)
			}
			wantHandled := 0
			if off {
				wantHandled = 5
			}
			if d.n != 5 || d.handled != wantHandled {
				t.Errorf("got %d counted, %d through Handle, want 5, %d", d.n, d.handled, wantHandled)
			}
		})
	}
}

// The signaller asks a proxy run's C loop for its counters while holding
// ctlMu, which the node needs to say that the run ended: a loop that has
// returned is asked nothing more, or the node waited out 20 unanswered
// requests (2 s) before its swapped-in handler could start. An answer
// the loop sent before it returned still counts.
func TestProxyStatsNotAskedOfEndedLoop(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://ended-loop"
	sig := peer(t, zctx, spec.PAIR, ep, "")
	loop := peer(t, zctx, spec.PAIR, "", ep)
	ps := &proxyStats{front: &zsock.Stats{}, back: &zsock.Stats{}}
	ps.ended.Store(true)
	r := &run{}
	if moved, answered := r.askProxyStats(sig.Z, ps, true); moved || answered {
		t.Errorf("askProxyStats of an ended loop: moved %v, answered %v; want neither", moved, answered)
	}
	var asked []string
	for {
		m, err := loop.Z.RecvBytes(zmq4.DONTWAIT)
		if err != nil {
			break
		}
		asked = append(asked, string(m))
	}
	if len(asked) != 0 {
		t.Errorf("the ended loop was sent %q, want nothing", asked)
	}

	answer := make([][]byte, 8)
	for i := range answer {
		answer[i] = make([]byte, 8)
	}
	if err := loop.Send(answer, 0); err != nil {
		t.Fatal(err)
	}
	poller := zmq4.NewPoller()
	poller.Add(sig.Z, zmq4.POLLIN)
	if !awaitAnswer(poller, ps) {
		t.Errorf("awaitAnswer: the answer sent before the loop ended was not taken")
	}
}
