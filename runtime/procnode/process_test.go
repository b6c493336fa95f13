package procnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// forwardNode is a `run: process` forward node between a test PUSH bound
// at src and a test PULL bound at dst.
func forwardNode(name, src, dst string) *spec.Node {
	return &spec.Node{
		Name: name, Base: name, Replicas: 1,
		Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "forward"},
		Config:  map[string]any{},
		Run:     spec.RunProcess,
		Restart: spec.Restart{Policy: spec.RestartNo},
		Sockets: []*spec.Socket{
			{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Connect: []string{src}},
			{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Connect: []string{dst}},
		},
	}
}

func TestProcessNodeForwards(t *testing.T) {
	zc := socktest.Context(t)
	src, dst := zsocktest.TCP(t), zsocktest.TCP(t)
	push := peer(t, zc, zmq4.PUSH, src, "")
	pull := peer(t, zc, zmq4.PULL, dst, "")
	c, logger := newCapture(t, "fwd")
	s := start(t, Config{
		Node: forwardNode("fwd", src, dst), Topology: topo(t.TempDir()), Logger: logger,
		Grace: time.Hour, // a stop that needed SIGKILL would hang the test: it must be SIGTERM
	})
	s.waitRunning(t)
	pid := s.r.PID()
	if pid <= 0 {
		t.Fatalf("PID: got %d while running, want a pid", pid)
	}

	const n = 1000
	var bytes uint64
	for i := range n {
		k, v := fmt.Sprintf("k%d", i%7), fmt.Sprintf("message %d", i)
		bytes += uint64(len(k) + len(v))
		send(t, push, k, v)
	}
	for i := range n {
		got := recv(t, pull)
		want := []string{fmt.Sprintf("k%d", i%7), fmt.Sprintf("message %d", i)}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("message %d: got %q, want %q", i, got, want)
		}
	}

	// The child reports every StatsInterval: wait for the report that has
	// everything.
	want := map[string]zsock.StatsSnapshot{
		"in":  {MsgsIn: n, BytesIn: bytes},
		"out": {MsgsOut: n, BytesOut: bytes},
	}
	deadline := time.Now().Add(bound)
	for fmt.Sprint(s.r.Stats()) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats: got %v, want %v", s.r.Stats(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	s.cancel()
	if err := s.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: got %v, want %v", err, context.Canceled)
	}
	if got := s.r.PID(); got != 0 {
		t.Errorf("PID after Run: got %d, want 0", got)
	}
	if got := fmt.Sprint(s.r.Stats()); got != fmt.Sprint(want) {
		t.Errorf("Stats after Run: got %s, want %v", got, want)
	}
	if e := c.find("process did not stop in time, killing it"); e != nil {
		t.Errorf("the child needed SIGKILL: %v", e)
	}
	noLeftovers(t, pid)
}

// TestProcessNodeNoWatch: the child builds its exec and plugin handlers
// from the registry that matches Config.NoWatch (`ztopo up --no-watch`).
func TestProcessNodeNoWatch(t *testing.T) {
	for _, noWatch := range []bool{false, true} {
		t.Run(fmt.Sprint("NoWatch=", noWatch), func(t *testing.T) {
			zc := socktest.Context(t)
			src, dst := zsocktest.TCP(t), zsocktest.TCP(t)
			push := peer(t, zc, zmq4.PUSH, src, "")
			pull := peer(t, zc, zmq4.PULL, dst, "")
			_, logger := newCapture(t, "ex")
			n := forwardNode("ex", src, dst)
			n.Handler = spec.HandlerRef{Kind: spec.HandlerExec}
			s := start(t, Config{Node: n, Topology: topo(t.TempDir()), Logger: logger, NoWatch: noWatch})
			s.waitRunning(t)
			send(t, push, "m")
			want := fmt.Sprintf("watch=%t|m", !noWatch)
			if got := strings.Join(recv(t, pull), "|"); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			s.cancel()
			if err := s.wait(t); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run after cancel: got %v, want %v", err, context.Canceled)
			}
		})
	}
}

