package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	_ "github.com/ztopo/ztopo/runtime/handler/exechandler" // exec handlers, for plugins.yaml and process nodes
	_ "github.com/ztopo/ztopo/runtime/handler/pluginhost"  // plugin handlers, for plugins.yaml
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// ztopoBin is the ztopo executable built for this package's tests: process
// nodes re-execute it as `ztopo _node` (the test binary cannot play that
// part: run with `_node` it would run the tests). ztopoErr says why there
// is none.
var ztopoBin, ztopoErr = "", error(nil)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ztbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "ztopo")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ztopo/ztopo/cmd/ztopo").CombinedOutput()
	if err != nil {
		ztopoErr = fmt.Errorf("go build ./cmd/ztopo: %v\n%s", err, out)
	} else {
		ztopoBin = bin
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needZtopo returns the ztopo executable, or fails the test.
func needZtopo(t testing.TB) string {
	t.Helper()
	if ztopoBin == "" {
		t.Fatalf("no ztopo executable for process nodes: %v", ztopoErr)
	}
	return ztopoBin
}

// killRestarts SIGKILLs pid, the child of process node name, and waits
// until the node runs again in another child.
func killRestarts(t *testing.T, e *Engine, name string, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rlWaitFor(t, name+" to run again", func() bool {
		st := statusOf(e, name)
		return st.State == StateRunning && st.PID > 0 && st.PID != pid
	})
}

// children returns the processes whose parent is pid, with their command
// lines.
func children(pid int) map[int]string {
	out := map[int]string{}
	for _, p := range testutil.Procs(func(p testutil.Proc) bool { return p.Ppid == pid }) {
		out[p.Pid] = p.Cmdline
	}
	return out
}

// pirate is a running script of testdata/py (pirate.py: Lazy Pirate REQ
// clients, and the peers of reliable_test.go), its output lines on a channel.
type pirate struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

// startPirate starts clients Lazy Pirate clients of ep and waits until
// they are ready: each has had its first reply and waits for the cue to
// send after more requests.
func startPirate(t *testing.T, ep string, clients, after int) *pirate {
	t.Helper()
	p := startLines(t, 2*bound, "pirate.py", ep, fmt.Sprint(clients), fmt.Sprint(after))
	if got := p.line(t); got != "ready" {
		t.Fatalf("pyzmq clients: %s", got)
	}
	return p
}

// startLines runs a script of testdata/py for at most life, its output
// lines on a channel, its stdin open until the test ends.
func startLines(t *testing.T, life time.Duration, script string, args ...string) *pirate {
	t.Helper()
	testutil.NeedPyzmq(t)
	ctx, cancel := context.WithTimeout(context.Background(), life)
	p := &pirate{
		cmd:   exec.CommandContext(ctx, python, append([]string{"testdata/py/" + script}, args...)...),
		lines: make(chan string, 1000),
		done:  make(chan error, 1),
	}
	p.cmd.Stderr = os.Stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
		cancel()
	}()
	t.Cleanup(func() {
		cancel()
		p.stdin.Close()
		<-p.done
	})
	return p
}

// line waits for the script's next output line.
func (p *pirate) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("the pyzmq clients ended without a word")
		}
		return l
	case <-time.After(2 * bound):
		t.Fatal("no word from the pyzmq clients")
		return ""
	}
}

