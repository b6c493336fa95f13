package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	_ "github.com/ztopo/ztopo/runtime/handler/pluginhost" // plugin handlers for the rollback test
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const rlPython = testutil.Python

// rlDir is a short private directory: ipc paths and the topology file.
func rlDir(t testing.TB) string {
	t.Helper()
	return testutil.ShortDir(t)
}

// rlParse resolves a topology file written by the test, with ${VARS} from
// vars only, as a reload would load it from dir/topology.yaml.
func rlParse(t testing.TB, dir, yaml string, vars map[string]string) *spec.Topology {
	t.Helper()
	env := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	topo, ds := spec.Parse(filepath.Join(dir, "topology.yaml"), []byte(yaml), spec.LoadOptions{Env: env, RuntimeDir: dir})
	if ds.HasErrors() {
		t.Fatalf("parse:\n%v", ds)
	}
	return topo
}

// rlVars copies base with the given key=value pairs set.
func rlVars(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// rlRunning is an engine whose Run runs in the background; the test's
// cleanup stops it if the test did not.
type rlRunning struct {
	e      *Engine
	cancel context.CancelFunc
	done   chan error
}

func rlStart(t testing.TB, topo *spec.Topology, opts Options) *rlRunning {
	t.Helper()
	e, err := New(topo, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rlRunning{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(bound + 10*time.Second):
			t.Error("Run hangs")
		}
	})
	return r
}

// wait waits for Run to return by itself.
func (r *rlRunning) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(bound):
		for _, st := range r.e.Status() {
			t.Logf("%s %s %+v", st.Name, st.State, st.Sockets)
		}
		t.Fatalf("Run did not return within %v", bound)
		return nil
	}
}

// stop cancels Run and waits for it.
func (r *rlRunning) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// mustStop stops the engine and fails the test if Run returned an error.
func (r *rlRunning) mustStop(t testing.TB) {
	t.Helper()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// mustWait waits for Run to return by itself and fails the test if it
// returned an error.
func (r *rlRunning) mustWait(t testing.TB) {
	t.Helper()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// wantSink checks that node sink's socket in received n messages.
func (r *rlRunning) wantSink(t testing.TB, n uint64) {
	t.Helper()
	if got := rlStat(r.e, "sink", "in").MsgsIn; got != n {
		t.Errorf("sink received %d, want %d", got, n)
	}
}

func rlWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rlApply(t testing.TB, e *Engine, topo *spec.Topology) (Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return e.Apply(ctx, topo)
}

// rlMust applies topo and fails the test on any error.
func rlMust(t testing.TB, e *Engine, topo *spec.Topology) Report {
	t.Helper()
	rep, err := rlApply(t, e, topo)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return rep
}

func rlStat(e *Engine, name, socket string) SocketStats {
	for _, s := range statusOf(e, name).Sockets {
		if s.Name == socket {
			return s
		}
	}
	return SocketStats{}
}

func rlRunning2(e *Engine, name string) bool { return statusOf(e, name).State == StateRunning }

// rlStarted maps every instance to its Started time.
func rlStarted(e *Engine) map[string]time.Time {
	m := map[string]time.Time{}
	for _, st := range e.Status() {
		m[st.Name] = st.Started
	}
	return m
}

func rlNames(e *Engine) []string {
	var names []string
	for _, st := range e.Status() {
		names = append(names, st.Name)
	}
	return names
}

func rlPlan(t testing.TB, got spec.Plan, want spec.Plan) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan: got %+v, want %+v", got, want)
	}
}

