package main

// The ztopo side: each scenario is a topology written as YAML text, loaded
// by spec.Parse and run in-process by engine.Run, as a user's `ztopo up`
// would run it. The clock covers parsing, engine.New and the whole of Run,
// including its drain and the termination of the context. Message counts
// come from the engine's own socket counters after Run returned.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	zmq "github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/runtime/tap"
	"github.com/ztopo/ztopo/spec"
)

// runBound bounds one ztopo run: ten times the longest healthy one. The
// parent kills a child that outlives its own -timeout.
var runBound = 30 * time.Second

// load parses the YAML text of a benchmark topology and makes its engine;
// remove deletes the topology's runtime directory once the run is over.
func load(name, yaml string) (e *engine.Engine, remove func(), err error) {
	dir, err := os.MkdirTemp("", "zb")
	if err != nil {
		return nil, nil, err
	}
	remove = func() { os.RemoveAll(dir) }
	t, diags := spec.Parse(name+".yaml", []byte(yaml), spec.LoadOptions{RuntimeDir: dir})
	if diags.HasErrors() {
		remove()
		return nil, nil, fmt.Errorf("topology %s:\n%v\n%s", name, diags, yaml)
	}
	if e, err = newEngine(t); err != nil {
		remove()
		return nil, nil, err
	}
	return e, remove, nil
}

func newEngine(t *spec.Topology) (*engine.Engine, error) {
	// ZTOPO_BENCH_LOG=debug shows what the engine does in a run.
	level := hclog.LevelFromString(os.Getenv("ZTOPO_BENCH_LOG"))
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "ztopo", Level: level, Output: os.Stderr})
	return engine.New(t, engine.Options{Logger: log})
}

// background is a topology running on a goroutine, bounded by runBound.
type background struct {
	e      *engine.Engine
	ran    chan error // Run's result
	cancel context.CancelFunc
	remove func()
}

// runBackground loads a topology and runs it on a goroutine.
func runBackground(name, yaml string) (*background, error) {
	e, remove, err := load(name, yaml)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	b := &background{e: e, ran: make(chan error, 1), cancel: cancel, remove: remove}
	go func() { b.ran <- e.Run(ctx) }()
	return b, nil
}

// wait returns Run's result once it ends (cancel first to stop a run that
// does not end by itself) and removes the topology's runtime directory.
func (b *background) wait() error {
	err := <-b.ran
	b.cancel()
	b.remove()
	return err
}

// runTopology runs a topology that completes by itself and returns the
// engine (for its counters) and the time from parsing to Run's return.
func runTopology(name, yaml string) (*engine.Engine, float64, error) {
	return runTopologyWith(name, yaml, nil)
}

// runTopologyWith is runTopology calling prepare with the engine before it
// runs (within the time measured); the func prepare returns is called
// once the run is over.
func runTopologyWith(name, yaml string, prepare func(*engine.Engine) (func(), error)) (*engine.Engine, float64, error) {
	start := time.Now()
	e, remove, err := load(name, yaml)
	if err != nil {
		return nil, 0, err
	}
	defer remove()
	if prepare != nil {
		done, err := prepare(e)
		if err != nil {
			return nil, 0, err
		}
		defer done()
	}
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	err = e.Run(ctx)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("topology %s did not complete within %v: %s", name, runBound, describe(e))
	}
	return e, time.Since(start).Seconds(), err
}

// describe summarizes the instances' states and counters, for a run that
// did not complete.
func describe(e *engine.Engine) string {
	var b strings.Builder
	for _, st := range e.Status() {
		fmt.Fprintf(&b, "\n  %s %s", st.Name, st.State)
		if st.Error != "" {
			fmt.Fprintf(&b, " (%s)", st.Error)
		}
		for _, s := range st.Sockets {
			fmt.Fprintf(&b, " %s in=%d out=%d", s.Name, s.MsgsIn, s.MsgsOut)
		}
	}
	return b.String()
}

// received sums the messages that came in on the instances of node base.
func received(e *engine.Engine, base string) int64 {
	var n uint64
	for _, st := range e.Status() {
		if st.Node != base {
			continue
		}
		for _, s := range st.Sockets {
			n += s.MsgsIn
		}
	}
	return int64(n)
}

