package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"

	"github.com/ztopo/ztopo/internal/testutil"
)

const (
	helperEnv   = "ZTOPO_CONTROL_HELPER"
	endpointEnv = "ZTOPO_CONTROL_ENDPOINT"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "serve" {
		// A control server in another process, for the tests that kill it.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		zctx, _ := zmq4.NewContext()
		err := Serve(ctx, zctx, os.Getenv(endpointEnv), &fakeHandler{name: "demo"}, nil)
		zctx.Term()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeHandler counts calls; reloadGate, when set, holds Reload until it is
// closed.
type fakeHandler struct {
	name       string
	reloads    atomic.Int32
	downs      atomic.Int32
	reloadErr  error
	reloadGate chan struct{}
	onDown     func()
	panicking  bool
}

func (h *fakeHandler) Name() string { return h.name }

func (h *fakeHandler) Status() StatusReply {
	if h.panicking {
		panic("status exploded")
	}
	return StatusReply{Name: h.name, Nodes: []InstanceStatus{{Name: "sink", State: "running"}, {Name: "worker.0", State: "restarting"}}}
}

func (h *fakeHandler) Reload() (*ReloadReply, error) {
	h.reloads.Add(1)
	if h.reloadGate != nil {
		<-h.reloadGate
	}
	res := ReloadApplied
	if h.reloadErr != nil {
		res = ReloadRejected
	}
	return &ReloadReply{Result: res, File: "topology.yaml", Plan: &Plan{Restart: []string{"worker.0"}}}, h.reloadErr
}

func (h *fakeHandler) Down() error {
	h.downs.Add(1)
	if h.onDown != nil {
		h.onDown()
	}
	return nil
}

// noName is a Handler without a Name method.
type noName struct{}

func (noName) Status() StatusReply           { return StatusReply{} }
func (noName) Reload() (*ReloadReply, error) { return nil, nil }
func (noName) Down() error                   { return nil }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runtimeDir is short: ipc paths must fit in 107 bytes.
func runtimeDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type server struct {
	endpoint string
	cancel   context.CancelFunc
	done     chan error
}

// serve runs Serve in its own goroutine (which owns the socket) until the
// test ends, and waits until it answers.
func serve(ctx context.Context, t *testing.T, endpoint string, h Handler) *server {
	t.Helper()
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &server{endpoint: endpoint, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := Serve(sctx, zctx, endpoint, h, hclog.NewNullLogger())
		zctx.Term()
		s.done <- err
	}()
	t.Cleanup(func() { s.stop(t) })
	waitServing(ctx, t, endpoint, s.done)
	return s
}

// stop cancels the server and returns Serve's error.
func (s *server) stop(t *testing.T) error {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if !ok {
			return nil
		}
		close(s.done)
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after cancel")
		return nil
	}
}

// waitServing retries ping until the server answers: a bind has no event
// to wait for from outside.
func waitServing(ctx context.Context, t *testing.T, endpoint string, done <-chan error) {
	t.Helper()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := Call(cctx, endpoint, VerbPing, nil)
		cancel()
		if err == nil {
			return
		}
		select {
		case serr := <-done:
			t.Fatalf("Serve returned %v before answering", serr)
		case <-ctx.Done():
			t.Fatalf("server never answered: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestEndpoint(t *testing.T) {
	if got, want := Endpoint("/run/user/1000/ztopo/pipeline"), "ipc:///run/user/1000/ztopo/pipeline/control.sock"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestVerbs(t *testing.T) {
	ctx := testCtx(t)
	h := &fakeHandler{name: "demo"}
	s := serve(ctx, t, Endpoint(runtimeDir(t)), h)

	for _, verb := range []string{VerbPs, VerbStatus} {
		var st StatusReply
		if err := Call(ctx, s.endpoint, verb, &st); err != nil {
			t.Fatalf("%s: %v", verb, err)
		}
		var got []string
		for _, n := range st.Nodes {
			got = append(got, n.Name+" "+n.State)
		}
		if st.Name != "demo" || strings.Join(got, ", ") != "sink running, worker.0 restarting" {
			t.Errorf("%s: got %s %v, want demo with sink running, worker.0 restarting", verb, st.Name, got)
		}
	}
	if st, err := Status(ctx, s.endpoint); err != nil || len(st.Nodes) != 2 {
		t.Errorf("Status: got %+v, %v; want 2 nodes", st, err)
	}

	rel, err := Reload(ctx, s.endpoint)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if rel == nil || rel.Result != ReloadApplied || strings.Join(rel.Plan.Restart, ",") != "worker.0" || h.reloads.Load() != 1 {
		t.Errorf("reload: got %+v after %d calls, want applied, restart worker.0, 1 call", rel, h.reloads.Load())
	}

	ping, err := Ping(ctx, s.endpoint)
	if err != nil || ping.Pid != os.Getpid() || ping.Name != "demo" {
		t.Errorf("ping: got %+v, %v; want pid %d, name demo", ping, err, os.Getpid())
	}

	err = Call(ctx, s.endpoint, "frobnicate", nil)
	if want := `unknown verb "frobnicate" (known: ps, status, reload, down, logs, restart, tap, tap-read, untap, ping)`; err == nil || err.Error() != want {
		t.Errorf("unknown verb: got %v, want %q", err, want)
	}

	if err := Call(ctx, s.endpoint, VerbDown, nil); err != nil || h.downs.Load() != 1 {
		t.Errorf("down: got %v after %d calls, want nil after 1", err, h.downs.Load())
	}
}

func TestReloadError(t *testing.T) {
	ctx := testCtx(t)
	h := &fakeHandler{name: "demo", reloadErr: errors.New("topology.yaml:3:5: unknown node \"sinc\"")}
	s := serve(ctx, t, Endpoint(runtimeDir(t)), h)
	rel, err := Reload(ctx, s.endpoint)
	if err == nil || err.Error() != `topology.yaml:3:5: unknown node "sinc"` {
		t.Fatalf("got %v, want the handler's error", err)
	}
	// The result travels with the error.
	if rel == nil || rel.Result != ReloadRejected || strings.Join(rel.Plan.Restart, ",") != "worker.0" {
		t.Errorf("result with the error: got %+v, want rejected, restart worker.0", rel)
	}
}

func TestHandlerPanicIsAnError(t *testing.T) {
	ctx := testCtx(t)
	h := &fakeHandler{name: "demo", panicking: true}
	s := serve(ctx, t, Endpoint(runtimeDir(t)), h)
	err := Call(ctx, s.endpoint, VerbPs, nil)
	if err == nil || err.Error() != "internal error: status exploded" {
		t.Fatalf("got %v, want internal error: status exploded", err)
	}
	// The server goes on.
	if err := Call(ctx, s.endpoint, VerbReload, nil); err != nil {
		t.Errorf("after a panic: %v", err)
	}
}

func TestDownStopsServerAfterReplying(t *testing.T) {
	ctx := testCtx(t)
	dir := runtimeDir(t)
	h := &fakeHandler{name: "demo"}
	var s *server
	h.onDown = func() { s.cancel() } // the topology stops at once
	s = serve(ctx, t, Endpoint(dir), h)
	if err := Call(ctx, s.endpoint, VerbDown, nil); err != nil {
		t.Fatalf("down: got %v, want the reply before the stop", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("Serve: got %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: got %v, want it removed", err)
	}
	err := Call(ctx, s.endpoint, VerbPs, nil)
	if want := "no topology running at " + s.endpoint; err == nil || err.Error() != want || !errors.Is(err, ErrNotRunning) {
		t.Errorf("after stop: got %v, want %q", err, want)
	}
}

func TestSocketFileMode(t *testing.T) {
	ctx := testCtx(t)
	dir := runtimeDir(t)
	serve(ctx, t, Endpoint(dir), &fakeHandler{name: "demo"})
	fi, err := os.Stat(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode: got %v, want a socket with 0600", fi.Mode())
	}
}

func TestMissingEndpoint(t *testing.T) {
	ctx := testCtx(t)
	endpoint := Endpoint(filepath.Join(runtimeDir(t), "nothing"))
	err := Call(ctx, endpoint, VerbPs, nil)
	if want := "no topology running at " + endpoint; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("errors.Is(%v, ErrNotRunning) = false", err)
	}
}

// staleSocket leaves a socket file nobody listens on, as a killed process
// does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}

func TestStaleSocketFileIsReplaced(t *testing.T) {
	ctx := testCtx(t)
	dir := runtimeDir(t)
	endpoint := Endpoint(dir)
	staleSocket(t, filepath.Join(dir, SocketName))

	// Refused at once, not after a timeout.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := Call(cctx, endpoint, VerbPs, nil)
	if !errors.Is(err, ErrNotRunning) || cctx.Err() != nil {
		t.Fatalf("stale socket: got %v (context: %v), want ErrNotRunning before the deadline", err, cctx.Err())
	}

	s := serve(ctx, t, endpoint, &fakeHandler{name: "demo"})
	var st StatusReply
	if err := Call(ctx, s.endpoint, VerbPs, &st); err != nil || len(st.Nodes) != 2 {
		t.Fatalf("ps: got %v, %v; want 2 nodes", st, err)
	}
}

func TestKilledServerIsReplaced(t *testing.T) {
	ctx := testCtx(t)
	dir := runtimeDir(t)
	endpoint := Endpoint(dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=serve", endpointEnv+"="+endpoint)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	waitServing(ctx, t, endpoint, exited)

	// While it runs, a second server is refused, naming its pid.
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	err = Serve(ctx, zctx, endpoint, &fakeHandler{name: "demo"}, nil)
	if want := fmt.Sprintf("topology demo is already running (pid %d)", cmd.Process.Pid); err == nil || err.Error() != want {
		t.Fatalf("second Serve: got %v, want %q", err, want)
	}

	// Killed without any chance to clean up: its socket file stays.
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	exited <- nil // for the cleanup
	if _, err := os.Stat(filepath.Join(dir, SocketName)); err != nil {
		t.Fatalf("socket file of the killed server: %v, want it left behind", err)
	}
	if err := Call(ctx, endpoint, VerbPs, nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after kill: got %v, want ErrNotRunning", err)
	}
	s := serve(ctx, t, endpoint, &fakeHandler{name: "demo"})
	if err := Call(ctx, s.endpoint, VerbPs, nil); err != nil {
		t.Fatalf("ps on the new server: %v", err)
	}
}

func TestSecondServerRefused(t *testing.T) {
	ctx := testCtx(t)
	dir := runtimeDir(t)
	endpoint := Endpoint(dir)
	first := &fakeHandler{name: "demo"}
	serve(ctx, t, endpoint, first)

	cases := []struct {
		name string
		h    Handler
		want string
	}{
		{"named", &fakeHandler{name: "demo"}, fmt.Sprintf("topology demo is already running (pid %d)", os.Getpid())},
		{"unnamed", noName{}, fmt.Sprintf("a topology is already running at %s (pid %d)", endpoint, os.Getpid())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			zctx, err := zmq4.NewContext()
			if err != nil {
				t.Fatal(err)
			}
			defer zctx.Term()
			err = Serve(ctx, zctx, endpoint, tc.h, nil)
			var running *RunningError
			if !errors.As(err, &running) || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// The first server was not disturbed: it still has its socket.
	if err := Call(ctx, endpoint, VerbDown, nil); err != nil || first.downs.Load() != 1 {
		t.Errorf("first server after the refusals: got %v, %d downs; want it answering", err, first.downs.Load())
	}
}

func TestCallTimeout(t *testing.T) {
	ctx := testCtx(t)
	gate := make(chan struct{})
	h := &fakeHandler{name: "demo", reloadGate: gate}
	s := serve(ctx, t, Endpoint(runtimeDir(t)), h)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := Call(cctx, s.endpoint, VerbReload, nil)
	want := "no answer from the topology at " + s.endpoint + ": context deadline exceeded"
	if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want %q", err, want)
	}
	release()
	// The late reply went to a closed socket; the server serves again.
	if err := Call(ctx, s.endpoint, VerbPs, nil); err != nil {
		t.Fatalf("after the timeout: %v", err)
	}
	if got := h.reloads.Load(); got != 1 {
		t.Errorf("reloads: got %d, want 1", got)
	}
}

func TestEnsureRuntimeDir(t *testing.T) {
	root := runtimeDir(t)

	fresh := filepath.Join(root, "a", "b", "pipeline")
	if err := EnsureRuntimeDir(fresh); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("fresh: got %v, %v; want mode 0700", fi.Mode(), err)
	}
	if err := EnsureRuntimeDir(fresh); err != nil {
		t.Fatalf("existing: %v", err)
	}

	open := filepath.Join(root, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o755)
	link := filepath.Join(root, "link")
	os.Symlink(fresh, link)
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o600)

	cases := []struct {
		name, dir, want string
	}{
		{"group and world", open, "runtime directory " + open + " is not safe: it is accessible by group or others (mode 0755); it must be 0700"},
		{"symlink", link, "runtime directory " + link + " is not safe: it is a symbolic link"},
		{"file", file, "runtime directory: mkdir " + file + ": not a directory"},
	}
	if os.Getuid() == 0 {
		other := filepath.Join(root, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		cases = append(cases, struct{ name, dir, want string }{
			"other owner", other, "runtime directory " + other + " is not safe: it is owned by uid 65534, not by us (uid 0)",
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := EnsureRuntimeDir(tc.dir)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEncodeReply(t *testing.T) {
	cases := []struct {
		name   string
		result any
		err    error
		want   string
	}{
		{"object", map[string]int{"n": 1}, nil, `{"n":1,"ok":true}`},
		{"nil", nil, nil, `{"ok":true}`},
		{"array", []int{1, 2}, nil, `{"ok":true,"result":[1,2]}`},
		{"error", nil, errors.New("boom"), `{"error":"boom","ok":false}`},
		{"fields cannot fake ok", map[string]any{"ok": false, "error": "x"}, nil, `{"ok":true}`},
		{"unencodable", func() {}, nil, `{"error":"encode reply: json: unsupported type: func()","ok":false}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(encodeReply(tc.result, tc.err)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// A request larger than MaxRequest is refused: libzmq drops the client's
// connection without reading it into memory, and the server goes on.
func TestOversizedRequestRefused(t *testing.T) {
	ctx := testCtx(t)
	s := serve(ctx, t, Endpoint(runtimeDir(t)), &fakeHandler{name: "demo"})
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	req, err := zctx.NewSocket(zmq4.REQ)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	_ = req.SetLinger(0)
	mon, stop := testutil.DisconnectMonitor(t, zctx, req)
	defer stop()
	if err := req.Connect(s.endpoint); err != nil {
		t.Fatal(err)
	}
	big := append([]byte(`{"verb":"ps","args":"`), bytes.Repeat([]byte("x"), 8*MaxRequest)...)
	big = append(big, `"}`...)
	if _, err := req.SendBytes(big, 0); err != nil {
		t.Fatal(err)
	}
	p := zmq4.NewPoller()
	p.Add(mon, zmq4.POLLIN)
	p.Add(req, zmq4.POLLIN)
	polled, err := p.Poll(20 * time.Second)
	if err != nil || len(polled) == 0 {
		t.Fatalf("neither a reply nor a disconnect (%v)", err)
	}
	if polled[0].Socket == req {
		reply, _ := req.RecvBytes(0)
		t.Fatalf("the oversized request was answered: %.200s", reply)
	}
	ev, _, _, err := mon.RecvEvent(0)
	if err != nil || ev != zmq4.EVENT_DISCONNECTED {
		t.Fatalf("got event %v, %v; want DISCONNECTED", ev, err)
	}
	var st StatusReply
	if err := Call(ctx, s.endpoint, VerbPs, &st); err != nil {
		t.Fatalf("ps after the refusal: %v", err)
	}
}