// rlDial makes a REQ socket connected to ep, with no linger and its
// receives bounded by bound; the caller closes it.
func rlDial(t testing.TB, ep string) *zmq4.Socket {
	t.Helper()
	s, err := zmq4.NewSocket(zmq4.REQ)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetLinger(0)
	_ = s.SetRcvtimeo(bound)
	if err := s.Connect(ep); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

// rlRequest sends one request on a fresh REQ socket and returns the reply.
func rlRequest(t testing.TB, ep, msg string) (string, error) {
	t.Helper()
	s := rlDial(t, ep)
	defer s.Close()
	if _, err := s.Send(msg, 0); err != nil {
		return "", err
	}
	return s.Recv(0)
}

const swapYAML = `version: 1
name: swap
nodes:
  broker:
    handler: proxy
    sockets:
      frontend: {type: ROUTER, bind: "${FRONT}"}
      backend: {type: DEALER, bind: auto}
  worker:
    replicas: 2
    handler: ${H}
    sockets:
      in: {type: REP, connect: broker.backend}
`

// TestApplySwapsHandlerUnderLoad: pyzmq REQ clients keep sending through a
// ROUTER/DEALER proxy to REP echo workers while the workers' handler
// becomes upper. Every request is answered, by the old or the new handler;
// once Apply returned, requests get the new one.
func TestApplySwapsHandlerUnderLoad(t *testing.T) {
	const clients, warm, after = 4, 50, 200
	dir := rlDir(t)
	vars := map[string]string{"FRONT": zsocktest.TCP(t), "H": "echo"}
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, swapYAML, vars), Options{Logger: lg})
	rlWaitFor(t, "broker and workers running", func() bool {
		return rlRunning2(r.e, "broker") && rlRunning2(r.e, "worker.0") && rlRunning2(r.e, "worker.1")
	})
	before := rlStarted(r.e)

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	clientsRun := testutil.StartReqClients(t, ctx, vars["FRONT"], clients, warm, after, "hello world")

	rep := rlMust(t, r.e, rlParse(t, dir, swapYAML, rlVars(vars, "H", "upper")))
	rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"worker.0", "worker.1"}, Unchanged: []string{"broker"}})
	results := clientsRun.Finish(t)

	var echoed, uppered, staleAfter int
	for k, rows := range results {
		late := 0
		for _, row := range rows {
			switch {
			case len(row.Reply) != 1:
				t.Fatalf("client %d: request %q got %q, want one reply frame (none: lost)", k, row.Req, row.Reply)
			case row.Reply[0] == row.Req:
				echoed++
				if row.After {
					staleAfter++
				}
			case row.Reply[0] == strings.ToUpper(row.Req):
				uppered++
			default:
				t.Fatalf("client %d: request %q got %q", k, row.Req, row.Reply[0])
			}
			if row.After {
				late++
			}
		}
		if late != after {
			t.Errorf("client %d: %d replies after the swap, want %d", k, late, after)
		}
		if last := rows[len(rows)-1]; last.Reply[0] != strings.ToUpper(last.Req) {
			t.Errorf("client %d: last reply %q, want upper-cased", k, last.Reply[0])
		}
	}
	t.Logf("%d echo replies, %d upper replies, %d echoed after the swap", echoed, uppered, staleAfter)
	if echoed == 0 || uppered == 0 {
		t.Errorf("got %d echo and %d upper replies, want both", echoed, uppered)
	}
	// A worker may be handing one request to the old handler at the
	// instant of the swap; no more.
	if staleAfter > 2 {
		t.Errorf("%d requests sent after Apply returned were echoed, want at most 2", staleAfter)
	}
	var total uint64
	for _, w := range []string{"worker.0", "worker.1"} {
		total += rlStat(r.e, w, "in").MsgsOut
	}
	if want := uint64(echoed + uppered); total != want {
		t.Errorf("workers replied %d times, want %d", total, want)
	}
	if after := rlStarted(r.e); !reflect.DeepEqual(after, before) {
		t.Errorf("instances restarted by a handler swap: before %v, after %v", before, after)
	}
	for _, want := range []string{"swapping handler: node=worker.0 handler=upper", "reload applied: started=0 stopped=0 restarted=0 swapped=2 unchanged=1 failed=0"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs.String(), "restarting node") {
		t.Errorf("a handler swap restarted a node")
	}
}

const streamYAML = `version: 1
name: stream
nodes:
  source:
    handler: generate
    config:
      count: ${N}
      interval: 1ms
      payload: abc
      end: end
    sockets:
      out: {type: PUSH, bind: auto}
  stream:
    handler: ${H}
    sockets:
      frontend: {type: PULL, connect: source.out}
      backend: {type: PUSH, bind: auto}
  sink:
    handler: count
    config:
      until: end
    sockets:
      in: {type: PULL, connect: stream.backend}
`

// TestApplySwapsProxyRunner: a handler-only change on a node running the
// steerable proxy (a Runner) makes the proxy return and the node go on with
// the new handler on the same sockets, and back; nothing is lost, and the
// node's counters add up across handlers.
func TestApplySwapsProxyRunner(t *testing.T) {
	const n = 2000
	dir := rlDir(t)
	vars := map[string]string{"N": fmt.Sprint(n), "H": "proxy"}
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, streamYAML, vars), Options{Logger: lg})
	rlWaitFor(t, "the stream flowing", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= 200 })
	before := rlStarted(r.e)

	rep := rlMust(t, r.e, rlParse(t, dir, streamYAML, rlVars(vars, "H", "upper")))
	rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"stream"}, Unchanged: []string{"sink", "source"}})
	// Once the node took upper, the proxy has stopped and its counters
	// are final: what the frontend counts from then on is upper's work.
	rlWaitFor(t, "upper swapped in", func() bool { return strings.Count(logs.String(), "handler swapped: node=stream") == 1 })
	base := rlStat(r.e, "stream", "frontend").MsgsIn
	rlWaitFor(t, "upper at work", func() bool { return rlStat(r.e, "stream", "frontend").MsgsIn >= base+100 })
	rlMust(t, r.e, rlParse(t, dir, streamYAML, vars))

	// The sink completes on the source's last payload, "end", as sent:
	// upper would have made it "END", so the proxy carried the end of the
	// stream.
	r.mustWait(t)
	r.wantSink(t, n+1)
	// Each message counted once on each socket of the node, whichever
	// handler moved it: the proxy from its statistics, upper as it went.
	if got := rlStat(r.e, "stream", "frontend").MsgsIn; got != n+1 {
		t.Errorf("stream frontend received %d, want %d", got, n+1)
	}
	if got := rlStat(r.e, "stream", "backend").MsgsOut; got != n+1 {
		t.Errorf("stream backend sent %d, want %d", got, n+1)
	}
	for name, at := range rlStarted(r.e) {
		if !at.Equal(before[name]) {
			t.Errorf("%s restarted (started %v, was %v)", name, at, before[name])
		}
	}
	if c := strings.Count(logs.String(), "swapping handler: node=stream"); c != 2 {
		t.Errorf("%d swap lines, want 2", c)
	}
}

