package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// failing is a Runner that fails at once; runs counts its attempts.
type failing struct{ runs *atomic.Int32 }

func (f failing) Run(context.Context, handler.Sockets) error {
	f.runs.Add(1)
	return errors.New("boom")
}

// started runs an engine in the background.
type started struct {
	e      *Engine
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startEngine(t *testing.T, topo *spec.Topology, opts Options) *started {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger, _ = newLogger(t)
	}
	e, err := New(topo, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{e: e, cancel: cancel, done: make(chan struct{})}
	go func() { s.err = e.Run(ctx); close(s.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(bound):
			t.Error("Run did not return")
		}
	})
	return s
}

func (s *started) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(limit):
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		t.Fatalf("Run did not return within %v", limit)
		return nil
	}
}

// feed: generate forever (1 ms apart) -> count, a reactive pair.
func feed(ep string) []*spec.Node {
	return []*spec.Node{
		builtinNode("feeder", "generate", map[string]any{"interval": time.Millisecond},
			sock("out", spec.PUSH, list(ep), nil)),
		builtinNode("counter", "count", nil, sock("in", spec.PULL, nil, list(ep))),
	}
}

func TestFailingNodeRestartsUntilLimitWhileOthersRun(t *testing.T) {
	reg := handler.Builtins.Clone()
	var runs atomic.Int32
	reg.Register("failing", func(map[string]any, handler.Env) (any, error) { return failing{&runs}, nil })
	flaky := builtinNode("flaky", "failing", nil)
	flaky.Restart = spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 3, Within: time.Minute,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond}
	topo := &spec.Topology{Name: "t", Nodes: append(feed("inproc://feed"), flaky)}
	s := startEngine(t, topo, Options{Registry: reg})

	testutil.WaitFor(t, "flaky to fail for good", func() bool { return statusOf(s.e, "flaky").State == StateFailed })
	if got := runs.Load(); got != 4 {
		t.Errorf("flaky ran %d times, want 4 (1 + 3 restarts)", got)
	}
	if st := statusOf(s.e, "flaky"); st.Restarts != 3 {
		t.Errorf("restarts: got %d, want 3", st.Restarts)
	}
	// The counter keeps counting after flaky failed.
	before := statusOf(s.e, "counter").Sockets[0].MsgsIn
	testutil.WaitFor(t, "the counter to go on", func() bool { return statusOf(s.e, "counter").Sockets[0].MsgsIn > before+10 })
	if st := statusOf(s.e, "counter"); st.State != StateRunning {
		t.Errorf("counter: %s", st.State)
	}
	s.cancel()
	err := s.wait(t, bound)
	want := `node "flaky" failed: boom (restart limit reached: 3 restarts within 1m0s)`
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
}

func TestPolicyNoFailsAtOnce(t *testing.T) {
	reg := handler.Builtins.Clone()
	var runs atomic.Int32
	reg.Register("failing", func(map[string]any, handler.Env) (any, error) { return failing{&runs}, nil })
	flaky := builtinNode("flaky", "failing", nil)
	flaky.Restart = spec.Restart{Policy: spec.RestartNo}
	// A completing pair, so Run ends by itself.
	topo := &spec.Topology{Name: "t", Nodes: []*spec.Node{flaky,
		builtinNode("gen", "generate", map[string]any{"count": 10}, sock("out", spec.PUSH, list("inproc://no"), nil)),
		builtinNode("sink", "count", map[string]any{"expect": 10}, sock("in", spec.PULL, nil, list("inproc://no"))),
	}}
	_, err := runTopo(t, topo, Options{Registry: reg})
	if err == nil || err.Error() != `node "flaky" failed: boom` {
		t.Fatalf("Run: got %v", err)
	}
	if runs.Load() != 1 {
		t.Errorf("runs: got %d, want 1", runs.Load())
	}
}