// TestProcessNodeKilledRestartsAndServesAgain SIGKILLs the child of a
// process node that pyzmq REQ clients are using: it is restarted with a new
// pid and serves them again, while the other nodes, a process node among
// them, keep their pids and start times.
func TestProcessNodeKilledRestartsAndServesAgain(t *testing.T) {
	self := needZtopo(t)
	ep := zsocktest.TCP(t)
	topo := rlParse(t, rlDir(t), `version: 1
name: kill
nodes:
  srv:
    run: process
    handler: upper
    restart: {policy: on-failure, max_restarts: 3, within: 1m, backoff_min: 50ms, backoff_max: 200ms}
    sockets:
      rep: {type: REP, bind: `+ep+`}
  feeder:
    handler: generate
    config: {interval: 2ms, payload: tick}
    sockets:
      out: {type: PUSH, bind: auto}
  relay:
    run: process
    handler: forward
    sockets:
      in: {type: PULL, connect: feeder.out}
      out: {type: PUSH, connect: counter.in}
  counter:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`, nil)
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Self: self, Grace: 2 * time.Second})
	rlWaitFor(t, "every node to run", func() bool { return rlAllRunning(r.e) })

	const clients, after = 3, 20
	py := startPirate(t, ep, clients, after)
	before := map[string]InstanceStatus{}
	for _, st := range r.e.Status() {
		before[st.Name] = st
	}
	victim := before["srv"].PID
	if victim <= 0 || before["relay"].PID <= 0 {
		t.Fatalf("process node pids: srv %d, relay %d", victim, before["relay"].PID)
	}
	if before["feeder"].PID != 0 || before["counter"].PID != 0 {
		t.Fatalf("goroutine nodes with a pid: feeder %d, counter %d", before["feeder"].PID, before["counter"].PID)
	}
	killRestarts(t, r.e, "srv", victim)
	py.finish(t, clients, after)

	st := statusOf(r.e, "srv")
	if st.Restarts != 1 {
		t.Errorf("srv restarts: got %d, want 1", st.Restarts)
	}
	if !strings.Contains(st.Error, fmt.Sprintf("node srv: process %d exited: signal: killed", victim)) {
		t.Errorf("srv error: %q", st.Error)
	}
	for _, name := range []string{"feeder", "relay", "counter"} {
		now, was := statusOf(r.e, name), before[name]
		if now.PID != was.PID || !now.Started.Equal(was.Started) || now.Restarts != 0 || now.State != StateRunning {
			t.Errorf("%s: pid %d started %v restarts %d %s, want pid %d started %v, no restart, running",
				name, now.PID, now.Started, now.Restarts, now.State, was.PID, was.Started)
		}
	}
	// The survivor's counters come from its child: traffic went through.
	rlWaitFor(t, "relay counters", func() bool { return rlStat(r.e, "relay", "out").MsgsOut > 0 })
	r.mustStop(t)
	if !strings.Contains(logs.String(), "restarting node") {
		t.Error("no restart in the log")
	}
}