const pipelineYAML = `version: 1
name: pipe
nodes:
  ventilator:
    handler: generate
    config:
      count: ${N}
      interval: 1ms
      size: 8
    sockets:
      out: {type: PUSH, bind: "${VENT}"}
  worker:
    replicas: ${WORKERS}
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config:
      expect: ${N}
    sockets:
      in: {type: PULL, bind: auto}
`

// TestApplyReplicasWhilePipelineRuns: workers 2 -> 4 -> 1 while the
// ventilator streams. Adding replicas touches nobody; removed workers are
// drained before they stop, so the sink's count stays exact.
func TestApplyReplicasWhilePipelineRuns(t *testing.T) {
	const n = 3000
	dir := rlDir(t)
	vars := map[string]string{"N": fmt.Sprint(n), "VENT": zsocktest.TCP(t), "WORKERS": "2"}
	lg, logs := newLogger(t)
	// A grace long enough for the stream: the removed workers drain until
	// the ventilator is done.
	r := rlStart(t, rlParse(t, dir, pipelineYAML, vars), Options{Logger: lg, Grace: bound})
	sink := func() uint64 { return rlStat(r.e, "sink", "in").MsgsIn }
	rlWaitFor(t, "the stream flowing", func() bool { return sink() >= 300 })
	before := rlStarted(r.e)

	rep := rlMust(t, r.e, rlParse(t, dir, pipelineYAML, rlVars(vars, "WORKERS", "4")))
	rlPlan(t, rep.Plan, spec.Plan{Added: []string{"worker.2", "worker.3"},
		Unchanged: []string{"sink", "ventilator", "worker.0", "worker.1"}})
	if got := rlNames(r.e); !reflect.DeepEqual(got, []string{"sink", "ventilator", "worker.0", "worker.1", "worker.2", "worker.3"}) {
		t.Fatalf("instances: %v", got)
	}
	rlWaitFor(t, "new workers at work", func() bool {
		return rlStat(r.e, "worker.2", "in").MsgsIn > 0 && rlStat(r.e, "worker.3", "in").MsgsIn > 0
	})
	if s := sink(); s >= n {
		t.Fatalf("the stream ended (%d) before the scale-down", s)
	}

	rep = rlMust(t, r.e, rlParse(t, dir, pipelineYAML, rlVars(vars, "WORKERS", "1")))
	t.Logf("scale-down took %v, sink at %d of %d", rep.Duration, sink(), n)
	rlPlan(t, rep.Plan, spec.Plan{Removed: []string{"worker.1", "worker.2", "worker.3"},
		Unchanged: []string{"sink", "ventilator", "worker.0"}})
	if got := rlNames(r.e); !reflect.DeepEqual(got, []string{"sink", "ventilator", "worker.0"}) {
		t.Errorf("instances after scale-down: %v", got)
	}

	r.mustWait(t)
	if got := sink(); got != n {
		t.Errorf("sink received %d, want %d", got, n)
	}
	for _, name := range []string{"sink", "ventilator", "worker.0"} {
		if st := statusOf(r.e, name); !st.Started.Equal(before[name]) || st.Restarts != 0 {
			t.Errorf("%s was restarted: %+v", name, st)
		}
	}
	if got := r.e.Topology(); len(got.Nodes) != 3 || got.Node("worker.0").Replicas != 1 {
		t.Errorf("engine topology not current: %d nodes", len(got.Nodes))
	}
	if strings.Contains(logs.String(), "stopping node with messages still moving") {
		t.Errorf("a removed worker was stopped before it drained")
	}
}

// sideYAML is the pipeline beside a node that nothing connects to.
const sideYAML = pipelineYAML + `  side:
    handler: ${SIDE}
    sockets:
      in: {type: PULL, bind: "${SIDE_EP}"}
`