func TestProcessNodeCompletes(t *testing.T) {
	// The ipc endpoint is in a runtime directory that does not exist yet:
	// the Runner creates it, private, before the child binds there.
	base, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	tp := topo(base)
	tp.RuntimeDir = filepath.Join(base, "run")
	ep := "ipc://" + filepath.Join(tp.RuntimeDir, "sink.in")
	nd := &spec.Node{
		Name: "sink", Base: "sink", Replicas: 1,
		Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "count"},
		Config:  map[string]any{"expect": 3},
		Run:     spec.RunProcess,
		Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{ep}}},
	}
	c, logger := newCapture(t, "sink")
	s := start(t, Config{Node: nd, Topology: tp, Logger: logger})
	s.waitRunning(t)
	pid := s.r.PID()
	fi, err := os.Stat(tp.RuntimeDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("runtime directory mode: got %04o, want 0700", got)
	}

	push := peer(t, socktest.Context(t), zmq4.PUSH, "", ep)
	for _, m := range []string{"a", "bb", "ccc"} {
		send(t, push, m)
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("Run: got %v, want nil (completed)", err)
	}
	want := map[string]zsock.StatsSnapshot{"in": {MsgsIn: 3, BytesIn: 6}}
	if got := fmt.Sprint(s.r.Stats()); got != fmt.Sprint(want) {
		t.Errorf("Stats: got %s, want %v", got, want)
	}
	// The child's log entry, logged again by the parent at its level with
	// its fields, under the parent's node logger.
	var e entry
	for _, m := range c.messages("") {
		if strings.HasPrefix(m, "received 3 messages in ") {
			e = c.find(m)
		}
	}
	if e == nil {
		t.Fatalf("no \"received 3 messages\" entry from the child")
	}
	if e.Str("@level") != "info" || e.Str("node") != "sink" || e.Str("@module") != "node" || e["count"] != float64(3) {
		t.Errorf("child entry: got level %q node %q module %q count %v, want info sink node 3", e.Str("@level"), e.Str("node"), e.Str("@module"), e["count"])
	}
	noLeftovers(t, pid)
}

func TestProcessNodeFailureIsReported(t *testing.T) {
	nd := forwardNode("bad", "tcp://127.0.0.1:1", "tcp://127.0.0.1:1")
	nd.Handler.Name = "nope"
	_, logger := newCapture(t, "bad")
	s := start(t, Config{Node: nd, Topology: topo(t.TempDir()), Logger: logger})
	err := s.wait(t)
	var xe *ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("Run: got %v (%T), want an *ExitError", err, err)
	}
	if xe.ExitCode() != 1 {
		t.Errorf("ExitCode: got %d, want 1", xe.ExitCode())
	}
	wantPrefix := fmt.Sprintf(`node bad: process %d exited: exit status 1: unknown builtin handler "nope" (this ztopo has: `, xe.Pid)
	if !strings.HasPrefix(err.Error(), wantPrefix) || !strings.Contains(err.Error(), "forward") {
		t.Errorf("error: got %q, want it to start %q and list forward", err, wantPrefix)
	}
	noLeftovers(t, xe.Pid)
}

// runSignalled runs forward node fwd in a child, sends the child sig once
// the node runs, and returns the child's pid and what Run returned.
func runSignalled(t *testing.T, sig syscall.Signal) (int, error) {
	t.Helper()
	src, dst := zsocktest.TCP(t), zsocktest.TCP(t)
	_, logger := newCapture(t, "fwd")
	s := start(t, Config{Node: forwardNode("fwd", src, dst), Topology: topo(t.TempDir()), Logger: logger})
	s.waitRunning(t)
	pid := s.r.PID()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	return pid, s.wait(t)
}