// TestStopLeavesNoChildProcess stops a topology with process nodes and a
// command that ignores SIGTERM: once Run returned, the test process has no
// child left.
func TestStopLeavesNoChildProcess(t *testing.T) {
	self := needZtopo(t)
	topo := rlParse(t, rlDir(t), testutil.ProcessWorkers("orphans", 2, "{interval: 2ms}", "", "", `  stubborn:
    command: [/bin/sh, -c, 'trap "" TERM; while :; do sleep 0.1; done']
`), nil)
	lg, _ := newLogger(t)
	// A short grace: the stubborn command waits it out before SIGKILL.
	r := rlStart(t, topo, Options{Logger: lg, Self: self, Grace: time.Second})
	rlWaitFor(t, "every node to run", func() bool { return rlAllRunning(r.e) })
	var pids []int
	for _, st := range r.e.Status() {
		if st.Run == spec.RunProcess {
			pids = append(pids, st.PID)
		}
	}
	kids := children(os.Getpid())
	for _, pid := range pids {
		if _, ok := kids[pid]; !ok {
			t.Fatalf("pid %d is not a child of the test process: %v", pid, kids)
		}
	}
	if len(pids) != 3 {
		t.Fatalf("process instances: got pids %v, want 3", pids)
	}
	r.mustStop(t)
	for _, st := range r.e.Status() {
		if st.State != StateStopped || st.PID != 0 {
			t.Errorf("%s: %s, pid %d; want stopped, no pid", st.Name, st.State, st.PID)
		}
	}
	deadline := time.Now().Add(bound)
	for {
		left := children(os.Getpid())
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children left %v after Run returned: %v", bound, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProcessNodeExecHandlerRunsInChild: a process node's exec handler is
// started by the node's child, never by the engine's process, and does its
// work there: the sink completes only at the end marker sed rewrote.
func TestProcessNodeExecHandlerRunsInChild(t *testing.T) {
	self := needZtopo(t)
	topo := rlParse(t, rlDir(t), `version: 1
name: execchild
nodes:
  source:
    handler: generate
    config: {count: 500, payload: hello, end: hello-end}
    sockets:
      out: {type: PUSH, bind: auto}
  tidy:
    run: process
    handler: {exec: [sed, -u, s/hello/bye/]}
    sockets:
      in: {type: PULL, connect: source.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {until: bye-end}
    sockets:
      in: {type: PULL, bind: auto}
`, nil)
	lg, logs := newLogger(t)
	e, err := New(topo, Options{Logger: lg, Self: self})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for pid, cmd := range children(os.Getpid()) {
		if strings.HasPrefix(cmd, "sed") {
			t.Fatalf("New started the exec handler in the engine's process: %d %s", pid, cmd)
		}
	}
	if in := e.insts["tidy"]; in.completes || in.first != nil {
		t.Errorf("tidy: completes %v, handler built %T; want reactive, none", in.completes, in.first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for running := true; running; {
		select {
		case err = <-done:
			running = false
		case <-time.After(10 * time.Millisecond):
			for pid, cmd := range children(os.Getpid()) {
				if strings.HasPrefix(cmd, "sed") {
					t.Errorf("sed runs as a child of the engine's process: %d %s", pid, cmd)
				}
			}
		}
	}
	if err != nil || ctx.Err() != nil {
		t.Fatalf("Run: %v (ctx: %v)", err, ctx.Err())
	}
	if got := statusOf(e, "sink").Sockets[0].MsgsIn; got != 501 {
		t.Errorf("sink received %d, want 501", got)
	}
	// Exact once the child has gone: its last report comes at its end.
	tidy := statusOf(e, "tidy")
	if len(tidy.Sockets) != 2 || tidy.Sockets[0].MsgsIn != 501 || tidy.Sockets[1].MsgsOut != 501 {
		t.Errorf("tidy counters: %+v, want 501 in, 501 out", tidy.Sockets)
	}
	if !strings.Contains(logs.String(), "received 500 messages in ") {
		t.Error("no summary line from the sink")
	}
}

// TestProcessNodeNeedsSelf: without the ztopo executable, a topology with a
// process node is refused at Run, by node; a command node needs none.
func TestProcessNodeNeedsSelf(t *testing.T) {
	n := builtinNode("relay", "forward", nil, sock("in", spec.PULL, list(zsocktest.IPC(t, "x")), nil))
	n.Run = spec.RunProcess
	e, err := New(&spec.Topology{Name: "t", Nodes: []*spec.Node{n}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	want := `node "relay": run: process needs the ztopo executable to re-execute (engine option Self)`
	if err := e.Run(ctx); err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}

	cmd := &spec.Node{Name: "true", Base: "true", Run: spec.RunProcess,
		Handler: spec.HandlerRef{Kind: spec.HandlerCommand, Argv: []string{"/bin/true"}}}
	e, err = runTopo(t, &spec.Topology{Name: "t", Nodes: []*spec.Node{cmd}}, Options{})
	if err != nil {
		t.Fatalf("command without Self: %v", err)
	}
	if st := statusOf(e, "true"); st.State != StateCompleted || st.Sockets != nil {
		t.Errorf("command: %s, sockets %v; want completed, none", st.State, st.Sockets)
	}
}

// TestProcessNodeHandlerChangeRestarts: a handler change on a process node
// cannot be a swap; SwapHandler refuses it and a reload restarts the node
// with its new handler.
func TestProcessNodeHandlerChangeRestarts(t *testing.T) {
	self := needZtopo(t)
	dir := rlDir(t)
	ep := zsocktest.TCP(t)
	file := func(h string) string {
		return `version: 1
name: swap
nodes:
  srv:
    run: process
    handler: ` + h + `
    sockets:
      rep: {type: REP, bind: ` + ep + `}
`
	}
	lg, _ := newLogger(t)
	r := rlStart(t, rlParse(t, dir, file("echo"), nil), Options{Logger: lg, Self: self})
	rlWaitFor(t, "srv to run", func() bool { return rlRunning2(r.e, "srv") })
	if got, err := rlRequest(t, ep, "hi"); err != nil || got != "hi" {
		t.Fatalf("echo: got %q, %v", got, err)
	}
	old := statusOf(r.e, "srv").PID

	err := r.e.SwapHandler("srv", spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "upper"}, nil)
	want := `node "srv": the handler runs in a child process and cannot be swapped in place; the node must restart`
	if err == nil || err.Error() != want {
		t.Fatalf("SwapHandler: got %v, want %s", err, want)
	}

	rep := rlMust(t, r.e, rlParse(t, dir, file("upper"), nil))
	// The plan says what happens: a process node restarts to change its
	// handler (spec.Diff), never a swap in place.
	if len(rep.Plan.Changed) != 1 || rep.Plan.Changed[0] != "srv" || len(rep.Plan.HandlerOnly) != 0 {
		t.Fatalf("plan: %+v, want a restart of srv", rep.Plan)
	}
	rlWaitFor(t, "srv to run again", func() bool { return rlRunning2(r.e, "srv") })
	if got, err := rlRequest(t, ep, "hi"); err != nil || got != "HI" {
		t.Fatalf("after reload: got %q, %v", got, err)
	}
	if pid := statusOf(r.e, "srv").PID; pid == old || pid <= 0 {
		t.Errorf("pid after the reload: %d (was %d)", pid, old)
	}
	r.mustStop(t)
}

// crashOnce is a count-like handler that fails once, at its nth message
// overall, by returning a fatal error or by panicking.
type crashOnce struct {
	seen  *atomic.Int64
	at    int64
	panic bool
}

func (c crashOnce) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	if c.seen.Add(1) == c.at {
		if c.panic {
			panic("crash test")
		}
		return nil, fmt.Errorf("crash test: %w", handler.ErrFatal)
	}
	return nil, nil
}

// TestInprocPeerReconnectsAfterSupervisedRestart: a sink bound on inproc
// fails and is restarted by its supervisor; the forward node connected to
// it is restarted once the sink runs again, since libzmq never reconnects
// an inproc peer, and the sink keeps receiving.
func TestInprocPeerReconnectsAfterSupervisedRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic bool
	}{{"fatal error", false}, {"panic", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var seen atomic.Int64
			const at = 50
			reg := handler.Builtins.Clone()
			reg.Register("crashonce", func(map[string]any, handler.Env) (any, error) {
				return crashOnce{seen: &seen, at: at, panic: tc.panic}, nil
			})
			restart := spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 3, Within: time.Minute,
				BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
			feedEP := zsocktest.TCP(t)
			feeder := builtinNode("feeder", "generate", map[string]any{"interval": time.Millisecond},
				sock("out", spec.PUSH, list(feedEP), nil))
			fwd := builtinNode("fwd", "forward", nil,
				sock("in", spec.PULL, nil, list(feedEP)), sock("out", spec.PUSH, nil, list("inproc://crashsink")))
			sink := builtinNode("sink", "crashonce", nil, sock("in", spec.PULL, list("inproc://crashsink"), nil))
			for _, n := range []*spec.Node{feeder, fwd, sink} {
				n.Restart = restart
			}
			lg, logs := newLogger(t)
			s := startEngine(t, &spec.Topology{Name: "t", Nodes: []*spec.Node{feeder, fwd, sink}},
				Options{Logger: lg, Registry: reg})
			testutil.WaitFor(t, "the sink to run again", func() bool {
				st := statusOf(s.e, "sink")
				return st.Restarts == 1 && st.State == StateRunning
			})
			// Well past the crash: delivery went on after the restart.
			testutil.WaitFor(t, "messages at the restarted sink", func() bool { return seen.Load() > at+200 })
			if st := statusOf(s.e, "fwd"); st.Restarts != 1 || st.State != StateRunning {
				t.Errorf("fwd: restarts %d, %s; want 1, running", st.Restarts, st.State)
			}
			if st := statusOf(s.e, "feeder"); st.Restarts != 0 {
				t.Errorf("feeder restarts: got %d, want 0 (it connects to nothing over inproc)", st.Restarts)
			}
			s.cancel()
			// fwd's restart drops what its queue held: reported, not silent.
			if err := s.wait(t, bound); err != nil && !isLossOn(err, "feeder.out -> fwd.in", "fwd.out -> sink.in") {
				t.Fatalf("Run: %v", err)
			}
			if want := "restarting node: node=fwd reason=\"it connects over inproc to sink, which restarted"; !strings.Contains(logs.String(), want) {
				t.Errorf("log has no %s", want)
			}
		})
	}
}