// TestApplyUnrelatedNodeLeavesPipeline: while a pipeline streams, only an
// unrelated node changes (its handler, then its endpoint): the pipeline's
// instances are not touched and the sink's count is exact.
func TestApplyUnrelatedNodeLeavesPipeline(t *testing.T) {
	const n = 2000
	dir := rlDir(t)
	vars := map[string]string{"N": fmt.Sprint(n), "VENT": "auto", "WORKERS": "2", "SIDE": "log", "SIDE_EP": "ipc://" + filepath.Join(dir, "side1")}
	lg, _ := newLogger(t)
	r := rlStart(t, rlParse(t, dir, sideYAML, vars), Options{Logger: lg})
	rlWaitFor(t, "the stream flowing", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= 200 })
	rlWaitFor(t, "side running", func() bool { return rlRunning2(r.e, "side") })
	pipeline := []string{"sink", "ventilator", "worker.0", "worker.1"}
	before := rlStarted(r.e)

	vars = rlVars(vars, "SIDE", "forward")
	rep := rlMust(t, r.e, rlParse(t, dir, sideYAML, vars))
	rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"side"}, Unchanged: pipeline})
	if !statusOf(r.e, "side").Started.Equal(before["side"]) {
		t.Errorf("side restarted by a handler swap")
	}
	vars = rlVars(vars, "SIDE_EP", "ipc://"+filepath.Join(dir, "side2"))
	rep = rlMust(t, r.e, rlParse(t, dir, sideYAML, vars))
	rlPlan(t, rep.Plan, spec.Plan{Changed: []string{"side"}, Unchanged: pipeline})
	if statusOf(r.e, "side").Started.Equal(before["side"]) {
		t.Errorf("side was not restarted for a new endpoint")
	}
	if s := rlStat(r.e, "sink", "in").MsgsIn; s >= n {
		t.Errorf("the stream ended (%d) before the reloads were done; they prove nothing", s)
	}

	r.mustWait(t)
	r.wantSink(t, n)
	for _, name := range pipeline {
		if st := statusOf(r.e, name); !st.Started.Equal(before[name]) || st.Restarts != 0 {
			t.Errorf("%s was touched: started %v (was %v), restarts %d", name, st.Started, before[name], st.Restarts)
		}
	}
	if got := r.e.Topology().Node("side"); got.Handler.Name != "forward" || got.Socket("in").Bind[0] != vars["SIDE_EP"] {
		t.Errorf("engine topology not current: %+v", got)
	}
}

// rlServices is a topology of echo REP services, one per name, each bound
// at vars[NAME] (upper-cased name).
func rlServices(names ...string) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: services\nnodes:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    handler: echo\n    sockets:\n      in: {type: REP, bind: \"${%s}\"}\n", n, strings.ToUpper(n))
	}
	return b.String()
}

// rlFree waits until the tcp endpoint's port can be bound again: libzmq
// releases a closed listener in its I/O thread, a moment later.
func rlFree(t testing.TB, ep string) {
	t.Helper()
	addr := strings.TrimPrefix(ep, "tcp://")
	rlWaitFor(t, ep+" free", func() bool {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		return true
	})
}

// rlTaken returns a tcp endpoint that a socket of the test holds bound, so
// that a node binding it cannot start; release closes that socket (the test's
// end does too).
func rlTaken(t testing.TB) (ep string, release func()) {
	t.Helper()
	ep = zsocktest.TCP(t)
	foreign, err := zmq4.NewSocket(zmq4.PULL)
	if err != nil {
		t.Fatal(err)
	}
	_ = foreign.SetLinger(0)
	var once sync.Once
	release = func() { once.Do(func() { foreign.Close() }) }
	t.Cleanup(release)
	if err := foreign.Bind(ep); err != nil {
		t.Fatal(err)
	}
	return ep, release
}

// TestApplyAddsAndRemovesNodes: an added node starts and serves; a removed
// node's goroutine ends and its endpoint is free; the other is untouched.
func TestApplyAddsAndRemovesNodes(t *testing.T) {
	dir := rlDir(t)
	vars := map[string]string{"A": zsocktest.TCP(t), "B": zsocktest.TCP(t)}
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, rlServices("a"), vars), Options{Logger: lg})
	rlWaitFor(t, "a running", func() bool { return rlRunning2(r.e, "a") })

	rep := rlMust(t, r.e, rlParse(t, dir, rlServices("a", "b"), vars))
	rlPlan(t, rep.Plan, spec.Plan{Added: []string{"b"}, Unchanged: []string{"a"}})
	if st := statusOf(r.e, "b"); st.State != StateRunning {
		t.Fatalf("b after Apply: %s, want running", st.State)
	}
	if got, err := rlRequest(t, vars["B"], "to b"); err != nil || got != "to b" {
		t.Fatalf("b replied %q, %v", got, err)
	}

	r.e.mu.Lock()
	oldA := r.e.insts["a"]
	r.e.mu.Unlock()
	rep = rlMust(t, r.e, rlParse(t, dir, rlServices("b"), vars))
	rlPlan(t, rep.Plan, spec.Plan{Removed: []string{"a"}, Unchanged: []string{"b"}})
	select {
	case <-oldA.done:
	default:
		t.Errorf("a's goroutine still runs after Apply returned")
	}
	if got := rlNames(r.e); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("instances: %v, want [b]", got)
	}
	rlFree(t, vars["A"])
	if got, err := rlRequest(t, vars["B"], "still b"); err != nil || got != "still b" {
		t.Fatalf("b replied %q, %v", got, err)
	}
	if r.e.Topology().Node("a") != nil || r.e.Topology().Node("b") == nil {
		t.Errorf("engine topology not current")
	}
	for _, want := range []string{"starting node: node=b", "stopping node: node=a",
		"reload applied: started=1 stopped=0", "reload applied: started=0 stopped=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	r.mustStop(t)
}

const completingYAML = `version: 1
name: done
nodes:
  svc:
    handler: echo
    sockets:
      in: {type: REP, bind: auto}
  gen:
    handler: generate
    config:
      count: 100
    sockets:
      out: {type: PUSH, bind: auto}
  sink:
    handler: count
    config:
      expect: 100
    sockets:
      in: {type: PULL, connect: gen.out}
`

