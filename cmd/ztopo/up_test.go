package main

// End-to-end tests of `ztopo up` as users run it: the real binary, built
// here, in its own process, stopped by real signals.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
)

// Bounds of the end-to-end tests: generous, the machine is small and shared.
const (
	e2eGrace = 2 * time.Second
	e2eBound = 30 * time.Second
)

// buildZtopo builds the ztopo command into a temporary directory. The build
// cache makes every build after the first one a link.
func buildZtopo(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the ztopo binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build ztopo: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ztopo")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// e2eDir is a short private directory (ipc paths must stay under 107
// bytes) with the runtime directory inside.
type e2eDir struct {
	root    string
	runtime string // XDG_RUNTIME_DIR for the ztopo processes
}

func newE2EDir(t *testing.T) e2eDir {
	t.Helper()
	root, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	d := e2eDir{root: root, runtime: filepath.Join(root, "run")}
	if err := os.Mkdir(d.runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d e2eDir) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(d.root, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ipc is an ipc endpoint for name in the directory.
func (d e2eDir) ipc(name string) string {
	return "ipc://" + filepath.Join(d.root, name)
}

// topologyRuntime is the runtime directory `ztopo up` uses for name.
func (d e2eDir) topologyRuntime(name string) string {
	return filepath.Join(d.runtime, "ztopo", name)
}

// upProc is a running `ztopo up`.
type upProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{} // closed when the process was waited for
	err  error         // Wait's result, once done

	mu    sync.Mutex
	lines []string
	grew  chan struct{} // closed and replaced when lines grows
}

func startUp(t *testing.T, bin string, d e2eDir, args ...string) *upProc {
	t.Helper()
	return startUpIn(t, nil, bin, d, args...)
}

// startUpIn is startUp under a prefix command: ["ip", "netns", "exec",
// NS] runs it in a network namespace (ip execs it: the process is ztopo).
func startUpIn(t *testing.T, prefix []string, bin string, d e2eDir, args ...string) *upProc {
	t.Helper()
	argv := append(append(append([]string(nil), prefix...), bin, "up"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = d.root
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+d.runtime)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := &upProc{t: t, cmd: cmd, done: make(chan struct{}), grew: make(chan struct{})}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			u.mu.Lock()
			u.lines = append(u.lines, sc.Text())
			close(u.grew)
			u.grew = make(chan struct{})
			u.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-scanned // Wait closes the pipe: read everything first
		u.err = cmd.Wait()
		close(u.done)
	}()
	t.Cleanup(func() {
		select {
		case <-u.done:
		default:
			cmd.Process.Kill()
			<-u.done
		}
		if t.Failed() {
			t.Logf("ztopo up log:\n%s", u.log())
		}
	})
	return u
}

func (u *upProc) log() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.lines, "\n")
}

// waitLog waits until a line of the log matches re and returns its
// submatches; it fails the test when the process ends or the bound passes
// first.
func (u *upProc) waitLog(re *regexp.Regexp) []string {
	u.t.Helper()
	deadline := time.NewTimer(e2eBound)
	defer deadline.Stop()
	seen := 0
	for {
		u.mu.Lock()
		for ; seen < len(u.lines); seen++ {
			if m := re.FindStringSubmatch(u.lines[seen]); m != nil {
				u.mu.Unlock()
				return m
			}
		}
		grew := u.grew
		u.mu.Unlock()
		select {
		case <-grew:
		case <-u.done:
			// The last lines may have come with the exit.
			u.mu.Lock()
			n := len(u.lines)
			u.mu.Unlock()
			if seen == n {
				u.t.Fatalf("ztopo up exited (%v) before logging %q", u.err, re)
			}
		case <-deadline.C:
			u.t.Fatalf("ztopo up did not log %q within %v", re, e2eBound)
		}
	}
}

// wait waits for the process to end, at most bound.
func (u *upProc) wait(bound time.Duration) {
	u.t.Helper()
	select {
	case <-u.done:
	case <-time.After(bound):
		u.t.Fatalf("ztopo up still running %v after it was stopped", bound)
	}
}