func ztopoPushPull(p Params) (Result, error) {
	eps, sink, err := newEndpoints(p.Transport, "sink")
	if err != nil {
		return Result{}, err
	}
	defer eps.close()
	ep := sink[0]
	yaml := fmt.Sprintf(`version: 1
name: bench-pushpull
nodes:
  source:
    handler: generate
    config: {count: %d, size: %d}
    sockets:
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: %q}
`, p.Count, p.Size, p.Count, ep)
	return throughputRun("pushpull", yaml, p.Count, "sink")
}

func throughputRun(name, yaml string, expect int, sink string) (Result, error) {
	return throughputRunWith(name, yaml, expect, sink, nil)
}

func throughputRunWith(name, yaml string, expect int, sink string, prepare func(*engine.Engine) (func(), error)) (Result, error) {
	e, secs, err := runTopologyWith(name, yaml, prepare)
	r := Result{Expected: int64(expect), Seconds: secs}
	if e != nil {
		r.Msgs = received(e, sink)
	}
	return r, err
}

func ztopoPipeline(p Params) (Result, error) {
	return ztopoStages(p, 4, "forward")
}

func ztopoForwardStage(p Params) (Result, error) {
	return ztopoStages(p, 1, "forward")
}

func ztopoUpperStage(p Params) (Result, error) {
	return ztopoStages(p, 1, "upper")
}

// ztopoProxyStage is the forwarding stage as the proxy builtin (a PULL
// frontend, a PUSH backend: zmq_proxy's streamer).
func ztopoProxyStage(p Params) (Result, error) {
	return ztopoStage(p, 1, "proxy", "frontend", "backend", false)
}

// ztopoStages is the pipeline of the zguide (and of topologies/pipeline.yaml):
// a ventilator, workers running handler, a sink. The upper stage gets
// lower-case text to work on, like the go run.
func ztopoStages(p Params, workers int, handler string) (Result, error) {
	return ztopoStage(p, workers, handler, "in", "out", handler == "upper")
}

// ztopoStage runs ventilator -> workers × handler (its receiving and sending
// sockets named in and out) -> sink and checks nothing was lost. handler is
// YAML: a builtin name or a {plugin: ...} / {exec: [...]} map. With text the
// ventilator sends lower-case text rather than filler bytes.
func ztopoStage(p Params, workers int, handler, in, out string, text bool) (Result, error) {
	return ztopoStageWith(p, workers, handler, in, out, text, nil)
}

// ztopoTappedPipeline is ztopoPipeline with a tap attached to the
// workers' out sockets (every message passes one) before the run starts,
// and read by a goroutine as ztopo up reads it for a tap client: the cost
// of a tap that keeps up, the dearest kind (a full buffer makes no copy).
// The forward workers leave their fast path (libzmq's proxy) while tapped.
func ztopoTappedPipeline(p Params) (Result, error) {
	var copied, lost atomic.Uint64
	prepare := func(e *engine.Engine) (func(), error) {
		tp := tap.New(0)
		if _, err := e.Tap(tp, "worker", "out"); err != nil {
			return nil, err
		}
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				n := len(tp.Read(control.MaxTapRecords, control.MaxTapBytes))
				select {
				case <-stop:
					return
				default:
				}
				if n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		return func() {
			tp.Close()
			close(stop)
			<-done
			copied.Store(tp.Copied())
			lost.Store(tp.Lost())
		}, nil
	}
	r, err := ztopoStageWith(p, 4, "forward", "in", "out", false, prepare)
	if err == nil && copied.Load() == 0 {
		err = fmt.Errorf("the tap copied nothing")
	}
	if os.Getenv("ZTOPO_BENCH_LOG") != "" {
		fmt.Fprintf(os.Stderr, "tap: copied %d, lost %d\n", copied.Load(), lost.Load())
	}
	return r, err
}

