package procnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/testutil"

	"github.com/ztopo/ztopo/runtime/handler"
	_ "github.com/ztopo/ztopo/runtime/handler/builtin"
	"github.com/ztopo/ztopo/spec"
)

// bound is the generous limit of every wait in these tests.
const bound = 30 * time.Second

// TestMain lets the test binary act as `ztopo _node`, the way
// cmd/ztopo/node.go does, so that process nodes run the real child path:
// Config.Self is the test binary itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ChildVerb {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err := RunChild(ctx, testKinds)
		stop()
		switch {
		case err == nil, ctx.Err() != nil && errors.Is(err, ctx.Err()):
			os.Exit(0)
		case !Reported(err):
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	if os.Getenv(parentHelperEnv) != "" {
		os.Exit(parentHelper())
	}
	os.Exit(m.Run())
}

// testKinds stands for the CLI's exec and plugin registries in the child:
// its exec handler answers each message with "watch=true" or "watch=false",
// the watch setting the child chose its registry by, then the message.
func testKinds(watch bool) *handler.Registry {
	kinds := handler.NewRegistry()
	kinds.Register(string(spec.HandlerExec), func(map[string]any, handler.Env) (any, error) {
		return handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
			return append([][]byte{fmt.Appendf(nil, "watch=%t", watch)}, m.Frames...), nil
		}), nil
	})
	return kinds
}

// parentHelperEnv makes the test binary play `ztopo up` with one process
// node: it prints the node child's pid, then waits to be killed.
const parentHelperEnv = "ZTOPO_PROCNODE_TEST_PARENT"

func parentHelper() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ep := os.Getenv(parentHelperEnv)
	var r *Runner
	running := make(chan struct{})
	r = New(Config{
		Node:      forwardNode("fwd", ep, ep),
		Topology:  &spec.Topology{Version: 1, Name: "ptest"},
		Self:      exe,
		OnRunning: func() { close(running) },
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-running:
		fmt.Println("child", r.PID())
	case err := <-done:
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	case <-time.After(bound):
		return 1
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
	}
	return 0
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	return ctx
}

// entry is one log entry the parent wrote.
type entry = testutil.LogEntry

// capture keeps the parent's JSON log entries (testutil.LogCapture) and
// shows each in the test's log.
type capture struct {
	*testutil.LogCapture
	t *testing.T
}

func newCapture(t *testing.T, name string) (*capture, hclog.Logger) {
	c := &capture{LogCapture: testutil.NewLogCapture(10000), t: t}
	lg := hclog.New(&hclog.LoggerOptions{Output: c, JSONFormat: true, Level: hclog.Debug})
	return c, lg.Named("node").With("node", name)
}

func (c *capture) Write(b []byte) (int, error) {
	if _, err := c.LogCapture.Write(b); err != nil {
		c.t.Error(err)
		return len(b), nil
	}
	c.t.Logf("log: %s", strings.TrimSpace(string(b)))
	return len(b), nil
}

// find returns the first entry whose message is msg, or nil.
func (c *capture) find(msg string) entry {
	for _, e := range c.Entries() {
		if e.Str("@message") == msg {
			return e
		}
	}
	return nil
}

// messages returns the messages of the info and higher entries with the
// given stream ("" for stdout lines and the child's own entries), in order.
func (c *capture) messages(stream string) []string {
	var out []string
	for _, e := range c.Entries() {
		if (e.Str("stream") == stream || stream == "" && e.Str("stream") == "stdout") && e.Str("@level") != "debug" && e.Str("@level") != "trace" {
			out = append(out, e.Str("@message"))
		}
	}
	return out
}

// started is a Runner running in a goroutine.
type started struct {
	r       *Runner
	cancel  context.CancelFunc
	done    chan error
	running chan struct{}
}

func start(t *testing.T, cfg Config) *started {
	t.Helper()
	running := make(chan struct{})
	var once sync.Once
	cfg.OnRunning = func() { once.Do(func() { close(running) }) }
	if cfg.Self == "" {
		cfg.Self = self(t)
	}
	r := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{r: r, cancel: cancel, done: make(chan error, 1), running: running}
	go func() { s.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(bound):
			t.Errorf("Run did not return after its context was cancelled")
		}
	})
	return s
}

func (s *started) waitRunning(t *testing.T) {
	t.Helper()
	select {
	case <-s.running:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("Run returned before the node ran: %v", err)
	case <-time.After(bound):
		t.Fatal("node not running in time")
	}
}

func (s *started) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(bound):
		t.Fatal("Run did not return in time")
	}
	return nil
}

// peer opens a test-side socket, bound to ep, with linger 0 and a receive
// timeout, closed at the end of the test (before its context terminates).
func peer(t *testing.T, c *zmq4.Context, typ zmq4.Type, bind, connect string) *zmq4.Socket {
	t.Helper()
	s, err := c.NewSocket(typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRcvtimeo(bound); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSndtimeo(bound); err != nil {
		t.Fatal(err)
	}
	if bind != "" {
		if err := s.Bind(bind); err != nil {
			t.Fatalf("bind %s: %v", bind, err)
		}
	}
	if connect != "" {
		if err := s.Connect(connect); err != nil {
			t.Fatalf("connect %s: %v", connect, err)
		}
	}
	return s
}

func send(t *testing.T, s *zmq4.Socket, frames ...string) {
	t.Helper()
	parts := make([]any, len(frames))
	for i, f := range frames {
		parts[i] = f
	}
	if _, err := s.SendMessage(parts...); err != nil {
		t.Fatalf("send %q: %v", frames, err)
	}
}

func recv(t *testing.T, s *zmq4.Socket) []string {
	t.Helper()
	m, err := s.RecvMessage(0)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

func topo(dir string) *spec.Topology {
	return &spec.Topology{Version: 1, Name: "ptest", File: dir + "/topology.yaml", Dir: dir}
}

// noLeftovers waits (bounded) until neither the child nor anything of its
// process group exists any more.
func noLeftovers(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no child pid to check (got %d)", pid)
	}
	deadline := time.Now().Add(bound)
	for {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		left := testutil.GroupMembers(pid)
		if errors.Is(err, os.ErrNotExist) && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: child %d (stat: %v), group members %v", pid, err, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