// idleNode completes at 5 messages, which never come.
const idleNode = `  idle:
    handler: count
    config:
      expect: 5
    sockets:
      in: {type: PULL, bind: auto}
`

// TestApplyCompletionBookkeeping: a reload that adds completing nodes to a
// reactive topology makes it end when they are done; one that removes the
// last completing node that is not done ends it too.
func TestApplyCompletionBookkeeping(t *testing.T) {
	t.Run("add", func(t *testing.T) {
		dir := rlDir(t)
		lg, _ := newLogger(t)
		r := rlStart(t, rlParse(t, dir, rlServices("svc"), map[string]string{"SVC": "ipc://" + filepath.Join(dir, "svc")}), Options{Logger: lg})
		rlWaitFor(t, "svc running", func() bool { return rlRunning2(r.e, "svc") })
		rep := rlMust(t, r.e, rlParse(t, dir, completingYAML, nil))
		// bind: auto made svc an inproc endpoint: it changed.
		rlPlan(t, rep.Plan, spec.Plan{Added: []string{"gen", "sink"}, Changed: []string{"svc"}})
		r.mustWait(t)
		r.wantSink(t, 100)
		if st := statusOf(r.e, "sink"); st.State != StateCompleted {
			t.Errorf("sink: %s, want completed", st.State)
		}
	})
	t.Run("remove", func(t *testing.T) {
		dir := rlDir(t)
		lg, _ := newLogger(t)
		r := rlStart(t, rlParse(t, dir, completingYAML+idleNode, nil), Options{Logger: lg})
		rlWaitFor(t, "sink done", func() bool { return statusOf(r.e, "sink").State == StateCompleted })
		select {
		case err := <-r.done:
			t.Fatalf("Run returned (%v) while idle waits", err)
		case <-time.After(100 * time.Millisecond):
		}
		rep := rlMust(t, r.e, rlParse(t, dir, completingYAML, nil))
		rlPlan(t, rep.Plan, spec.Plan{Removed: []string{"idle"}, Unchanged: []string{"gen", "sink", "svc"}})
		r.mustWait(t)
	})
}

// TestApplyRollsBackNodeThatCannotStart: the new definition of svc binds an
// endpoint a foreign socket holds. svc fails, runs its old definition
// again, and the report says why; the node added by the same reload runs.
func TestApplyRollsBackNodeThatCannotStart(t *testing.T) {
	dir := rlDir(t)
	vars := map[string]string{"SVC": zsocktest.TCP(t), "EXTRA": zsocktest.TCP(t)}
	taken, release := rlTaken(t)
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, rlServices("svc"), vars), Options{Logger: lg})
	rlWaitFor(t, "svc running", func() bool { return rlRunning2(r.e, "svc") })

	rep, err := rlApply(t, r.e, rlParse(t, dir, rlServices("extra", "svc"), rlVars(vars, "SVC", taken)))
	want := fmt.Sprintf(`node "svc": socket "in": bind %s: address already in use`, taken)
	if err == nil || err.Error() != want {
		t.Fatalf("Apply: got %v, want %s", err, want)
	}
	rlPlan(t, rep.Plan, spec.Plan{Added: []string{"extra"}, Changed: []string{"svc"}})
	if len(rep.Failed) != 1 || rep.Failed[0].Node != "svc" || rep.Failed[0].Error() != want {
		t.Errorf("Failed: %v", rep.Failed)
	}
	if !reflect.DeepEqual(rep.RolledBack, []string{"svc"}) {
		t.Errorf("RolledBack: got %v, want [svc]", rep.RolledBack)
	}
	// All or nothing: the added node does not stay without the rest.
	if st := statusOf(r.e, "svc"); st.State != StateRunning {
		t.Errorf("svc: %s, want running", st.State)
	}
	if names := rlNames(r.e); !reflect.DeepEqual(names, []string{"svc"}) {
		t.Errorf("instances: got %v, want [svc]", names)
	}
	if got, err := rlRequest(t, vars["SVC"], "old svc"); err != nil || got != "old svc" {
		t.Errorf("svc at its old endpoint replied %q, %v", got, err)
	}
	topo := r.e.Topology()
	if got := topo.Node("svc").Socket("in").Bind; !reflect.DeepEqual(got, []string{vars["SVC"]}) {
		t.Errorf("engine topology: svc binds %v, want its old endpoint", got)
	}
	if topo.Node("extra") != nil {
		t.Errorf("engine topology has extra")
	}
	for _, line := range []string{"rolling back node: node=svc",
		"reload rolled back: rolled_back=1 unchanged=0 failed=1"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %q", line)
		}
	}

	// The same file again, once the endpoint is free: the reload retries.
	release()
	rlFree(t, taken)
	rep = rlMust(t, r.e, rlParse(t, dir, rlServices("extra", "svc"), rlVars(vars, "SVC", taken)))
	rlPlan(t, rep.Plan, spec.Plan{Added: []string{"extra"}, Changed: []string{"svc"}})
	if got, err := rlRequest(t, vars["EXTRA"], "extra"); err != nil || got != "extra" {
		t.Errorf("extra replied %q, %v", got, err)
	}
	if got, err := rlRequest(t, taken, "new svc"); err != nil || got != "new svc" {
		t.Errorf("svc at its new endpoint replied %q, %v", got, err)
	}
}