func ztopoStageWith(p Params, workers int, handler, in, out string, text bool, prepare func(*engine.Engine) (func(), error)) (Result, error) {
	eps, ep, err := newEndpoints(p.Transport, "vent", "sink")
	if err != nil {
		return Result{}, err
	}
	defer eps.close()
	vent, sink := ep[0], ep[1]
	content := fmt.Sprintf("size: %d", p.Size)
	if text {
		content = fmt.Sprintf("payload: %q", payload(p.Size))
	}
	replicas := ""
	if workers > 1 {
		replicas = fmt.Sprintf("replicas: %d", workers)
	}
	yaml := fmt.Sprintf(`version: 1
name: bench-stages
nodes:
  ventilator:
    handler: generate
    config: {count: %d, %s}
    sockets:
      out: {type: PUSH, bind: %q}
  worker:
    %s
    handler: %s
    sockets:
      %s: {type: PULL, connect: ventilator.out}
      %s: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: %q}
`, p.Count, content, vent, replicas, handler, in, out, p.Count, sink)
	return throughputRunWith("stages", yaml, p.Count, "sink", prepare)
}

// ztopoALOPipeline is ztopoPipeline with both edges delivering at least
// once and a deduping sink: what reliability costs on the same path.
func ztopoALOPipeline(p Params) (Result, error) {
	eps, ep, err := newEndpoints(p.Transport, "vent", "sink")
	if err != nil {
		return Result{}, err
	}
	defer eps.close()
	vent, sink := ep[0], ep[1]
	yaml := fmt.Sprintf(`version: 1
name: bench-alo
nodes:
  ventilator:
    handler: generate
    config: {count: %d, size: %d}
    sockets:
      out: {type: PUSH, bind: %q, delivery: at-least-once}
  worker:
    replicas: 4
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in, delivery: at-least-once}
  sink:
    handler: count
    config: {expect: %d, dedupe: true}
    sockets:
      in: {type: PULL, bind: %q}
`, p.Count, p.Size, vent, p.Count, sink)
	return throughputRun("alo", yaml, p.Count, "sink")
}

// serve runs a reactive topology (it never completes) while the shared Go
// latency client measures round trips against it, then stops it. topology
// is the file, given the free tcp endpoint its server binds; want is the
// reply expected for a request (nil: the request itself).
func serve(p Params, name string, topology func(ep string) string, want func([]byte) []byte) (Result, error) {
	ep, err := freeTCP()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	b, err := runBackground(name, topology(ep))
	if err != nil {
		return Result{}, err
	}
	r, cerr := roundTrips(p, ep, want, start)
	b.cancel()
	rerr := b.wait()
	if cerr != nil {
		return r, cerr
	}
	return r, rerr
}

func ztopoReqRepDirect(p Params) (Result, error) {
	return serve(p, "reqrep", func(ep string) string {
		return fmt.Sprintf(`version: 1
name: bench-reqrep
nodes:
  server:
    handler: echo
    sockets:
      in: {type: REP, bind: %q}
`, ep)
	}, nil)
}

// ztopoReqRepBroker is topologies/sharedqueue.yaml's shape: the proxy
// builtin between a ROUTER and a DEALER, one echo worker behind it.
func ztopoReqRepBroker(p Params) (Result, error) {
	return serve(p, "broker", func(ep string) string {
		return fmt.Sprintf(`version: 1
name: bench-broker
nodes:
  broker:
    handler: proxy
    sockets:
      frontend: {type: ROUTER, bind: %q}
      backend: {type: DEALER, bind: "inproc://bench-backend"}
  worker:
    handler: echo
    sockets:
      in: {type: REP, connect: broker.backend}
`, ep)
	}, nil)
}

// ztopoFanout uses the sync barrier of SPEC §1 against the slow joiner: the
// publisher starts once the four subscribers are connected and subscribed.
// As in the go run, the publishing sockets have no send high-water mark and
// XPUB_NODROP, so every subscriber must get every message.
func ztopoFanout(p Params) (Result, error) {
	var ports [3]int
	for i := range ports {
		port, err := freePort()
		if err != nil {
			return Result{}, err
		}
		ports[i] = port
	}
	yaml := fmt.Sprintf(`version: 1
name: bench-fanout
nodes:
  publisher:
    handler: generate
    config: {count: %d, size: %d}
    sync: {expect: %d, bind: "tcp://127.0.0.1:%d"}
    sockets:
      out: {type: PUB, connect: proxy.frontend, options: {sndhwm: 0, xpub_nodrop: true}}
  proxy:
    handler: proxy
    sockets:
      frontend: {type: XSUB, bind: "tcp://127.0.0.1:%d"}
      backend: {type: XPUB, bind: "tcp://127.0.0.1:%d", options: {sndhwm: 0, xpub_nodrop: true}}
  subscriber:
    replicas: %d
    handler: count
    config: {expect: %d}
    sync: {connect: publisher}
    sockets:
      in: {type: SUB, connect: proxy.backend, subscribe: [""]}
`, p.Count, p.Size, fanoutSubs, ports[0], ports[1], ports[2], fanoutSubs, p.Count)
	return throughputRun("fanout", yaml, p.Count*fanoutSubs, "subscriber")
}

