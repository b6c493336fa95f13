// Package handlertest drives handlers the way a node does, for the tests
// and benchmarks of the handler kinds (exec, plugin). Tests only.
package handlertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// Payload16 is the 16-byte message of the handler benchmarks.
var Payload16 = []byte("0123456789abcdef")

// Msg is a message received on socket in, with one frame per string.
func Msg(frames ...string) handler.Msg {
	m := handler.Msg{Socket: "in"}
	for _, f := range frames {
		m.Frames = append(m.Frames, []byte(f))
	}
	return m
}

// BenchAsync pushes b.N copies of Payload16 through h the way a node does:
// one goroutine submits and drains Results, up to window in flight; the
// rate is reported as unit (e.g. "msg/s").
func BenchAsync(b *testing.B, h handler.Async, window int, unit string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	sent, got := 0, 0
	for got < b.N {
		for sent < b.N && sent-got < window {
			m := handler.Msg{Frames: [][]byte{append([]byte(nil), Payload16...)}}
			if err := h.Submit(ctx, m, uint64(sent)); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		select {
		case r := <-h.Results():
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			got++
		case <-ctx.Done():
			b.Fatal("timeout")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// Host is an async handler that counts the messages it holds: the exec
// and plugin hosts.
type Host interface {
	handler.Async
	Pending() int
}

// Drive submits n messages (payload(i) tagged i) from one goroutine, as a
// node does, draining Results in the same loop, and returns each tag's
// Result once Pending is back to 0. A repeated or unknown tag fails the
// test.
func Drive(t testing.TB, h Host, n int, payload func(i int) handler.Msg) map[uint64]handler.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(map[uint64]handler.Result, n)
	record := func(r handler.Result) {
		if r.Tag >= uint64(n) {
			t.Fatalf("result for unknown tag %d", r.Tag)
		}
		if _, dup := got[r.Tag]; dup {
			t.Fatalf("second result for tag %d", r.Tag)
		}
		got[r.Tag] = r
	}
	next := 0
	for len(got) < n {
		if next < n {
			select {
			case r := <-h.Results():
				record(r)
			default:
				if err := h.Submit(ctx, payload(next), uint64(next)); err != nil {
					t.Fatalf("submit %d: %v", next, err)
				}
				next++
			}
			continue
		}
		select {
		case r := <-h.Results():
			record(r)
		case <-ctx.Done():
			t.Fatalf("got %d results of %d; pending %d", len(got), n, h.Pending())
		}
	}
	// Pending may count the last Result for a moment after it was read.
	testutil.WaitFor(t, "Pending() == 0", func() bool { return h.Pending() == 0 })
	return got
}

// KindFactory is the factory the engine finds in handler.Kinds for a node
// whose handler is of kind.
func KindFactory(t testing.TB, kind spec.HandlerKind) handler.Factory {
	t.Helper()
	f, ok := handler.Kinds.Lookup(string(kind))
	if !ok {
		t.Fatalf("no %s factory in handler.Kinds", kind)
	}
	return f
}

// BackPressure submits two copies of m to h, which takes two messages in
// flight and answers neither for a while: a third Submit must wait until
// its context ends, with both still pending.
func BackPressure(t testing.TB, h Host, m handler.Msg) {
	t.Helper()
	bg := context.Background()
	for i := range 2 {
		if err := h.Submit(bg, m, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	if err := h.Submit(ctx, m, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Submit: got %v, want DeadlineExceeded", err)
	}
	if p := h.Pending(); p != 2 {
		t.Fatalf("Pending() = %d, want 2", p)
	}
}

// WantReplies receives one result per tag of want from h and fails the
// test unless each came without an error and with the frames want has for
// its tag (as %q prints them) — once.
func WantReplies(t testing.TB, h handler.Async, want map[uint64]string) {
	t.Helper()
	seen := map[uint64]bool{}
	for _, r := range testutil.Recv(t, "a result", h.Results(), len(want)) {
		if got := fmt.Sprintf("%q", r.Frames); r.Err != nil || seen[r.Tag] || got != want[r.Tag] {
			t.Fatalf("tag %d: got %s, %v (seen before: %v); want %s", r.Tag, got, r.Err, seen[r.Tag], want[r.Tag])
		}
		seen[r.Tag] = true
	}
}

// DriveThroughSwap keeps up to window messages in flight on h, message i
// being wrap("msg-i") tagged i, and calls swap after the swapAt'th. It
// stops submitting once the new handler has answered, and returns when
// every message was. Each is answered once, without an error, in frame
// frame: upper-cased by the old handler or reversed by the new one.
func DriveThroughSwap(t testing.TB, h handler.Async, window, swapAt int, wrap func(text string) handler.Msg, frame int, swap func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	results := map[uint64]handler.Result{}
	submitted := uint64(0)
	sawNew := false
	for !sawNew || uint64(len(results)) < submitted {
		if !sawNew && submitted-uint64(len(results)) < uint64(window) {
			if err := h.Submit(ctx, wrap(fmt.Sprintf("msg-%d", submitted)), submitted); err != nil {
				t.Fatal(err)
			}
			submitted++
			if submitted == uint64(swapAt) {
				swap()
			}
			continue
		}
		select {
		case r := <-h.Results():
			if _, dup := results[r.Tag]; dup {
				t.Fatalf("second result for %d", r.Tag)
			}
			results[r.Tag] = r
			if r.Err != nil {
				t.Fatalf("tag %d: %v", r.Tag, r.Err)
			}
			p := fmt.Sprintf("msg-%d", r.Tag)
			upper := strings.ToUpper(p)
			rev := []byte(p)
			slices.Reverse(rev)
			switch string(r.Frames[frame]) {
			case upper:
			case string(rev):
				sawNew = true
			default:
				t.Fatalf("tag %d: got %q, want %q or %q", r.Tag, r.Frames[frame], upper, rev)
			}
		case <-ctx.Done():
			t.Fatalf("no swap seen: %d submitted, %d answered", submitted, len(results))
		}
	}
}

// Crash is what a host's crash test checks once Drive has pushed messages
// through a child (or plugin) that exits mid-stream.
type Crash struct {
	Lost     error                   // the host's ErrLost
	Want     func(tag uint64) string // the answer to tag's message, as %q prints its frames
	Stats    func() (lost, restarts int64)
	FirstPID int // the child that crashed
}

// Check fails the test unless every Result in got either wraps c.Lost or
// came without an error and with c.Want(tag), some were lost and the host
// counted exactly those, the restarted child answers "after" with
// "AFTER", a restart was counted, and the first child is gone.
func (c Crash) Check(t testing.TB, h handler.Handler, got map[uint64]handler.Result) {
	t.Helper()
	lost := 0
	for tag, r := range got {
		switch {
		case errors.Is(r.Err, c.Lost):
			lost++
		case r.Err != nil:
			t.Fatalf("tag %d: unexpected error %v", tag, r.Err)
		default:
			if got, want := fmt.Sprintf("%q", r.Frames), c.Want(tag); got != want {
				t.Fatalf("tag %d: got %s, want %s", tag, got, want)
			}
		}
	}
	if lost == 0 {
		t.Fatal("no message reported lost")
	}
	if n, _ := c.Stats(); n != int64(lost) {
		t.Fatalf("Stats().Lost = %d, want %d (the lost results)", n, lost)
	}
	out, err := h.Handle(context.Background(), Msg("after"))
	if got := fmt.Sprintf("%q", out); err != nil || got != `["AFTER"]` {
		t.Fatalf("after restart: got %s, %v", got, err)
	}
	if _, n := c.Stats(); n < 1 {
		t.Fatalf("Stats().Restarts = %d, want >= 1", n)
	}
	if testutil.Alive(c.FirstPID) {
		t.Fatalf("crashed child %d still alive", c.FirstPID)
	}
}

// AfterSwap checks what a swap promises once it has returned while the old
// child (or plugin), pid old, holds message 0, which it answers held: a
// message submitted now ("new", tag 1) is answered "NEW" by the new child,
// the held one is answered too, the old child then exits, and the host
// counted one swap and nothing lost.
func AfterSwap(t testing.TB, h handler.Async, held string, old int, stats func() (swaps, lost int64)) {
	t.Helper()
	if err := h.Submit(context.Background(), Msg("new"), 1); err != nil {
		t.Fatal(err)
	}
	WantReplies(t, h, map[uint64]string{0: held, 1: `["NEW"]`})
	testutil.WaitFor(t, "the old child's exit", func() bool { return !testutil.Alive(old) })
	if swaps, lost := stats(); swaps != 1 || lost != 0 {
		t.Fatalf("Stats(): %d swaps, %d lost; want 1 swap, nothing lost", swaps, lost)
	}
}
