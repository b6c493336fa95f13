package engine

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// pyProc is a long-lived pyzmq peer from testdata/py: its output lines
// come on a channel, a line on its stdin is its cue, closing stdin ends it.
type pyProc struct {
	*pirate
	name string
}

func startPyProc(t *testing.T, script string, args ...string) *pyProc {
	t.Helper()
	p := startLines(t, 3*bound, script, args...)
	return &pyProc{pirate: p, name: script + " " + strings.Join(args, " ")}
}

// expect waits for the peer's next line and checks it.
func (p *pyProc) expect(t *testing.T, want string) {
	t.Helper()
	if got := p.line(t); got != want {
		t.Fatalf("%s: got %q, want %q", p.name, got, want)
	}
}

// kill SIGKILLs the peer and waits until it is gone.
func (p *pyProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range p.lines {
	}
	err := <-p.done
	p.done <- err
}

// pirateOK is the Lazy Pirate clients' last word when every request after
// the cue got its reply.
func pirateOK(clients, after int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^ok %d replies after the line, \d+ retries$`, clients*after))
}

func (p *pirate) cue(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "go on\n"); err != nil {
		t.Fatal(err)
	}
}

// finish cues the Lazy Pirate clients and checks that every request they
// sent after the cue got its reply.
func (p *pirate) finish(t *testing.T, clients, after int) {
	t.Helper()
	p.cue(t)
	got := p.line(t)
	t.Logf("clients: %s", got)
	if want := pirateOK(clients, after); !want.MatchString(got) {
		t.Fatalf("pyzmq clients: got %q, want %s", got, want)
	}
}

// TestPPQueueWithPythonPeers: zguide Paranoid Pirate workers and Lazy
// Pirate clients, in pyzmq, through the ppqueue builtin. A worker killed
// while idle is evicted after three missed heartbeats; every request of
// the clients is answered by the others. The heartbeat is long enough
// that a live worker held up on a loaded machine is not taken for dead
// (by the queue, or the queue by it: it would reconnect under a new name
// and the old one be evicted).
func TestPPQueueWithPythonPeers(t *testing.T) {
	front, back := zsocktest.TCP(t), zsocktest.TCP(t)
	topo := rlParse(t, rlDir(t), `version: 1
name: ppq-py
nodes:
  queue:
    handler: ppqueue
    config: {heartbeat: 500ms}
    sockets:
      frontend: {type: ROUTER, bind: `+front+`}
      backend: {type: ROUTER, bind: `+back+`}
`, nil)
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Grace: time.Second})

	doomed := startPyProc(t, "ppp.py", "worker", back, "500")
	doomed.expect(t, "ready")
	doomed.expect(t, "heard") // the queue knows it
	doomed.kill(t)
	rlWaitFor(t, "the killed worker's eviction", func() bool { return strings.Contains(logs.String(), "worker evicted") })

	for i := 0; i < 2; i++ {
		w := startPyProc(t, "ppp.py", "worker", back, "500")
		w.expect(t, "ready")
	}
	const clients, after = 3, 20
	py := startPirate(t, front, clients, after)
	py.finish(t, clients, after)
	if n := strings.Count(logs.String(), "worker evicted"); n != 1 {
		t.Errorf("evictions: got %d, want 1", n)
	}
	r.mustStop(t)
}

// TestPPPWorkersBehindPythonQueue: ztopo's upper workers speak PPP to the
// zguide's ppqueue in pyzmq; when that queue is killed they notice the
// silence and reconnect to its successor, which serves Lazy Pirate clients
// with every reply.
func TestPPPWorkersBehindPythonQueue(t *testing.T) {
	front, back := zsocktest.TCP(t), zsocktest.TCP(t)
	q := startPyProc(t, "ppp.py", "queue", front, back, "100")
	q.expect(t, "ready")
	r, logs := startUpperWorkers(t, "ppw-py", "protocol: ppp", back)
	rlWaitFor(t, "the workers to run", func() bool { return rlAllRunning(r.e) })

	const clients, after = 3, 20
	py := startPirate(t, front, clients, after)
	q.kill(t)
	rlWaitFor(t, "both workers to reconnect", func() bool {
		return strings.Count(logs.String(), "broker silent, reconnecting") >= 2
	})
	q2 := startPyProc(t, "ppp.py", "queue", front, back, "100")
	q2.expect(t, "ready")
	py.finish(t, clients, after)
	if got := sum(r.e, "worker", "broker", in); got < uint64(clients*after) {
		t.Errorf("workers received %d messages, want at least %d", got, clients*after)
	}
	r.mustStop(t)
}

// TestPPQueueProcessWorkerKilled: Lazy Pirate clients through the ppqueue
// builtin to `run: process` upper workers; one worker's process is
// SIGKILLed while they serve. It is restarted, and every request the
// clients make after that is answered: nothing is lost.
func TestPPQueueProcessWorkerKilled(t *testing.T) {
	self := needZtopo(t)
	front := zsocktest.TCP(t)
	topo := rlParse(t, rlDir(t), `version: 1
name: ppq-kill
nodes:
  queue:
    handler: ppqueue
    config: {heartbeat: 100ms}
    sockets:
      frontend: {type: ROUTER, bind: `+front+`}
      backend: {type: ROUTER, bind: auto}
  worker:
    replicas: 2
    run: process
    handler: upper
    config: {heartbeat: 100ms, reconnect: 50ms}
    restart: {policy: on-failure, max_restarts: 3, within: 1m, backoff_min: 50ms, backoff_max: 200ms}
    sockets:
      broker: {type: DEALER, connect: queue.backend}
`, nil)
	if w := topo.Node("worker.0").Worker; w == nil || w.Protocol != "ppp" || w.Socket != "broker" {
		t.Fatalf("worker.0 speaks %+v, want ppp on broker", w)
	}
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Self: self, Grace: 2 * time.Second})
	rlWaitFor(t, "every node to run", func() bool { return rlAllRunning(r.e) })

	const clients, after = 3, 30
	py := startPirate(t, front, clients, after)
	victim := statusOf(r.e, "worker.0").PID
	if victim <= 0 {
		t.Fatalf("worker.0 pid %d", victim)
	}
	killRestarts(t, r.e, "worker.0", victim)
	py.finish(t, clients, after)
	if st := statusOf(r.e, "worker.0"); st.Restarts != 1 {
		t.Errorf("worker.0 restarts: got %d, want 1", st.Restarts)
	}
	r.mustStop(t)
	_ = logs
}

// TestMDBrokerWithPythonPeers: MDP workers and clients written from RFC 7
// in pyzmq, and a ztopo echo worker, share the mdbroker builtin's
// frontend; each service's requests reach its workers only. A Python
// worker killed while idle is expired, and its service goes on with the
// other. The heartbeat is long enough that no side takes a live peer for
// dead on a loaded machine: a Python worker that hears nothing for three
// heartbeats reconnects under a new identity, and a request the broker
// had sent the old one is never answered (these clients do not retry).
func TestMDBrokerWithPythonPeers(t *testing.T) {
	front := zsocktest.TCP(t)
	topo := rlParse(t, rlDir(t), `version: 1
name: mdb-py
nodes:
  broker:
    handler: mdbroker
    config: {heartbeat: 1s}
    sockets:
      frontend: {type: ROUTER, bind: `+front+`}
  echoer:
    handler: echo
    config: {service: echo, heartbeat: 1s}
    sockets:
      broker: {type: DEALER, connect: broker.frontend}
`, nil)
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Grace: time.Second})
	var workers []*pyProc
	for i := 0; i < 2; i++ {
		w := startPyProc(t, "mdp.py", "worker", front, "upper", "1000")
		w.expect(t, "ready")
		workers = append(workers, w)
	}
	up := startPyFile(t, "mdp.py", "client", front, "upper", "3", "20")
	echo := startPyFile(t, "mdp.py", "client", front, "echo", "2", "10")
	up.wantResult(t, "upper clients", "ok 60 replies (60 upper)")
	echo.wantResult(t, "echo clients", "ok 20 replies (0 upper)")
	if got := sum(r.e, "echoer", "broker", in); got < 20 {
		t.Errorf("the echo worker received %d messages, want at least its 20 requests", got)
	}
	expired := func() int { return strings.Count(logs.String(), "worker expired: heartbeats missed") }
	before := expired() // 0: no live worker misses three heartbeats
	workers[0].kill(t)
	rlWaitFor(t, "the killed worker's expiry", func() bool { return expired() > before })
	startPyFile(t, "mdp.py", "client", front, "upper", "1", "10").wantResult(t, "upper client after the expiry", "ok 10 replies (10 upper)")
	r.mustStop(t)
}

// startUpperWorkers runs topology name: two upper workers whose DEALERs
// connect to a broker written in pyzmq at ep, with config (the protocol's
// keys) and a 100 ms heartbeat. The log shows their reconnects.
func startUpperWorkers(t *testing.T, name, config, ep string) (*rlRunning, *testutil.Buffer) {
	t.Helper()
	topo := rlParse(t, rlDir(t), `version: 1
name: `+name+`
nodes:
  worker:
    replicas: 2
    handler: upper
    config: {`+config+`, heartbeat: 100ms, reconnect: 50ms}
    sockets:
      broker: {type: DEALER, connect: `+ep+`}
`, nil)
	lg, logs := newLogger(t)
	return rlStart(t, topo, Options{Logger: lg, Grace: time.Second}), logs
}

// TestMDPWorkersBehindPythonBroker: ztopo's upper workers speak MDP to a
// broker written from RFC 7 in pyzmq; when that broker is killed they
// notice the silence and register with its successor.
func TestMDPWorkersBehindPythonBroker(t *testing.T) {
	front := zsocktest.TCP(t)
	b := startPyProc(t, "mdp.py", "broker", front, "100")
	b.expect(t, "ready")
	r, logs := startUpperWorkers(t, "mdw-py", "service: upper", front)
	startPyFile(t, "mdp.py", "client", front, "upper", "3", "20").wantResult(t, "clients", "ok 60 replies (60 upper)")
	reconnects := func() int { return strings.Count(logs.String(), "broker silent, reconnecting") }
	before := reconnects() // 0, unless a heartbeat came late on a loaded machine
	b.kill(t)
	rlWaitFor(t, "both workers to reconnect", func() bool { return reconnects() >= before+2 })
	// The new broker usually takes longer than a liveness to start
	// (python's own start): the workers' reopened sockets wait for its
	// handshake without counting that as silence, so nothing reconnects
	// again while there is no broker. Counting it made the workers cycle,
	// and one could give up on a connection just as its READY
	// registered: the broker then lost the requests it sent that
	// registration, and these clients never retry.
	b2 := startPyProc(t, "mdp.py", "broker", front, "100")
	b2.expect(t, "ready")
	if got := reconnects() - before; got != 2 {
		t.Errorf("got %d reconnects while no broker ran, want 2 (one per worker, then a wait for the handshake)", got)
	}
	startPyFile(t, "mdp.py", "client", front, "upper", "3", "20").wantResult(t, "clients of the new broker", "ok 60 replies (60 upper)")
	r.mustStop(t)
}

// TestMDPWorkerSwapLosesNothing: MDP clients that never retry keep asking
// while reloads swap their worker's handler (upper to echo and back): the
// plan is a handler swap, and every request is answered. The heartbeat
// is long enough that neither side takes the other for dead on a loaded
// machine: a request the broker sent to a worker it then evicted is never
// asked again by these clients.
func TestMDPWorkerSwapLosesNothing(t *testing.T) {
	dir := rlDir(t)
	front := zsocktest.TCP(t)
	const file = `version: 1
name: mdw-swap
nodes:
  broker:
    handler: mdbroker
    config: {heartbeat: 1s}
    sockets:
      frontend: {type: ROUTER, bind: "${FRONT}"}
  worker:
    handler: ${HANDLER}
    config: {service: work, heartbeat: 1s, delay: 1ms}
    sockets:
      broker: {type: DEALER, connect: broker.frontend}
`
	vars := map[string]string{"FRONT": front, "HANDLER": "upper"}
	lg, _ := newLogger(t)
	r := rlStart(t, rlParse(t, dir, file, vars), Options{Logger: lg, Grace: time.Second})
	const clients, requests = 4, 150
	py := startPyFile(t, "mdp.py", "client", front, "work", fmt.Sprint(clients), fmt.Sprint(requests))
	for i, h := range []string{"echo", "upper", "echo"} {
		at := uint64(100 * (i + 1))
		rlWaitFor(t, fmt.Sprintf("%d requests", at), func() bool { return sum(r.e, "worker", "broker", in) >= at })
		rep := rlMust(t, r.e, rlParse(t, dir, file, rlVars(vars, "HANDLER", h)))
		rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"worker"}, Unchanged: []string{"broker"}})
	}
	got := py.result(t)
	t.Logf("clients: %s", got)
	var n, upper int
	if _, err := fmt.Sscanf(got, "ok %d replies (%d upper)", &n, &upper); err != nil || n != clients*requests {
		t.Fatalf("clients: got %q, want ok %d replies", got, clients*requests)
	}
	if upper == 0 || upper == n {
		t.Errorf("upper-cased replies: %d of %d, want some from each handler", upper, n)
	}
	r.mustStop(t)
}

// aloPipeline is a ventilator -> workers -> deduping sink batch whose two
// edges deliver at least once.
const aloPipeline = `version: 1
name: ${NAME}
nodes:
  ventilator:
    handler: generate
    config: {count: "${N}", size: 16}
    sockets:
      out: {type: PUSH, bind: auto, delivery: at-least-once, ack_timeout: 2s}
  worker:
    replicas: ${WORKERS}
    run: ${RUN}
    handler: forward
    config: {delay: 1ms}
    restart: {policy: on-failure, max_restarts: 3, within: 1m, backoff_min: 50ms, backoff_max: 200ms}
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in, delivery: at-least-once, ack_timeout: 2s}
  sink:
    handler: count
    config: {expect: "${N}", dedupe: true}
    sockets:
      in: {type: PULL, bind: auto}