// TestInprocCycleRestartsEachOnce: x and y connect to each other over
// inproc. When x restarts after a failure, y restarts for it, and x is not
// restarted again for y: the chain ends. (x's own link to y is lost with
// y's restart; see the package doc.)
func TestInprocCycleRestartsEachOnce(t *testing.T) {
	var seen atomic.Int64
	reg := handler.Builtins.Clone()
	reg.Register("crashonce", func(map[string]any, handler.Env) (any, error) {
		return crashOnce{seen: &seen, at: 30}, nil
	})
	feedEP, outEP := zsocktest.TCP(t), zsocktest.TCP(t)
	restart := spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 3, Within: time.Minute,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
	// x crashes once; y forwards what it gets to the counter and to x (PUSH
	// round robin), so that both sides of the cycle are wired.
	x := builtinNode("x", "crashonce", nil,
		sock("in", spec.PULL, list("inproc://x"), list(feedEP)), sock("ping", spec.PUSH, nil, list("inproc://y")))
	y := builtinNode("y", "forward", nil,
		sock("in", spec.PULL, list("inproc://y"), nil), sock("out", spec.PUSH, nil, list("inproc://x", outEP)))
	feeder := builtinNode("feeder", "generate", map[string]any{"interval": time.Millisecond},
		sock("out", spec.PUSH, list(feedEP), nil))
	counter := builtinNode("counter", "count", nil, sock("in", spec.PULL, list(outEP), nil))
	nodes := []*spec.Node{x, y, feeder, counter}
	for _, n := range nodes {
		n.Restart = restart
	}
	lg, _ := newLogger(t)
	s := startEngine(t, &spec.Topology{Name: "t", Nodes: nodes}, Options{Logger: lg, Registry: reg})
	testutil.WaitFor(t, "x to run again", func() bool {
		st := statusOf(s.e, "x")
		return st.Restarts == 1 && st.State == StateRunning
	})
	testutil.WaitFor(t, "y to restart", func() bool {
		st := statusOf(s.e, "y")
		return st.Restarts == 1 && st.State == StateRunning
	})
	// Past the restarts, x keeps getting messages and nothing restarts again.
	testutil.WaitFor(t, "x to go on", func() bool { return seen.Load() > 300 })
	got := map[string]int{}
	for _, st := range s.e.Status() {
		got[st.Name] = st.Restarts
	}
	want := map[string]int{"x": 1, "y": 1, "feeder": 0, "counter": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restarts: got %v, want %v", got, want)
	}
	s.cancel()
	// The restarts drop what the restarted nodes' queues held: reported.
	if err := s.wait(t, bound); err != nil && !isLossOn(err, "-> counter.in,x.in", "-> y.in") {
		t.Fatalf("Run: %v", err)
	}
}