// TestApplyKeepsNodeWhoseHandlerCannotBeBuilt: a handler-only change to a
// plugin that exits before READY fails in its factory, before the running
// node is touched: it keeps serving with its old handler.
func TestApplyKeepsNodeWhoseHandlerCannotBeBuilt(t *testing.T) {
	dir := rlDir(t)
	if err := os.WriteFile(filepath.Join(dir, "bad.sh"), []byte("#!/bin/sh\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"SVC": zsocktest.TCP(t)}
	lg, _ := newLogger(t)
	r := rlStart(t, rlParse(t, dir, rlServices("svc"), vars), Options{Logger: lg})
	rlWaitFor(t, "svc running", func() bool { return rlRunning2(r.e, "svc") })
	started := statusOf(r.e, "svc").Started

	plugin := strings.Replace(rlServices("svc"), "handler: echo", "handler: {plugin: ./bad.sh}", 1)
	rep, err := rlApply(t, r.e, rlParse(t, dir, plugin, vars))
	want := `node "svc": plugin handshake failed: plugin exited before READY: exit status 4`
	if err == nil || err.Error() != want {
		t.Fatalf("Apply: got %v, want %s", err, want)
	}
	rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"svc"}})
	if !reflect.DeepEqual(rep.RolledBack, []string{"svc"}) {
		t.Errorf("RolledBack: got %v, want [svc]", rep.RolledBack)
	}
	if st := statusOf(r.e, "svc"); st.State != StateRunning || !st.Started.Equal(started) {
		t.Errorf("svc was touched: %+v", st)
	}
	if got, err := rlRequest(t, vars["SVC"], "echo me"); err != nil || got != "echo me" {
		t.Errorf("svc replied %q, %v", got, err)
	}
	if h := r.e.Topology().Node("svc").Handler; h.Kind != spec.HandlerBuiltin || h.Name != "echo" {
		t.Errorf("engine topology: svc handler %+v, want echo", h)
	}
}

// rlFifty is a topology of 50 echo REP services n00..n49, each on its own
// ipc endpoint in dir; handlers overrides some nodes' handler, endpoints
// some nodes' endpoint name.
func rlFifty(t testing.TB, dir string, handlers, endpoints map[string]string) *spec.Topology {
	var b strings.Builder
	b.WriteString("version: 1\nname: fifty\nnodes:\n")
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("n%02d", i)
		h, ep := "echo", name
		if o, ok := handlers[name]; ok {
			h = o
		}
		if o, ok := endpoints[name]; ok {
			ep = o
		}
		fmt.Fprintf(&b, "  %s:\n    handler: %s\n    sockets:\n      in: {type: REP, bind: \"ipc://%s\"}\n", name, h, filepath.Join(dir, ep))
	}
	return rlParse(t, dir, b.String(), nil)
}

func rlAllRunning(e *Engine) bool {
	for _, st := range e.Status() {
		if st.State != StateRunning {
			return false
		}
	}
	return true
}

// TestApplyTouchesOnlyChangedNode: in a 50-node topology, a one-node change
// (a handler, then an endpoint) leaves the 49 other instances alone.
func TestApplyTouchesOnlyChangedNode(t *testing.T) {
	dir := rlDir(t)
	lg, _ := newLogger(t)
	r := rlStart(t, rlFifty(t, dir, nil, nil), Options{Logger: lg})
	rlWaitFor(t, "50 nodes running", func() bool { return rlAllRunning(r.e) })
	before := rlStarted(r.e)
	if len(before) != 50 {
		t.Fatalf("%d instances, want 50", len(before))
	}
	others := func(except string) []string {
		var names []string
		for i := 0; i < 50; i++ {
			if n := fmt.Sprintf("n%02d", i); n != except {
				names = append(names, n)
			}
		}
		return names
	}

	rep := rlMust(t, r.e, rlFifty(t, dir, map[string]string{"n07": "upper"}, nil))
	rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"n07"}, Unchanged: others("n07")})
	if got := rlStarted(r.e); !reflect.DeepEqual(got, before) {
		t.Errorf("a handler swap restarted instances")
	}
	if got, err := rlRequest(t, "ipc://"+filepath.Join(dir, "n07"), "ping"); err != nil || got != "PING" {
		t.Errorf("n07 replied %q, %v; want PING", got, err)
	}

	rep = rlMust(t, r.e, rlFifty(t, dir, map[string]string{"n07": "upper"}, map[string]string{"n23": "moved"}))
	rlPlan(t, rep.Plan, spec.Plan{Changed: []string{"n23"}, Unchanged: others("n23")})
	after := rlStarted(r.e)
	for name, at := range before {
		if changed := !after[name].Equal(at); changed != (name == "n23") {
			t.Errorf("%s: restarted %v, want %v", name, changed, name == "n23")
		}
	}
	if got, err := rlRequest(t, "ipc://"+filepath.Join(dir, "moved"), "pong"); err != nil || got != "pong" {
		t.Errorf("n23 replied %q, %v at its new endpoint", got, err)
	}
}

