package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/tap"
)

// tapPipeline: src (generate, paced so that the run lasts long enough to
// tap it mid-stream) -> worker (forward: libzmq's proxy while untapped)
// -> sink (count, expect n).
func tapPipeline(name string, n int) string {
	return fmt.Sprintf(`version: 1
name: %s
nodes:
  src:
    handler: generate
    config: {count: %d, payload: m, interval: 500us}
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    handler: forward
    sockets:
      in: {type: PULL, connect: src.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: auto}
`, name, n, n)
}

// startTapPipeline runs tapPipeline(name, n) and waits until the
// sink has at least k messages: a tap attached then sees the stream
// mid-way.
func startTapPipeline(t *testing.T, name string, n int, k uint64) (*rlRunning, *testutil.Buffer) {
	t.Helper()
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, rlDir(t), tapPipeline(name, n), nil), Options{Logger: lg})
	rlWaitFor(t, "traffic at the sink", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= k })
	return r, logs
}

// A tap attached mid-stream to a forward on the fast path sees messages;
// detached, the forward goes back to the fast path; the sink gets exactly
// what was sent, throughout.
func TestTapMidStreamKeepsCountExact(t *testing.T) {
	const n = 4000
	r, logs := startTapPipeline(t, "tap-mid", n, 200)

	tp := tap.New(0)
	names, err := r.e.Tap(tp, "worker", "out")
	if err != nil {
		t.Fatalf("Tap: %v", err)
	}
	if at := rlStat(r.e, "sink", "in").MsgsIn; at >= n {
		t.Fatalf("the run was over (%d at the sink) before the tap was attached", at)
	}
	if strings.Join(names, ",") != "worker" {
		t.Errorf("tapped %v, want [worker]", names)
	}
	var mu sync.Mutex
	var got []tap.Record
	rlWaitFor(t, "copies", func() bool {
		recs := tp.Read(100, 1<<20)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, recs...)
		return len(got) >= 100
	})
	tp.Close()
	copied := tp.Copied()
	r.mustWait(t)
	r.wantSink(t, n)
	if c := tp.Copied(); c != copied {
		t.Errorf("copies after Close: %d, then %d", copied, c)
	}
	for _, rec := range got[:100] {
		if rec.Instance != "worker" || rec.Socket != "out" || rec.Dir != tap.Out || len(rec.Frames) != 1 || string(rec.Frames[0]) != "m" {
			t.Fatalf("record %+v, want worker out out [m]", rec)
		}
	}
	if zbatch.Fast {
		// The forward left libzmq's proxy for the tap and went back to it.
		if c := strings.Count(logs.String(), "forwarding inside libzmq"); c < 2 {
			t.Errorf("the forward entered its fast path %d times, want at least 2 (before and after the tap)", c)
		}
	}
}

// A tap that is never read loses copies and counts them; the topology
// delivers exactly what was sent.
func TestSlowTapLosesCopiesNotMessages(t *testing.T) {
	const n = 3000
	r, _ := startTapPipeline(t, "tap-slow", n, 100)
	tp := tap.New(8)
	if _, err := r.e.Tap(tp, "worker", "in"); err != nil {
		t.Fatalf("Tap: %v", err)
	}
	if _, err := r.e.Tap(tp, "sink", "in"); err != nil {
		t.Fatalf("Tap: %v", err)
	}
	r.mustWait(t)
	tp.Close()
	r.wantSink(t, n)
	if tp.Copied() != 8 {
		t.Errorf("copied %d, want 8 (the buffer)", tp.Copied())
	}
	if tp.Lost() == 0 {
		t.Error("no copy lost by a tap that was never read")
	}
	t.Logf("copied %d, lost %d", tp.Copied(), tp.Lost())
}

// Unknown nodes and sockets, and sockets whose messages ztopo never sees.
func TestTapRefuses(t *testing.T) {
	lg, _ := newLogger(t)
	yaml := tapPipeline("tap-refuse", 1000000) + `  px:
    handler: proxy
    sockets:
      frontend: {type: PULL, bind: auto}
      backend: {type: PUSH, bind: auto}
`
	r := rlStart(t, rlParse(t, rlDir(t), yaml, nil), Options{Logger: lg})
	tp := tap.New(0)
	defer tp.Close()
	for _, c := range []struct{ node, socket, want string }{
		{"nope", "in", `no node or instance "nope"`},
		{"worker", "nope", `node "worker" has no socket "nope" (its sockets: in, out)`},
		{"px", "frontend", `node "px" runs the proxy builtin, whose messages libzmq moves without ztopo seeing them; tap a socket of a peer instead`},
	} {
		_, err := r.e.Tap(tp, c.node, c.socket)
		if err == nil || err.Error() != c.want {
			t.Errorf("Tap(%s.%s): got %v, want %s", c.node, c.socket, err, c.want)
		}
	}
	if len(tp.Instances()) != 0 {
		t.Errorf("attached to %v after errors only", tp.Instances())
	}
}

// What a tap recorded, replayed by the replay builtin into a count sink,
// arrives exactly: once, and three times over with loop.
func TestRecordThenReplay(t *testing.T) {
	lg, _ := newLogger(t)
	dir := rlDir(t)
	r := rlStart(t, rlParse(t, dir, tapPipeline("tap-rec", 2000), nil), Options{Logger: lg})
	rlWaitFor(t, "traffic at the sink", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= 100 })
	tp := tap.New(0)
	if _, err := r.e.Tap(tp, "worker", "in"); err != nil {
		t.Fatalf("Tap: %v", err)
	}
	var capture []byte
	var recorded int
	rlWaitFor(t, "copies", func() bool {
		for _, rec := range tp.Read(1000, 1<<20) {
			capture = tap.AppendJSON(capture, &rec)
			recorded++
		}
		return recorded >= 150
	})
	tp.Close()
	for _, rec := range tp.Read(10000, 1<<30) { // copied before Close
		capture = tap.AppendJSON(capture, &rec)
		recorded++
	}
	if tp.Lost() != 0 {
		t.Fatalf("the tap lost %d copies", tp.Lost())
	}
	if err := r.stop(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("Run: %v", err)
	}
	file := filepath.Join(dir, "capture.jsonl")
	if err := os.WriteFile(file, capture, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, cfg string
		want      int
	}{
		{"once", "{file: capture.jsonl, speed: 4}", recorded},
		{"loop", "{file: capture.jsonl, speed: max, loop: true}", 3 * recorded},
	} {
		t.Run(c.name, func(t *testing.T) {
			yaml := fmt.Sprintf(`version: 1
name: tap-replay-%s
nodes:
  rp:
    handler: replay
    config: %s
    sockets:
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: auto}
`, c.name, c.cfg, c.want)
			rr := rlStart(t, rlParse(t, dir, yaml, nil), Options{Logger: lg})
			if err := rr.wait(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := rlStat(rr.e, "sink", "in").MsgsIn; got != uint64(c.want) {
				t.Errorf("sink received %d, want %d", got, c.want)
			}
		})
	}
}