func TestProcessNodeKilled(t *testing.T) {
	pid, err := runSignalled(t, syscall.SIGKILL)
	want := fmt.Sprintf("node fwd: process %d exited: signal: killed", pid)
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
	var xe *ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != -1 {
		t.Errorf("ExitError: got %#v, want exit code -1", xe)
	}
	noLeftovers(t, pid)
}

func TestProcessNodeStoppedFromOutside(t *testing.T) {
	// SIGTERM from someone else than the Runner stops the child cleanly
	// (exit 0), but the node did not complete: a failure for the engine.
	pid, err := runSignalled(t, syscall.SIGTERM)
	want := fmt.Sprintf("node fwd: process %d exited: exit status 0: the node stopped without completing (a signal from outside ztopo?)", pid)
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
	noLeftovers(t, pid)
}

func TestProcessNodeRestartsKeepCounting(t *testing.T) {
	zc := socktest.Context(t)
	src, dst := zsocktest.TCP(t), zsocktest.TCP(t)
	push := peer(t, zc, zmq4.PUSH, src, "")
	pull := peer(t, zc, zmq4.PULL, dst, "")
	_, logger := newCapture(t, "fwd")
	r := New(Config{Node: forwardNode("fwd", src, dst), Topology: topo(t.TempDir()), Logger: logger, Self: self(t)})
	for run := 1; run <= 2; run++ {
		ctx, cancel := context.WithCancel(testCtx(t))
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		send(t, push, "x")
		if got := recv(t, pull); len(got) != 1 || got[0] != "x" {
			t.Fatalf("run %d: got %q, want [x]", run, got)
		}
		// Wait for this run's report of the message before stopping.
		deadline := time.Now().Add(bound)
		for r.Stats()["out"].MsgsOut != uint64(run) {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: Stats: got %v, want %d out", run, r.Stats(), run)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("run %d: got %v, want %v", run, err, context.Canceled)
			}
		case <-time.After(bound):
			t.Fatalf("run %d: Run did not return", run)
		}
	}
	want := map[string]zsock.StatsSnapshot{"in": {MsgsIn: 2, BytesIn: 2}, "out": {MsgsOut: 2, BytesOut: 2}}
	if got := fmt.Sprint(r.Stats()); got != fmt.Sprint(want) {
		t.Errorf("Stats over two runs: got %s, want %v", got, want)
	}
}

func TestNodeChildDiesWithZtopo(t *testing.T) {
	// A `ztopo up` (here the test binary in its parent role) killed with
	// SIGKILL leaves no node child behind: the parent-death signal ends it.
	parent := exec.Command(self(t))
	parent.Env = append(os.Environ(), parentHelperEnv+"="+zsocktest.TCP(t))
	parent.Stderr = os.Stderr
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Process.Kill(); parent.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var pid int
	select {
	case line := <-lines:
		if _, err := fmt.Sscanf(line, "child %d", &pid); err != nil {
			t.Fatalf("parent said %q: %v", line, err)
		}
	case <-time.After(bound):
		t.Fatal("the parent did not report its node child")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		t.Fatalf("node child %d not running: %v", pid, err)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	noLeftovers(t, pid)
}

func TestRunWithoutSelf(t *testing.T) {
	r := New(Config{Node: forwardNode("fwd", "tcp://127.0.0.1:1", "tcp://127.0.0.1:1"), Topology: topo(t.TempDir())})
	err := r.Run(testCtx(t))
	want := "node fwd: no ztopo executable to run a process node with"
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
}

func TestRunChildOutsideZtopo(t *testing.T) {
	t.Setenv(EnvSpec, "")
	err := RunChild(testCtx(t), nil)
	want := "ZTOPO_NODE_SPEC is not set: `ztopo _node` runs one node of `ztopo up`, which starts it"
	if err == nil || err.Error() != want {
		t.Fatalf("RunChild: got %v, want %s", err, want)
	}
	if Reported(err) {
		t.Error("Reported: got true for an error nobody was told")
	}
}