// BenchmarkReload50 measures a reload of a 50-node topology that changes
// one node's handler (echo <-> upper), from the Apply call until a REQ
// client gets its reply from the new handler: ms/reload is the median.
func BenchmarkReload50(b *testing.B) {
	dir := rlDir(b)
	topos := [2]*spec.Topology{
		rlFifty(b, dir, nil, nil),
		rlFifty(b, dir, map[string]string{"n07": "upper"}, nil),
	}
	want := [2]string{"ping", "PING"}
	r := rlStart(b, topos[0], Options{})
	rlWaitFor(b, "50 nodes running", func() bool { return rlAllRunning(r.e) })
	client := rlDial(b, "ipc://"+filepath.Join(dir, "n07"))
	defer client.Close()
	ask := func() string {
		if _, err := client.Send("ping", 0); err != nil {
			b.Fatal(err)
		}
		reply, err := client.Recv(0)
		if err != nil {
			b.Fatal(err)
		}
		return reply
	}
	if got := ask(); got != want[0] {
		b.Fatalf("before: got %q", got)
	}
	var samples []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		if _, err := rlApply(b, r.e, topos[i%2]); err != nil {
			b.Fatal(err)
		}
		for ask() != want[i%2] {
		}
		samples = append(samples, time.Since(start))
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2])/float64(time.Millisecond), "ms/reload")
}

// TestApplyBeforeAndAfterRun: before Run, Apply only changes what Run will
// start; once Run has stopped, it refuses.
func TestApplyBeforeAndAfterRun(t *testing.T) {
	dir := rlDir(t)
	vars := map[string]string{"A": zsocktest.TCP(t), "B": zsocktest.TCP(t)}
	e, err := New(rlParse(t, dir, rlServices("a"), vars), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := rlMust(t, e, rlParse(t, dir, rlServices("b"), vars))
	rlPlan(t, rep.Plan, spec.Plan{Added: []string{"b"}, Removed: []string{"a"}})
	if got := rlNames(e); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("instances before Run: %v, want [b]", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	rlWaitFor(t, "b running", func() bool { return rlRunning2(e, "b") })
	if got, err := rlRequest(t, vars["B"], "b"); err != nil || got != "b" {
		t.Fatalf("b replied %q, %v", got, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := rlApply(t, e, rlParse(t, dir, rlServices("a"), vars)); !errors.Is(err, ErrStopped) {
		t.Errorf("Apply after Run: got %v, want %v", err, ErrStopped)
	}
	if got := rlNames(e); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("instances after a refused reload: %v", got)
	}
}

const foreverYAML = `version: 1
name: forever
nodes:
  ventilator:
    handler: generate
    config:
      interval: 1ms
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    replicas: ${WORKERS}
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
`

// TestStopCutsReloadDrainShort: a removed worker of an endless stream never
// goes quiet; stopping the engine meanwhile ends the reload's drain and Run
// returns.
func TestStopCutsReloadDrainShort(t *testing.T) {
	dir := rlDir(t)
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, foreverYAML, map[string]string{"WORKERS": "2"}), Options{Logger: lg, Grace: time.Minute})
	rlWaitFor(t, "the stream flowing", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= 100 })
	applied := make(chan error, 1)
	go func() {
		_, err := rlApply(t, r.e, rlParse(t, dir, foreverYAML, map[string]string{"WORKERS": "1"}))
		applied <- err
	}()
	rlWaitFor(t, "the reload draining worker.1", func() bool { return strings.Contains(logs.String(), "stopping node: node=worker.1") })
	// Cutting the drain short may drop what worker.1 still held: reported.
	if err := r.stop(t); err != nil && !isLossOn(err, "ventilator.out -> ") {
		t.Errorf("Run: %v", err)
	}
	select {
	case err := <-applied:
		if err != nil {
			t.Errorf("Apply: %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Apply hangs")
	}
	if !strings.Contains(logs.String(), `stopping node with messages still moving: node=worker.1 reason="engine stopping"`) {
		t.Errorf("the drain was not cut short by the stop")
	}
}

const replicasYAML = `version: 1
name: replicas
nodes:
  broker:
    handler: proxy
    sockets:
      frontend: {type: ROUTER, bind: auto}
      backend: {type: DEALER, bind: auto}
  worker:
    replicas: ${WORKERS}
    handler: echo
    sockets:
      in: {type: REP, connect: broker.backend}
`

// TestConcurrentApplies: reloads from several goroutines are serialized;
// the engine ends up running exactly what its Topology says.
func TestConcurrentApplies(t *testing.T) {
	dir := rlDir(t)
	lg, _ := newLogger(t)
	r := rlStart(t, rlParse(t, dir, replicasYAML, map[string]string{"WORKERS": "1"}), Options{Logger: lg})
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			for i := 0; i < 3 && err == nil; i++ {
				_, err = rlApply(t, r.e, rlParse(t, dir, replicasYAML, map[string]string{"WORKERS": fmt.Sprint(1 + (g+i)%3)}))
			}
			errs <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Errorf("Apply: %v", err)
		}
	}
	var want []string
	for _, n := range r.e.Topology().Nodes {
		want = append(want, n.Name)
	}
	sort.Strings(want)
	if got := rlNames(r.e); !reflect.DeepEqual(got, want) {
		t.Errorf("instances %v, topology %v", got, want)
	}
	rlWaitFor(t, "every instance running", func() bool { return rlAllRunning(r.e) })
	r.mustStop(t)
}