// isLossOn reports whether err is an engine Loss on edge groups that
// each mention one of edges, and on nothing else.
func isLossOn(err error, edges ...string) bool {
	var loss *Loss
	if !errors.As(err, &loss) || len(loss.Where) == 0 {
		return false
	}
	for _, w := range loss.Where {
		ok := false
		for _, e := range edges {
			ok = ok || strings.Contains(w, e)
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestCompletingProcessNodeLosesNothing: a process node that completes keeps
// its child (and sockets) until the topology stops, so its last messages
// still leave over ipc (libzmq loses them when the socket closes early), and
// the topology ends by itself.
func TestCompletingProcessNodeLosesNothing(t *testing.T) {
	self := needZtopo(t)
	topo := rlParse(t, rlDir(t), `version: 1
name: proccomplete
nodes:
  source:
    run: process
    handler: generate
    config: {count: 200000, size: 16}
    sockets:
      out: {type: PUSH, bind: auto}
  relay:
    handler: forward
    sockets:
      in: {type: PULL, connect: source.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: 200000}
    sockets:
      in: {type: PULL, bind: auto}
`, nil)
	lg, _ := newLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	e, err := New(topo, Options{Logger: lg, Self: self})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.Run(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("Run: %v (ctx: %v)", err, ctx.Err())
	}
	if got := statusOf(e, "sink").Sockets[0].MsgsIn; got != 200000 {
		t.Errorf("sink received %d, want 20000", got)
	}
	if st := statusOf(e, "source").State; st != StateCompleted {
		t.Errorf("source state %s, want %s", st, StateCompleted)
	}
}

// TestStopEndsSetsidGrandchild: a command whose shell puts a sleep in a
// session of its own (out of the process group ztopo signals) does not
// leave it running once the topology stopped.
func TestStopEndsSetsidGrandchild(t *testing.T) {
	dir := rlDir(t)
	topo := rlParse(t, dir, `version: 1
name: setsid-grandchild
nodes:
  spawner:
    command: [/bin/sh, -c, 'setsid sleep 1000 & echo $! > grandchild; while :; do sleep 0.1; done']
`, nil)
	lg, _ := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Grace: 2 * time.Second})
	gc := grandchildPid(t, filepath.Join(dir, "grandchild"))
	spawner := statusOf(r.e, "spawner").PID
	if st, ok := testutil.ReadStat(gc); !ok || st.Pgrp == spawner {
		t.Fatalf("grandchild %d: %+v; want it alive outside the spawner's group %d", gc, st, spawner)
	}
	r.mustStop(t)
	// Gone when Run returns, not eventually: nothing else would end it.
	if testutil.Alive(gc) {
		t.Fatalf("grandchild %d still runs after the stop", gc)
	}
}

// grandchildPid waits for a command to write its grandchild's pid to path
// and for the grandchild to have its own session,
// and makes sure the test never leaves that process behind.
func grandchildPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testutil.WaitFor(t, "the grandchild's pid", func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		// setsid made it the leader of a new session and group.
		st, ok := testutil.ReadStat(pid)
		return err == nil && pid > 0 && ok && st.Pgrp == pid
	})
	start, _ := testutil.ReadStat(pid)
	t.Cleanup(func() {
		if st, ok := testutil.ReadStat(pid); ok && st.Start == start.Start {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

// TestStalledProcessWorkerIsShown SIGSTOPs one of three process workers
// under traffic: its status turns stalled (the others stay running), the
// log says so once, and after SIGCONT it is running again, logged once.
func TestStalledProcessWorkerIsShown(t *testing.T) {
	self := needZtopo(t)
	topo := rlParse(t, rlDir(t), testutil.ProcessWorkers("stall", 3, "{interval: 2ms}", "", "", ""), nil)
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Self: self, Grace: 2 * time.Second})
	rlWaitFor(t, "every node to run", func() bool { return rlAllRunning(r.e) })
	rlWaitFor(t, "traffic through worker.1", func() bool { return rlStat(r.e, "worker.1", "out").MsgsOut > 0 })
	victim := statusOf(r.e, "worker.1").PID
	thaw := testutil.Freeze(t, victim)
	testutil.WaitFor(t, "worker.1 to show as stalled", func() bool { return statusOf(r.e, "worker.1").State == StateStalled })
	for _, name := range []string{"worker.0", "worker.2"} {
		if st := statusOf(r.e, name); st.State != StateRunning {
			t.Errorf("%s: %s, want running", name, st.State)
		}
	}
	thaw()
	testutil.WaitFor(t, "worker.1 to run again", func() bool { return statusOf(r.e, "worker.1").State == StateRunning })
	if st := statusOf(r.e, "worker.1"); st.PID != victim || st.Restarts != 0 {
		t.Errorf("worker.1: pid %d, restarts %d; want pid %d, no restart", st.PID, st.Restarts, victim)
	}
	r.mustStop(t)
	log := logs.String()
	if n := strings.Count(log, "node stalled: messages routed to it wait: node=worker.1 reason=\"the process is stopped (SIGSTOP or a debugger)\""); n != 1 {
		t.Errorf("stall logged %d times for worker.1, want 1", n)
	}
	if n := strings.Count(log, "node runs again after a stall: node=worker.1"); n != 1 {
		t.Errorf("recovery logged %d times for worker.1, want 1", n)
	}
	if n := strings.Count(log, "node stalled"); n != 1 {
		t.Errorf("stalls logged: %d, want 1", n)
	}
}

// TestCrashedWorkerLossEndsBatch SIGKILLs a process worker while its queue
// is full: the batch can no longer complete, and instead of waiting for
// ever the run ends with a Loss that counts exactly what the sink did not
// get, after one log line with the same count.
func TestCrashedWorkerLossEndsBatch(t *testing.T) {
	self := needZtopo(t)
	const n = 6000
	topo := rlParse(t, rlDir(t), testutil.ProcessWorkers("crashloss", 3, fmt.Sprintf("{count: %d}", n), "{delay: 1ms}", fmt.Sprintf("{expect: %d}", n), ""), nil)
	lg, logs := newLogger(t)
	s := startEngine(t, topo, Options{Logger: lg, Self: self, Grace: 2 * time.Second})
	// The ventilator is done in a blink and the workers drain their
	// queues at 1 ms a message; the first to connect may have got all of
	// them: the victim is one that has passed messages on.
	var name string
	var victim int
	testutil.WaitFor(t, "a worker passing messages on", func() bool {
		for _, w := range []string{"worker.0", "worker.1", "worker.2"} {
			if st := statusOf(s.e, w); st.PID > 0 && rlStat(s.e, w, "out").MsgsOut > 0 {
				name, victim = w, st.PID
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := s.wait(t, 2*time.Minute)
	var loss *Loss
	if !errors.As(err, &loss) {
		t.Fatalf("Run: got %v, want a *Loss", err)
	}
	got := rlStat(s.e, "sink", "in").MsgsIn
	if sent := rlStat(s.e, "gen", "out").MsgsOut; sent != n {
		t.Fatalf("gen sent %d, want %d", sent, n)
	}
	if got >= n {
		t.Fatalf("sink got %d of %d: the crash lost nothing, the test proves nothing", got, n)
	}
	if loss.Lost != n-got {
		t.Errorf("Loss.Lost: got %d, want %d (sent %d, received %d); %v", loss.Lost, n-got, n, got, loss)
	}
	log := logs.String()
	want := fmt.Sprintf("messages lost when a node crashed: crashed=%s count=%d ", name, n-got)
	if c := strings.Count(log, "messages lost when a node crashed"); c != 1 || !strings.Contains(log, want) {
		t.Errorf("crash loss lines: %d, want 1 containing %q", c, want)
	}
	if !strings.Contains(log, fmt.Sprintf(`reason="%d messages were lost when %s crashed; the batch cannot complete"`, n-got, name)) {
		t.Error("no stop reason naming the crash in the log")
	}
}