func TestBindOnTakenPortNamesNodeSocketEndpoint(t *testing.T) {
	zctx, err := zsock.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	ep := zsocktest.TCP(t)
	holder, err := zsock.Open(zctx, &spec.Socket{Name: "holder", Type: spec.PULL, Bind: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	// A port another program holds at start ends the run at once (issue
	// 12 item 4; cannot_test.go): no restart would mend it.
	taken := builtinNode("taker", "count", nil, sock("in", spec.PULL, list(ep), nil))
	taken.Restart = spec.Restart{Policy: spec.RestartNo}
	s := startEngine(t, &spec.Topology{Name: "t", Nodes: append(feed("inproc://ok"), taken)}, Options{})
	err = s.wait(t, bound)
	want := fmt.Sprintf(`node "taker" failed: socket "in": bind %s: address already in use (another program holds this endpoint)`, ep)
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
	if got := statusOf(s.e, "taker").Error; got != fmt.Sprintf(`socket "in": bind %s: address already in use (another program holds this endpoint)`, ep) {
		t.Errorf("status error: %q", got)
	}
}

func TestCancelMidStreamDrainsAndReturns(t *testing.T) {
	// The sink binds the wildcard of its family and the others connect to
	// the loopback the loader would give them: the shutdown order must see
	// them as one edge (spec.Meet) for the workers to drain into the sink.
	for _, tc := range []struct{ name, wildcard, loopback string }{
		{"ipv4", "tcp://*:", "tcp://127.0.0.1:"},
		{"ipv6", "tcp://[::]:", "tcp://[::1]:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := func() string { return strings.TrimPrefix(zsocktest.TCP(t), "tcp://127.0.0.1:") }
			vp, sp := port(), port()
			v6 := []spec.Option{{Name: "ipv6", Value: 1}}
			s6 := func(s *spec.Socket) *spec.Socket { s.Options = v6; return s }
			vent, sink := tc.loopback+vp, tc.loopback+sp
			topo := &spec.Topology{Name: "t", Nodes: []*spec.Node{
				builtinNode("ventilator", "generate", map[string]any{"size": 16}, s6(sock("out", spec.PUSH, list(tc.wildcard+vp), nil))),
				builtinNode("worker.0", "forward", nil, s6(sock("in", spec.PULL, nil, list(vent))), s6(sock("out", spec.PUSH, nil, list(sink)))),
				builtinNode("worker.1", "forward", nil, s6(sock("in", spec.PULL, nil, list(vent))), s6(sock("out", spec.PUSH, nil, list(sink)))),
				builtinNode("sink", "count", nil, s6(sock("in", spec.PULL, list(tc.wildcard+sp), nil))),
			}}
			const grace = 2 * time.Second
			s := startEngine(t, topo, Options{Grace: grace})
			testutil.WaitFor(t, "messages at the sink", func() bool { return statusOf(s.e, "sink").Sockets[0].MsgsIn > 1000 })
			s.cancel()
			// Generous: the drain itself is bounded by grace; the rest is a few
			// polls and closes.
			if err := s.wait(t, grace+20*time.Second); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			for _, st := range s.e.Status() {
				if st.State != StateStopped {
					t.Errorf("%s: %s, want stopped", st.Name, st.State)
				}
			}
			// Producers stop first and the rest drains: what the workers took is
			// what the sink got.
			var fwd uint64
			for _, w := range []string{"worker.0", "worker.1"} {
				fwd += statusOf(s.e, w).Sockets[1].MsgsOut
			}
			if got := statusOf(s.e, "sink").Sockets[0].MsgsIn; got != fwd {
				t.Errorf("sink got %d, workers sent %d", got, fwd)
			}
		})
	}
}

func TestKillReturnsAtOnce(t *testing.T) {
	topo := &spec.Topology{Name: "t", Nodes: feed(zsocktest.TCP(t))}
	s := startEngine(t, topo, Options{Grace: time.Minute})
	testutil.WaitFor(t, "traffic", func() bool { return statusOf(s.e, "counter").Sockets[0].MsgsIn > 10 })
	s.e.Kill()
	if err := s.wait(t, bound); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestSwapHandlerThroughEngine(t *testing.T) {
	ep := zsocktest.TCP(t)
	srv := builtinNode("srv", "echo", nil, sock("rep", spec.REP, list(ep), nil))
	s := startEngine(t, &spec.Topology{Name: "t", Nodes: []*spec.Node{srv}}, Options{})
	zctx, err := zsock.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	c, err := zsock.Open(zctx, &spec.Socket{Name: "c", Type: spec.REQ, Connect: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(m string) string {
		if err := c.Send([][]byte{[]byte(m)}, 0); err != nil {
			t.Fatal(err)
		}
		r, err := c.Recv(0)
		if err != nil {
			t.Fatal(err)
		}
		return string(r[0])
	}
	if got := ask("hi"); got != "hi" {
		t.Fatalf("echo: got %q", got)
	}
	if err := s.e.SwapHandler("srv", spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "upper"}, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if got := ask("hi"); got != "HI" {
		t.Fatalf("after swap: got %q", got)
	}
	if err := s.e.SwapHandler("srv", spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "upper"}, map[string]any{"bogus": 1}); err == nil || !strings.Contains(err.Error(), `unknown config key "bogus"`) {
		t.Fatalf("bad config: got %v", err)
	}
	if err := s.e.SwapHandler("nope", spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "echo"}, nil); err == nil {
		t.Fatal("swap on a missing instance succeeded")
	}
	if got := ask("again"); got != "AGAIN" {
		t.Fatalf("after a refused swap: got %q", got)
	}
}

// TestCommandFailsAfterRestartLimit: a command that always exits 1 runs
// exactly 1 + max_restarts times, with at least the backoff between runs
// (doubling from backoff_min), then is failed and Run says so by name.
func TestCommandFailsAfterRestartLimit(t *testing.T) {
	dir := rlDir(t)
	runs := filepath.Join(dir, "runs")
	topo := rlParse(t, dir, `version: 1
name: crashing
nodes:
  crasher:
    command: [/bin/sh, -c, 'date +%s%N >> runs; exit 1']
    restart: {policy: on-failure, max_restarts: 2, within: 1m, backoff_min: 50ms, backoff_max: 200ms}
`, nil)
	lg, _ := newLogger(t)
	e, err := runTopo(t, topo, Options{Logger: lg})
	want := regexp.MustCompile(`^node "crasher" failed: node crasher: process \d+ exited: exit status 1 \(restart limit reached: 2 restarts within 1m0s\)$`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
	st := statusOf(e, "crasher")
	if st.State != StateFailed || st.Restarts != 2 || st.PID != 0 {
		t.Errorf("crasher: %s, restarts %d, pid %d; want failed, 2, none", st.State, st.Restarts, st.PID)
	}
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	var at []int64
	for _, l := range strings.Fields(string(b)) {
		ns, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatalf("runs file: %q", b)
		}
		at = append(at, ns)
	}
	if len(at) != 3 {
		t.Fatalf("runs: got %d, want 3 (1 + 2 restarts)", len(at))
	}
	// Lower bounds only: a busy machine makes the gaps longer, never shorter.
	for i, min := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond} {
		if gap := time.Duration(at[i+1] - at[i]); gap < min {
			t.Errorf("gap before run %d: %v, want at least %v", i+2, gap, min)
		}
	}
}

func TestUnknownHandler(t *testing.T) {
	_, err := New(&spec.Topology{Name: "t", Nodes: []*spec.Node{builtinNode("x", "nope", nil)}}, Options{})
	if err == nil || err.Error() != `node "x": unknown handler "nope"` {
		t.Fatalf("got %v", err)
	}
}

// TestCommandPermanentStartErrorFailsAtOnce: a command whose program was
// removed, lost its x bit or is no program after the file was validated
// (12.8 makes a missing one a validate error) fails at its first start,
// naming node and path, instead of being restarted into the same error.
func TestCommandPermanentStartErrorFailsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(path string) error
		cause string
	}{
		{"deleted", os.Remove, "no such file or directory"},
		{"not executable", func(p string) error { return os.Chmod(p, 0o644) }, "permission denied"},
		{"no program", func(p string) error { return os.WriteFile(p, []byte("echo no shebang\n"), 0o755) }, "exec format error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := rlDir(t)
			prog := filepath.Join(dir, "prog")
			if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			topo := rlParse(t, dir, `version: 1
name: permanent
nodes:
  c:
    command: [./prog]
    restart: {policy: always, max_restarts: 5, within: 1m, backoff_min: 50ms}
`, nil)
			if err := tc.spoil(prog); err != nil {
				t.Fatal(err)
			}
			lg, logs := newLogger(t)
			e, err := runTopo(t, topo, Options{Logger: lg})
			want := `node "c" failed: start c: fork/exec ` + prog + `: ` + tc.cause +
				` (not retried: the program cannot be executed until it is fixed)`
			if err == nil || err.Error() != want {
				t.Fatalf("Run: got %v, want %s", err, want)
			}
			if st := statusOf(e, "c"); st.State != StateFailed || st.Restarts != 0 {
				t.Errorf("c: %s, restarts %d; want failed, 0", st.State, st.Restarts)
			}
			if n := strings.Count(logs.String(), "node cannot start"); n != 1 {
				t.Errorf(`"node cannot start" logged %d times, want 1`, n)
			}
		})
	}
}
