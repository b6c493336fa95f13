package procnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// script writes a /bin/sh script into dir and returns its argv.
func script(t *testing.T, dir, body string) []string {
	t.Helper()
	p := filepath.Join(dir, "node.sh")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"/bin/sh", p}
}

func commandNode(name string, argv []string, sockets ...*spec.Socket) *spec.Node {
	return &spec.Node{
		Name: name, Base: name, Replicas: 1,
		Handler: spec.HandlerRef{Kind: spec.HandlerCommand, Argv: argv},
		Config:  map[string]any{},
		Run:     spec.RunProcess,
		Sockets: sockets,
	}
}

func TestCommandEnvironment(t *testing.T) {
	dir := t.TempDir()
	argv := script(t, dir, "env | grep '^ZTOPO_' | sort\necho \"KEEP=$KEEP\"\npwd\n")
	nd := commandNode("cmd.2", argv,
		&spec.Socket{Name: "idle", Type: spec.PAIR},
		&spec.Socket{Name: "in", Type: spec.PULL, Connect: []string{"tcp://127.0.0.1:5001", "ipc:///tmp/zt/a.sock"}},
		&spec.Socket{Name: "out-2", Type: spec.PUSH, Bind: []string{"tcp://127.0.0.1:5002"}},
		&spec.Socket{Name: "rep", Type: spec.REP, Bind: []string{"tcp://127.0.0.1:5003"}, Connect: []string{"tcp://127.0.0.1:5004"}},
	)
	nd.Base, nd.Replica, nd.Replicas = "cmd", 2, 3
	nd.Config = map[string]any{"greeting": "hi", "n": 2}
	c, logger := newCapture(t, "cmd.2")
	s := start(t, Config{
		Node: nd, Topology: topo(dir), Logger: logger,
		// Stale node variables in ztopo's own environment never reach the
		// program.
		Env: []string{"PATH=/usr/bin:/bin", "KEEP=kept", "ZTOPO_NODE=stale", "ZTOPO_OLD_BIND=tcp://127.0.0.1:9", "ZTOPO_IN_CONNECT=stale"},
	})
	if err := s.wait(t); err != nil {
		t.Fatalf("Run: got %v, want nil (exit 0 completes)", err)
	}
	if got := s.r.Stats(); got != nil {
		t.Errorf("Stats of a command: got %v, want nil", got)
	}
	want := []string{
		`ZTOPO_CONFIG={"greeting":"hi","n":2}`,
		"ZTOPO_IN_CONNECT=tcp://127.0.0.1:5001,ipc:///tmp/zt/a.sock",
		"ZTOPO_NODE=cmd.2",
		"ZTOPO_OUT_2_BIND=tcp://127.0.0.1:5002",
		"ZTOPO_REPLICA=2",
		"ZTOPO_REP_BIND=tcp://127.0.0.1:5003",
		"ZTOPO_REP_CONNECT=tcp://127.0.0.1:5004",
		"ZTOPO_TOPOLOGY=ptest",
		"KEEP=kept",
		dir,
	}
	if got := c.messages(""); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("program output:\ngot  %q\nwant %q", got, want)
	}
}

func TestCommandSocketNameClash(t *testing.T) {
	nd := commandNode("c", []string{"/bin/true"},
		&spec.Socket{Name: "a-b", Type: spec.PUSH, Bind: []string{"tcp://127.0.0.1:5001"}},
		&spec.Socket{Name: "a_b", Type: spec.PULL, Bind: []string{"tcp://127.0.0.1:5002"}},
	)
	err := New(Config{Node: nd, Topology: topo(t.TempDir())}).Run(testCtx(t))
	want := `node c: sockets "a-b" and "a_b" would both be given ZTOPO_A_B_BIND; rename one`
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
}

func TestCommandExitStatus(t *testing.T) {
	dir := t.TempDir()
	nd := commandNode("c", script(t, dir, "echo failing >&2\nexit 3\n"))
	c, logger := newCapture(t, "c")
	s := start(t, Config{Node: nd, Topology: topo(dir), Logger: logger})
	err := s.wait(t)
	var xe *ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("Run: got %v (%T), want an *ExitError", err, err)
	}
	if want := fmt.Sprintf("node c: process %d exited: exit status 3", xe.Pid); err.Error() != want {
		t.Errorf("error: got %q, want %q", err, want)
	}
	if xe.ExitCode() != 3 {
		t.Errorf("ExitCode: got %d, want 3", xe.ExitCode())
	}
	if got := strings.Join(c.messages("stderr"), "|"); got != "failing" {
		t.Errorf("stderr lines: got %q, want %q", got, "failing")
	}
}

func TestCommandMissingProgram(t *testing.T) {
	dir := t.TempDir()
	nd := commandNode("c", []string{filepath.Join(dir, "missing")})
	err := New(Config{Node: nd, Topology: topo(dir)}).Run(testCtx(t))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Run: got %v, want a not-exist error", err)
	}
}