// exitCode waits for the process to end, at most bound, and returns its
// exit status.
func (u *upProc) exitCode(bound time.Duration) int {
	u.t.Helper()
	u.wait(bound)
	var ee *exec.ExitError
	switch {
	case u.err == nil:
		return 0
	case errors.As(u.err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	u.t.Fatalf("ztopo up: %v", u.err)
	return -1
}

func (u *upProc) signal(sig os.Signal) {
	u.t.Helper()
	if err := u.cmd.Process.Signal(sig); err != nil {
		u.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitStatus asks the control socket until its answer satisfies ok; it
// fails the test when up exits or the bound passes first.
func (u *upProc) waitStatus(runtimeDir string, ok func(control.StatusReply) bool) control.StatusReply {
	t := u.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eBound)
	defer cancel()
	var last error
	for {
		var st control.StatusReply
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := control.Call(cctx, control.Endpoint(runtimeDir), control.VerbStatus, &st)
		ccancel()
		if err == nil && ok(st) {
			return st
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("status not there yet: %+v", st)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for the topology's status: %v", last)
		case <-u.done:
			t.Fatalf("ztopo up exited (%v) while waiting for its status: %v", u.err, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allRunning(st control.StatusReply) bool {
	for _, n := range st.Nodes {
		if n.State != "running" {
			return false
		}
	}
	return len(st.Nodes) > 0
}

func TestUpStopsCleanlyOnSIGINT(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	file := d.write(t, "react.yaml", fmt.Sprintf(`version: 1
name: e2esigint
nodes:
  fwd:
    handler: forward
    sockets:
      in: {type: PULL, bind: ipc://%s/in.sock}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
  echo:
    handler: echo
    sockets:
      rep: {type: REP, bind: ipc://%s/echo.sock}
`, d.root, d.root))
	up := startUp(t, bin, d, "--grace", e2eGrace.String(), file)
	rt := d.topologyRuntime("e2esigint")
	st := up.waitStatus(rt, allRunning)
	if got, want := len(st.Nodes), 3; got != want {
		t.Fatalf("nodes: got %d, want %d", got, want)
	}
	if st.PID != up.cmd.Process.Pid {
		t.Errorf("status pid: got %d, want %d", st.PID, up.cmd.Process.Pid)
	}

	up.signal(syscall.SIGINT)
	if code := up.exitCode(e2eGrace + e2eBound); code != 0 {
		t.Fatalf("exit status after SIGINT: got %d, want 0", code)
	}
	log := up.log()
	for _, want := range []string{`stopping topology: reason="signal interrupt" grace=2s`, `topology stopped: name=e2esigint`} {
		if !strings.Contains(log, want) {
			t.Errorf("log has no %q", want)
		}
	}
	if _, err := os.Stat(rt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime directory %s after exit: got %v, want it removed", rt, err)
	}
}

// TestUpSecondSignalExitsAtOnce stops a topology whose drain cannot end
// (one message circling between two nodes, copied to a sink each round,
// keeps the counters moving for the whole grace), then signals again: up
// exits at once, with 1.
func TestUpSecondSignalExitsAtOnce(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	a := d.ipc("a.sock")
	file := d.write(t, "loop.yaml", fmt.Sprintf(`version: 1
name: e2eloop
nodes:
  a:
    handler: upper
    sockets:
      in: {type: PULL, bind: %s}
      out: {type: PUSH, connect: b.in}
      tap: {type: PUSH, connect: sink.in}
  b:
    handler: upper
    sockets:
      in: {type: PULL, bind: ipc://%s/b.sock}
      out: {type: PUSH, connect: a.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`, a, d.root))
	const grace = 5 * time.Minute // never waited for
	up := startUp(t, bin, d, "--no-watch", "--grace", grace.String(), file)
	up.waitStatus(d.topologyRuntime("e2eloop"), allRunning)
	sendPush(t, a, 1, 8)

	up.signal(syscall.SIGINT)
	up.waitLog(regexp.MustCompile(`stopping topology: reason="signal interrupt" grace=5m0s`))
	// Later than a duplicate delivery of the first signal would come.
	time.Sleep(2 * dupSignal)
	up.signal(syscall.SIGINT)
	if code := up.exitCode(e2eBound); code != 1 {
		t.Fatalf("exit status after a second SIGINT: got %d, want 1", code)
	}
	if log := up.log(); !strings.Contains(log, "second signal, exiting at once: signal=interrupt") {
		t.Errorf("log has no line about the second signal")
	}
}

// TestUpSIGKILLLeavesNoChild kills `ztopo up` running process nodes with
// SIGKILL: their processes must go too, the port they bound must be free
// right after, and a new `ztopo up` of the same topology must start over
// the stale runtime directory.
func TestUpSIGKILLLeavesNoChild(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	ep := zsocktest.TCP(t)
	file := d.write(t, "proc.yaml", fmt.Sprintf(`version: 1
name: e2ekill
nodes:
  echo:
    run: process
    handler: echo
    sockets:
      rep: {type: REP, bind: %s}
  fwd:
    run: process
    handler: forward
    sockets:
      in: {type: PULL, bind: ipc://%s/in.sock}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`, ep, d.root))
	rt := d.topologyRuntime("e2ekill")

	up := startUp(t, bin, d, "--grace", e2eGrace.String(), file)
	st := up.waitStatus(rt, allRunning)
	want := map[int]bool{}
	for _, n := range st.Nodes {
		if n.Run == "process" {
			if n.PID <= 0 {
				t.Fatalf("process node %s has pid %d", n.Name, n.PID)
			}
			want[n.PID] = true
		}
	}
	if len(want) != 2 {
		t.Fatalf("process node pids: got %v, want 2", want)
	}
	kids := descendants(up.cmd.Process.Pid)
	for pid := range want {
		if _, ok := kids[pid]; !ok {
			t.Fatalf("process node pid %d is not a descendant of ztopo up (%v)", pid, kids)
		}
	}

	up.signal(syscall.SIGKILL)
	up.wait(e2eBound)
	deadline := time.Now().Add(e2eBound)
	for {
		alive := aliveOf(kids)
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still alive %v after ztopo up was killed: %v", e2eBound, alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Checked once, at once: the process that bound it is gone.
	l, err := net.Listen("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatalf("port of the killed process node: %v", err)
	}
	l.Close()

	// The runtime directory stayed (nobody could remove it), with the
	// control socket of a dead process: a new up takes it over.
	up2 := startUp(t, bin, d, "--grace", e2eGrace.String(), file)
	st = up2.waitStatus(rt, allRunning)
	if st.PID != up2.cmd.Process.Pid {
		t.Fatalf("status pid: got %d, want the new up's %d", st.PID, up2.cmd.Process.Pid)
	}
	up2.signal(syscall.SIGTERM)
	if code := up2.exitCode(e2eGrace + e2eBound); code != 0 {
		t.Fatalf("exit status after SIGTERM: got %d, want 0", code)
	}
}

// TestUpMetrics scrapes --metrics of a running up after a known traffic.
func TestUpMetrics(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	in := d.ipc("in.sock")
	file := d.write(t, "metrics.yaml", fmt.Sprintf(`version: 1
name: e2emetrics
nodes:
  fwd:
    handler: forward
    sockets:
      in: {type: PULL, bind: %s}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`, in))
	up, base := startUpMetrics(t, bin, d, file)
	url := base + "/metrics"
	rt := d.topologyRuntime("e2emetrics")
	up.waitStatus(rt, allRunning)

	const n, size = 500, 10
	sendPush(t, in, n, size)

	// One reload through the control socket: nothing changed, it counts as
	// applied.
	ctx, cancel := context.WithTimeout(context.Background(), e2eBound)
	defer cancel()
	if err := control.Call(ctx, control.Endpoint(rt), control.VerbReload, nil); err != nil {
		t.Fatalf("reload: %v", err)
	}

	want := []string{
		fmt.Sprintf(`ztopo_socket_messages_total{direction="in",node="fwd",socket="in"} %d`, n),
		fmt.Sprintf(`ztopo_socket_messages_total{direction="out",node="fwd",socket="out"} %d`, n),
		fmt.Sprintf(`ztopo_socket_bytes_total{direction="in",node="fwd",socket="in"} %d`, n*size),
		fmt.Sprintf(`ztopo_socket_bytes_total{direction="out",node="fwd",socket="out"} %d`, n*size),
		fmt.Sprintf(`ztopo_socket_messages_total{direction="in",node="sink",socket="in"} %d`, n),
		fmt.Sprintf(`ztopo_socket_bytes_total{direction="in",node="sink",socket="in"} %d`, n*size),
		`ztopo_socket_messages_total{direction="out",node="sink",socket="in"} 0`,
		`ztopo_socket_send_errors_total{node="fwd",socket="out"} 0`,
		`ztopo_node_state{node="fwd",state="running"} 1`,
		`ztopo_node_state{node="sink",state="running"} 1`,
		`ztopo_node_state{node="sink",state="failed"} 0`,
		`ztopo_node_restarts_total{node="fwd"} 0`,
		`ztopo_reloads_total{result="applied"} 1`,
		`ztopo_reloads_total{result="rejected"} 0`,
		`ztopo_reloads_total{result="failed"} 0`,
	}
	// Counters follow the traffic with a lag (the messages flow, counters
	// kept outside a node's loop are read periodically): scrape until every
	// figure is there, or the bound passes.
	var body string
	var missing []string
	for {
		body = scrape(t, ctx, url)
		missing = missing[:0]
		for _, line := range want {
			if !hasMetricLine(body, line) {
				missing = append(missing, line)
			}
		}
		if len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %v, the scrape has none of these lines:\n%s\nlast scrape:\n%s",
				e2eBound, strings.Join(missing, "\n"), body)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Errorf("scrape has no go_goroutines:\n%s", body)
	}

	up.signal(syscall.SIGTERM)
	if code := up.exitCode(e2eGrace + e2eBound); code != 0 {
		t.Fatalf("exit status after SIGTERM: got %d, want 0", code)
	}
}

// peerSocket is a socket of type typ in a ZeroMQ context of its own, for a
// peer played by the test; done closes both, waiting out the socket's
// linger.
func peerSocket(t *testing.T, typ zmq4.Type) (s *zmq4.Socket, done func()) {
	t.Helper()
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	s, err = zctx.NewSocket(typ)
	if err != nil {
		zctx.Term()
		t.Fatal(err)
	}
	return s, func() {
		s.Close()
		zctx.Term()
	}
}

// sendPush sends n messages of size bytes to endpoint from a PUSH socket
// and waits (bounded by its linger) until they are handed to the peer.
func sendPush(t *testing.T, endpoint string, n, size int) {
	t.Helper()
	s, done := peerSocket(t, zmq4.PUSH)
	defer done()
	if err := s.SetLinger(e2eBound); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSndtimeo(e2eBound); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), size)
	for i := 0; i < n; i++ {
		if _, err := s.SendBytes(msg, 0); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// scrape GETs url, which must answer 200, and returns the body.
func scrape(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	code, body := httpGet(t, ctx, url)
	if code != http.StatusOK {
		t.Fatalf("scrape: got status %d, want 200:\n%s", code, body)
	}
	return body
}

// startUpMetrics starts up on file, not watching it, with --metrics on a
// free loopback port, and returns it with the address of that server
// (http://127.0.0.1:PORT) once up has logged it.
func startUpMetrics(t *testing.T, bin string, d e2eDir, file string) (*upProc, string) {
	t.Helper()
	up := startUp(t, bin, d, "--no-watch", "--grace", e2eGrace.String(), "--metrics", "127.0.0.1:0", file)
	m := up.waitLog(regexp.MustCompile(`serving metrics: url=(http://127\.0\.0\.1:\d+)/metrics`))
	return up, m[1]
}

// httpGet GETs url and returns the status code and the body.
func httpGet(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func hasMetricLine(body, line string) bool {
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// descendants returns every process below pid, by pid.
func descendants(pid int) map[int]testutil.Stat {
	all := map[int]testutil.Stat{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := testutil.ReadStat(p); ok {
			all[p] = st
		}
	}
	out := map[int]testutil.Stat{}
	frontier := []int{pid}
	for len(frontier) > 0 {
		parent := frontier[0]
		frontier = frontier[1:]
		for p, st := range all {
			if st.Ppid == parent {
				if _, seen := out[p]; !seen {
					out[p] = st
					frontier = append(frontier, p)
				}
			}
		}
	}
	return out
}

// aliveOf returns the processes of procs that still run: same pid, same
// start time, not a zombie (a zombie has released its ports and files;
// whether it is reaped depends on who adopted it).
func aliveOf(procs map[int]testutil.Stat) []int {
	var alive []int
	for pid, was := range procs {
		st, ok := testutil.ReadStat(pid)
		if ok && st.Start == was.Start && st.State != 'Z' && st.State != 'X' {
			alive = append(alive, pid)
		}
	}
	return alive
}