`

var receivedRE = regexp.MustCompile(`received (\d+) messages in [^,]*, (\d+) duplicates`)

// sinkReport returns the deduping sink's distinct and duplicate counts.
func sinkReport(t *testing.T, logs string) (n, dups int) {
	t.Helper()
	m := receivedRE.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no sink report in the log:\n%s", logs)
	}
	fmt.Sscan(m[1], &n)
	fmt.Sscan(m[2], &dups)
	return n, dups
}

// TestAtLeastOnceWorkerKilled: a worker process of an at-least-once
// pipeline is SIGKILLed mid-stream. What it held is sent again to the
// others, and the deduping sink counts every message exactly once; the
// batch ends by itself.
func TestAtLeastOnceWorkerKilled(t *testing.T) {
	self := needZtopo(t)
	const n = 3000
	topo := rlParse(t, rlDir(t), aloPipeline, map[string]string{"NAME": "alo-kill", "N": fmt.Sprint(n), "WORKERS": "3", "RUN": "process"})
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Self: self, Grace: 2 * time.Second})
	rlWaitFor(t, "a quarter of the stream at the sink", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= n/4 })
	victim := statusOf(r.e, "worker.0").PID
	if victim <= 0 {
		t.Fatalf("worker.0 pid %d", victim)
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.mustWait(t)
	got, dups := sinkReport(t, logs.String())
	t.Logf("sink: %d distinct, %d duplicates", got, dups)
	if got != n {
		t.Errorf("sink counted %d distinct messages, want %d", got, n)
	}
	if !strings.Contains(logs.String(), "sending unacknowledged messages again") {
		t.Error("no redelivery in the log")
	}
}

// TestAtLeastOnceWorkerRemovedByReload: a reload removes a worker of an
// at-least-once pipeline mid-stream; the deduping sink still counts every
// message exactly once.
func TestAtLeastOnceWorkerRemovedByReload(t *testing.T) {
	dir := rlDir(t)
	const n = 6000
	vars := map[string]string{"NAME": "alo-reload", "N": fmt.Sprint(n), "WORKERS": "3", "RUN": "goroutine"}
	lg, logs := newLogger(t)
	// A short grace: the removed worker is closed with messages queued.
	r := rlStart(t, rlParse(t, dir, aloPipeline, vars), Options{Logger: lg, Grace: 200 * time.Millisecond})
	rlWaitFor(t, "a quarter of the stream at the sink", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= n/4 })
	rep := rlMust(t, r.e, rlParse(t, dir, aloPipeline, rlVars(vars, "WORKERS", "2")))
	rlPlan(t, rep.Plan, spec.Plan{Removed: []string{"worker.2"}, Unchanged: []string{"sink", "ventilator", "worker.0", "worker.1"}})
	r.mustWait(t)
	got, dups := sinkReport(t, logs.String())
	t.Logf("sink: %d distinct, %d duplicates", got, dups)
	if got != n {
		t.Errorf("sink counted %d distinct messages, want %d", got, n)
	}
}

// TestAckSocketRefusesOversizedFrames: a sender's acknowledgement PULL on
// an ipc path takes frames of one origin id only. A local program that
// sends a larger frame is disconnected by libzmq before the frame is read
// into memory, and the pipeline still delivers every message.
func TestAckSocketRefusesOversizedFrames(t *testing.T) {
	self := needZtopo(t)
	const n = 5000 // 1 ms a message in the worker: it runs for seconds
	// One process worker: the ventilator's acknowledgements come over ipc.
	topo := rlParse(t, rlDir(t), aloPipeline, map[string]string{"NAME": "alo-ackmax", "N": fmt.Sprint(n), "WORKERS": "1", "RUN": "process"})
	ack := topo.Node("ventilator").Socket("out").Reliable.AckBind
	if !strings.HasPrefix(ack, "ipc://") {
		t.Fatalf("acknowledgement endpoint %q, want ipc", ack)
	}
	lg, logs := newLogger(t)
	r := rlStart(t, topo, Options{Logger: lg, Self: self})

	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	push, err := zctx.NewSocket(zmq4.PUSH)
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	_ = push.SetLinger(0)
	mon, stop := testutil.DisconnectMonitor(t, zctx, push)
	defer stop()
	if err := push.Connect(ack); err != nil {
		t.Fatal(err)
	}
	if _, err := push.SendBytes(make([]byte, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	_ = mon.SetRcvtimeo(bound)
	ev, _, _, err := mon.RecvEvent(0)
	if err != nil || ev != zmq4.EVENT_DISCONNECTED {
		t.Fatalf("got event %v, %v; want the oversized frame's sender disconnected", ev, err)
	}
	// Refused on arrival, not let go when the topology ended.
	if st := statusOf(r.e, "ventilator").State; st != StateRunning {
		t.Fatalf("disconnected only when the ventilator was %s", st)
	}
	r.mustWait(t)
	if got, _ := sinkReport(t, logs.String()); got != n {
		t.Errorf("sink counted %d distinct messages, want %d", got, n)
	}
}