func TestCommandIgnoringTermIsKilledAfterGrace(t *testing.T) {
	dir := t.TempDir()
	// The shell and its sleeps ignore SIGTERM (an ignored signal stays
	// ignored across exec): only the SIGKILL after Grace ends them.
	argv := script(t, dir, "trap '' TERM\necho ready\nwhile :; do sleep 0.2; done\n")
	c, logger := newCapture(t, "stubborn")
	const grace = 500 * time.Millisecond
	s := start(t, Config{Node: commandNode("stubborn", argv), Topology: topo(dir), Logger: logger, Grace: grace})
	s.waitRunning(t)
	waitLine(t, c, "ready")
	pid := s.r.PID()
	stopAt := time.Now()
	s.cancel()
	if err := s.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want %v", err, context.Canceled)
	}
	// A lower bound, not a speed: SIGKILL must not come before the grace.
	if d := time.Since(stopAt); d < grace {
		t.Errorf("stopped after %v, before the %v grace", d, grace)
	}
	if c.find("process did not stop in time, killing it") == nil {
		t.Error("no log line about the SIGKILL")
	}
	noLeftovers(t, pid)
}

func TestCommandGracefulStop(t *testing.T) {
	dir := t.TempDir()
	argv := script(t, dir, "trap 'echo bye; exit 0' TERM\necho ready\nwhile :; do sleep 0.2; done\n")
	c, logger := newCapture(t, "polite")
	s := start(t, Config{Node: commandNode("polite", argv), Topology: topo(dir), Logger: logger, Grace: time.Hour})
	s.waitRunning(t)
	waitLine(t, c, "ready")
	pid := s.r.PID()
	s.cancel()
	if err := s.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want %v", err, context.Canceled)
	}
	if got := strings.Join(c.messages(""), "|"); got != "ready|bye" {
		t.Errorf("output: got %q, want %q", got, "ready|bye")
	}
	noLeftovers(t, pid)
}

// waitLine waits for an output line of the program.
func waitLine(t *testing.T, c *capture, msg string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case e := <-c.Lines:
			if e.Str("@message") == msg {
				return
			}
		case <-deadline:
			t.Fatalf("no line %q", msg)
		}
	}
}

func TestCommandPythonWorker(t *testing.T) {
	const python = testutil.Python
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s: %v", python, err)
	}
	worker, err := filepath.Abs("../../topologies/py/upper_worker.py")
	if err != nil {
		t.Fatal(err)
	}
	zc := socktest.Context(t)
	src, dst := zsocktest.TCP(t), zsocktest.TCP(t)
	push := peer(t, zc, zmq4.PUSH, src, "")
	pull := peer(t, zc, zmq4.PULL, dst, "")
	nd := commandNode("upper", []string{python, worker},
		&spec.Socket{Name: "in", Type: spec.PULL, Connect: []string{src}},
		&spec.Socket{Name: "out", Type: spec.PUSH, Connect: []string{dst}},
	)
	c, logger := newCapture(t, "upper")
	s := start(t, Config{Node: nd, Topology: topo(filepath.Dir(worker)), Logger: logger})

	send(t, push, "hello")
	send(t, push, "key", "mixed Case 42")
	send(t, push, "END")
	for _, want := range [][]string{{"HELLO"}, {"key", "MIXED CASE 42"}, {"END"}} {
		if got := recv(t, pull); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("reply: got %q, want %q", got, want)
		}
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("Run: got %v, want nil (the worker exits 0 after END)", err)
	}
	if got, want := strings.Join(c.messages("stderr"), "|"), "upper: upper-cased 2 messages"; got != want {
		t.Errorf("stderr: got %q, want %q", got, want)
	}
}

// TestCommandEnvFromFile: a command gets its env (overriding what ztopo
// inherited) and the file's vars as ZTOPO_VAR_<NAME>; a stale ZTOPO_VAR_
// of ztopo's own environment never reaches it.
func TestCommandEnvFromFile(t *testing.T) {
	dir := t.TempDir()
	argv := script(t, dir, "env | grep -E '^(ZTOPO_VAR_|WHO=|KEEP=)' | sort\n")
	nd := commandNode("cmd", argv)
	nd.Env = map[string]string{"WHO": "from env", "KEEP": "overridden"}
	nd.Vars = map[string]string{"LEVEL": "3"}
	c, logger := newCapture(t, "cmd")
	s := start(t, Config{
		Node: nd, Topology: topo(dir), Logger: logger,
		Env: []string{"PATH=/usr/bin:/bin", "KEEP=kept", "WHO=inherited", "ZTOPO_VAR_OLD=stale"},
	})
	if err := s.wait(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	want := []string{"KEEP=overridden", "WHO=from env", "ZTOPO_VAR_LEVEL=3"}
	if got := c.messages(""); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("program output:\ngot  %q\nwant %q", got, want)
	}
	// A process node's child is built by the same nodeEnv: its env, last
	// for each name (exec keeps the last of duplicates).
	pn := &spec.Node{Name: "p", Base: "p", Env: map[string]string{"A": "1"}}
	env := nodeEnv([]string{"A=0", "ZTOPO_VAR_X=stale"}, topo(dir), pn)
	if got := strings.Join(env, " "); got != "A=0 A=1 ZTOPO_NODE=p ZTOPO_REPLICA=0 ZTOPO_TOPOLOGY=ptest" {
		t.Errorf("process node env: got %q", got)
	}
}