// ztopoStartup runs p.Nodes goroutine nodes — a feed forwarder, p.Nodes-2
// forwarders, a count sink — and times parsing, New and Run until the
// engine reports every instance running (its sockets open, its handler
// called), by polling Engine.Status: the engine has no "all running" event.
// Only then does the bench feed p.Count messages into the first node over
// tcp, so that start-up is measured alone and every forwarder then carries
// traffic; the topology completes when the sink has them all.
func ztopoStartup(p Params) (Result, error) {
	feed, err := freeTCP()
	if err != nil {
		return Result{}, err
	}
	yaml := fmt.Sprintf(`version: 1
name: bench-startup
nodes:
  feed:
    handler: forward
    sockets:
      in: {type: PULL, bind: %q}
      out: {type: PUSH, bind: auto}
  worker:
    replicas: %d
    handler: forward
    sockets:
      in: {type: PULL, connect: feed.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: auto}
`, feed, p.Nodes-2, p.Count)
	start := time.Now()
	b, err := runBackground("startup", yaml)
	if err != nil {
		return Result{}, err
	}
	r := Result{Expected: int64(p.Count)}
	up, err := waitRunning(b.e, p.Nodes, b.ran)
	if err != nil {
		b.cancel()
		b.wait()
		return r, err
	}
	r.StartupMs = float64(up.Sub(start).Microseconds()) / 1e3
	r.RSSMiB, r.Threads = procStatus()
	if err := feedMessages(feed, p.Count, p.Size); err != nil {
		b.cancel()
		b.wait()
		return r, err
	}
	rss, threads := procStatus()
	r.RSSMiB, r.Threads = max(r.RSSMiB, rss), max(r.Threads, threads)
	err = b.wait()
	r.Seconds = time.Since(start).Seconds()
	r.Msgs = received(b.e, "sink")
	return r, err
}

// waitRunning polls Status until n instances are running, and returns
// when that was first seen.
// An end of Run seen here is put back into ran (buffered) for the caller.
func waitRunning(e *engine.Engine, n int, ran chan error) (time.Time, error) {
	deadline := time.After(runBound)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		sts := e.Status()
		running := 0
		var states []string
		for _, st := range sts {
			if st.State == engine.StateRunning {
				running++
			} else if len(states) < 5 {
				states = append(states, fmt.Sprintf("%s %s %s", st.Name, st.State, st.Error))
			}
		}
		if running == n && len(sts) == n {
			return time.Now(), nil
		}
		select {
		case <-tick.C:
		case err := <-ran:
			ran <- err
			return time.Time{}, fmt.Errorf("topology ended before every node ran (%d of %d running): %v", running, n, err)
		case <-deadline:
			return time.Time{}, fmt.Errorf("%d of %d nodes running after %v: %s", running, n, runBound, strings.Join(states, "; "))
		}
	}
}

// feedMessages pushes n messages into the startup topology's feed node.
func feedMessages(ep string, n, size int) error {
	ctx, err := zmq.NewContext()
	if err != nil {
		return err
	}
	err = func() error {
		s, err := ctx.NewSocket(zmq.PUSH)
		if err != nil {
			return err
		}
		defer s.Close()
		// Close waits (bounded) until what is queued has gone out.
		if err := s.SetLinger(10 * time.Second); err != nil {
			return err
		}
		if err := s.Connect(ep); err != nil {
			return err
		}
		msg := payload(size)
		for i := 0; i < n; i++ {
			if _, err := s.SendBytes(msg, 0); err != nil {
				return err
			}
		}
		return nil
	}()
	if terr := ctx.Term(); err == nil {
		err = terr
	}
	return err
}