const rerunYAML = `version: 1
name: rerun
nodes:
  gen:
    handler: generate
    config:
      count: ${COUNT}
    sockets:
      out: {type: PUSH, bind: "${GEN}"}
  sink:
    handler: count
    sockets:
      in: {type: PULL, connect: gen.out}
` + idleNode

// TestApplyRerunsCompletedNode: a handler-only change to a node that has
// completed cannot be a swap (it no longer handles anything): the reload
// starts it again with its new config. Over ipc the sink reconnects by
// itself and is untouched; over inproc, which libzmq never reconnects, the
// sink is restarted with it (a fresh instance: its count starts at 0).
func TestApplyRerunsCompletedNode(t *testing.T) {
	for _, tc := range []struct {
		name, gen  string
		dependents []string
		want       uint64
	}{
		{"ipc", "ipc", nil, 120},
		{"inproc", "auto", []string{"sink"}, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := rlDir(t)
			vars := map[string]string{"COUNT": "50", "GEN": tc.gen}
			if tc.gen == "ipc" {
				vars["GEN"] = "ipc://" + filepath.Join(dir, "gen")
			}
			lg, logs := newLogger(t)
			r := rlStart(t, rlParse(t, dir, rerunYAML, vars), Options{Logger: lg})
			rlWaitFor(t, "gen completed", func() bool { return statusOf(r.e, "gen").State == StateCompleted })
			rlWaitFor(t, "50 at the sink", func() bool { return rlStat(r.e, "sink", "in").MsgsIn == 50 })
			rlWaitFor(t, "idle running", func() bool { return rlRunning2(r.e, "idle") })
			before := rlStarted(r.e)

			rep := rlMust(t, r.e, rlParse(t, dir, rerunYAML, rlVars(vars, "COUNT", "70")))
			rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"gen"}, Unchanged: []string{"idle", "sink"}})
			if !reflect.DeepEqual(rep.Dependents, tc.dependents) {
				t.Errorf("Dependents: got %v, want %v", rep.Dependents, tc.dependents)
			}
			rlWaitFor(t, "the rerun at the sink", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= tc.want })
			r.mustStop(t)
			r.wantSink(t, tc.want)
			if statusOf(r.e, "gen").Started.Equal(before["gen"]) {
				t.Errorf("gen was not restarted")
			}
			if restarted := !statusOf(r.e, "sink").Started.Equal(before["sink"]); restarted != (tc.dependents != nil) {
				t.Errorf("sink restarted: %v", restarted)
			}
			if !statusOf(r.e, "idle").Started.Equal(before["idle"]) {
				t.Errorf("idle was restarted")
			}
			lines := []string{`restarting node: node=gen reason="handler change: the instance is completed"`}
			if tc.dependents != nil {
				lines = append(lines, `restarting node: node=sink reason="it connects over inproc to gen, which restarts (inproc connections are not re-established)"`,
					"reload applied: started=0 stopped=0 restarted=2 swapped=0 unchanged=1 failed=0")
			}
			for _, want := range lines {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q", want)
				}
			}
		})
	}
}

const rollbackInprocYAML = `version: 1
name: rbinproc
nodes:
  x:
    handler: forward
    sockets:
      a: {type: PUSH, bind: "inproc://rb-a"}
      b: {type: PULL, bind: "${B}"}
  d:
    handler: count
    sockets:
      in: {type: PULL, connect: x.a}
`

// TestApplyRollbackReconnectsInprocPeers: x's new definition binds its
// inproc socket, then fails on a taken tcp endpoint. Its inproc peer d had
// connected to the failed instance; after x rolls back, d is restarted so
// that it is connected to the instance that runs.
func TestApplyRollbackReconnectsInprocPeers(t *testing.T) {
	dir := rlDir(t)
	vars := map[string]string{"B": zsocktest.TCP(t)}
	taken, _ := rlTaken(t)
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, rollbackInprocYAML, vars), Options{Logger: lg})
	rlWaitFor(t, "x and d running", func() bool { return rlRunning2(r.e, "x") && rlRunning2(r.e, "d") })

	rep, err := rlApply(t, r.e, rlParse(t, dir, rollbackInprocYAML, rlVars(vars, "B", taken)))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Apply: got %v, want a bind failure", err)
	}
	// d restarted with x (inproc dependent), so the rollback restarts it
	// too, after x.
	if !reflect.DeepEqual(rep.RolledBack, []string{"d", "x"}) || len(rep.Dependents) != 0 {
		t.Errorf("RolledBack %v, Dependents %v; want [d x], []", rep.RolledBack, rep.Dependents)
	}
	if want := `rolling back node: node=d`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q", want)
	}

	push, err := zmq4.NewSocket(zmq4.PUSH)
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	_ = push.SetLinger(0)
	if err := push.Connect(vars["B"]); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := push.Send(fmt.Sprint(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	rlWaitFor(t, "10 messages through the rolled-back x to d", func() bool { return rlStat(r.e, "d", "in").MsgsIn == 10 })
}
