package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	_ "github.com/ztopo/ztopo/runtime/handler/builtin" // the builtin handlers
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// DefaultGrace is the drain grace when Options.Grace is zero.
const DefaultGrace = 5 * time.Second

// Options configure an Engine.
type Options struct {
	Logger hclog.Logger
	// Registry holds the builtin handlers; nil: handler.Builtins.
	Registry *handler.Registry
	// Kinds holds the exec and plugin handler factories; nil: handler.Kinds.
	Kinds *handler.Registry
	// NoWatch is passed on to process nodes' children: their exec and
	// plugin handlers do not watch their files (Kinds serves this process).
	NoWatch bool
	// Grace bounds the drain on stop, and the linger of completed nodes'
	// sockets; 0: DefaultGrace. A process node's child gets as long
	// between SIGTERM and SIGKILL.
	Grace time.Duration
	// Self is the ztopo executable, which process nodes re-execute as
	// `ztopo _node` (os.Executable() in the CLI). It has no default: in a
	// test the running executable is the test binary, which would run the
	// tests again. Without it, Run refuses topologies with `run: process`
	// nodes; command nodes do not need it.
	Self string
}

// State is where an instance is in its life.
type State string

const (
	StateStarting   State = "starting"   // opening sockets, waiting at its sync barrier
	StateRunning    State = "running"    // its handler runs
	StateStalled    State = "stalled"    // its process is stopped or stopped reporting (process and command nodes)
	StateCompleted  State = "completed"  // its handler is done
	StateRestarting State = "restarting" // it failed and waits for its backoff
	StateFailed     State = "failed"     // it failed for good
	StateStopped    State = "stopped"    // stopped by the engine
)

// SocketStats are one socket's counters.
type SocketStats struct {
	Name                                           string
	MsgsIn, MsgsOut, BytesIn, BytesOut, SendErrors uint64
	// Curve is "server" or "client" for a socket with CURVE, else "".
	Curve string
	// AuthFailures are the CURVE handshakes its ZAP handler refused.
	AuthFailures uint64
}

// InstanceStatus describes one node instance.
type InstanceStatus struct {
	Name     string       // instance name: "worker.2"
	Node     string       // node name as written: "worker"
	Run      spec.RunMode // goroutine or process
	PID      int          // process id of a process instance; 0 for a goroutine
	State    State
	Restarts int
	Started  time.Time // when the current (or last) run started
	Error    string    // the last failure, if any
	Sockets  []SocketStats
}

// Engine runs one topology. Create it with New, then call Run once.
type Engine struct {
	topo *spec.Topology
	opts Options
	log  hclog.Logger

	// Lock order: reloadMu, then mu, then an instance's mu (instance.mu).
	// Never take one while holding a lock later in that order, and never
	// wait for an instance (retire, awaitStart, a node's stop) under mu or
	// an instance's mu.
	mu      sync.Mutex
	insts   map[string]*instance
	zctx    *zmq4.Context // set while Run runs
	runCtx  context.Context
	running bool

	// retired are the instances reloads stopped and took out of insts:
	// their socket counters still count in the drain's accounting of what
	// was sent and received (drain.go). At most maxRetired, oldest first.
	retired []*instance

	changed chan struct{} // coalesced "some instance changed state"
	kill    chan struct{}
	killed  sync.Once
	wg      sync.WaitGroup // supervisors

	// Reloads (reload.go). reloadMu serializes Apply with itself and with
	// Run's start and stop, so that every instance a reload starts is
	// stopped by Run's shutdown. reloading keeps finished from judging a
	// half-applied instance set; stopping (under mu) refuses reloads once
	// Run stops; stopReq, closed when Run begins to stop, cuts a running
	// reload's drain short.
	reloadMu  sync.Mutex
	reloading bool
	stopping  bool
	stopReq   chan struct{}
	// crash records the instances that failed while running, for the
	// count of what they lost (crash.go).
	crash crashes
}

// New prepares an engine for t. It checks what can be checked before
// starting anything: every handler resolves to a factory.
func New(t *spec.Topology, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Registry == nil {
		opts.Registry = handler.Builtins
	}
	if opts.Kinds == nil {
		opts.Kinds = handler.Kinds
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	e := &Engine{
		topo:    t,
		opts:    opts,
		log:     opts.Logger,
		insts:   map[string]*instance{},
		changed: make(chan struct{}, 1),
		kill:    make(chan struct{}),
		stopReq: make(chan struct{}),
	}
	var errs []error
	for _, n := range t.Nodes {
		in, err := e.newInstance(n, t)
		// A handlerStartError fails this node's first attempt (logged
		// then), not the whole topology.
		var serr *handlerStartError
		if err != nil && !errors.As(err, &serr) {
			errs = append(errs, err)
			continue
		}
		in.initial = true
		e.insts[n.Name] = in
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// factory finds the factory of a node's handler.
func (e *Engine) factory(n *spec.Node) (handler.Factory, error) {
	switch n.Handler.Kind {
	case spec.HandlerBuiltin, "":
		f, ok := e.opts.Registry.Lookup(n.Handler.Name)
		if !ok {
			return nil, fmt.Errorf("node %q: unknown handler %q", n.Name, n.Handler.Name)
		}
		return f, nil
	case spec.HandlerExec, spec.HandlerPlugin, spec.HandlerWasm:
		f, ok := e.opts.Kinds.Lookup(string(n.Handler.Kind))
		if !ok {
			return nil, fmt.Errorf("node %q: %s handlers are not available in this build", n.Name, n.Handler.Kind)
		}
		return f, nil
	case spec.HandlerCommand:
		return nil, nil // a command owns its sockets; it has no handler
	}
	return nil, fmt.Errorf("node %q: unknown handler kind %q", n.Name, n.Handler.Kind)
}

// Grace is the drain grace in effect.
func (e *Engine) Grace() time.Duration { return e.opts.Grace }

// Kill makes a running Run stop at once: no drain, no waiting for lingering
// messages. For the CLI's second signal.
func (e *Engine) Kill() {
	e.killed.Do(func() { close(e.kill) })
}

func (e *Engine) isKilled() bool {
	select {
	case <-e.kill:
		return true
	default:
		return false
	}
}

func (e *Engine) notify() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// Run starts every instance and blocks until the topology completed (nil),
// ctx was cancelled and everything drained and stopped (nil), or — in both
// cases — with an error naming every instance that failed for good. It
// terminates the ZeroMQ context before returning and never hangs.
func (e *Engine) Run(ctx context.Context) error {
	// No reload while the instances start: each is started exactly once.
	e.reloadMu.Lock()
	e.mu.Lock()
	unlock := func() {
		e.mu.Unlock()
		e.reloadMu.Unlock()
	}
	if e.running || e.zctx != nil || e.stopping {
		unlock()
		return errors.New("engine: Run called twice")
	}
	for _, name := range e.sortedNames() {
		if err := e.insts[name].runnable(); err != nil {
			unlock()
			return err
		}
	}
	zctx, err := zsock.NewContext()
	if err != nil {
		unlock()
		return err
	}
	e.zctx = zctx
	e.running = true
	// Instances run under their own context: on cancel the engine decides
	// in which order they stop.
	runCtx, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	e.runCtx = runCtx
	insts := e.sortedInstances()
	completing := 0
	for _, in := range insts {
		if in.completes {
			completing++
		}
	}
	e.log.Info("starting topology", "name", e.topo.Name, "instances", len(insts), "completing", completing)
	waves := runWaves(insts)
	for i, wave := range waves {
		for _, in := range wave {
			if in.proc == nil && i < len(waves)-1 {
				in.opening = newOpening()
			}
			e.startInstance(in)
		}
		if i < len(waves)-1 {
			// Not under e.mu: Status and taps go on meanwhile; reloads
			// still wait (reloadMu).
			e.mu.Unlock()
			awaitOpen(ctx, wave)
			e.log.Debug("start wave open", "wave", i, "instances", len(wave))
			e.mu.Lock()
		}
	}
	unlock()

	reason := ""
	crashTick := time.NewTicker(crashCheckEvery)
	defer crashTick.Stop()
	for reason == "" {
		select {
		case now := <-crashTick.C:
			reason = e.checkCrashes(now)
		case <-ctx.Done():
			reason = "stop requested"
			if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
				reason = c.Error() // "signal interrupt", "ztopo down"
			}
		case <-e.kill:
			reason = "killed"
		case <-e.changed:
			reason = e.finished()
		}
	}
	// A reload in progress ends first (its drain is cut short), and none
	// starts after: shutdown sees the final instance set.
	close(e.stopReq)
	e.reloadMu.Lock()
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	e.reloadMu.Unlock()
	e.log.Info("stopping topology", "reason", reason, "grace", e.opts.Grace)
	loss := e.shutdown(reason == reasonDone, ctx.Done())
	stopAll()
	e.wg.Wait()

	e.mu.Lock()
	e.running = false
	e.mu.Unlock()
	e.terminate(zctx)

	var failed []string
	var errs []error
	for _, in := range e.sortedInstances() {
		if st, err := in.final(); st == StateFailed {
			failed = append(failed, in.spec.Name)
			errs = append(errs, fmt.Errorf("node %q failed: %v", in.spec.Name, err))
		}
	}
	if len(errs) > 0 {
		e.log.Error("topology ended with failed nodes", "failed", strings.Join(failed, ","))
		if loss != nil {
			errs = append(errs, loss)
		}
		return errors.Join(errs...)
	}
	if loss != nil {
		e.log.Error("topology stopped with messages lost", "lost", loss.Lost, "drain_cut_short", loss.CutShort)
		return loss
	}
	e.log.Info("topology stopped", "name", e.topo.Name)
	return nil
}

// reasonDone is Run's reason to stop when the topology completed.
const reasonDone = "every completing node is done"

// finished tells whether Run is done waiting: every completing instance
// completed (or failed for good), or nothing runs any more.
func (e *Engine) finished() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reloading {
		return "" // Apply notifies again when it is done
	}
	completing, done, live := 0, 0, 0
	for _, name := range e.sortedNames() {
		in := e.insts[name]
		in.mu.Lock()
		st, cannot := in.st, in.cannotStart
		in.mu.Unlock()
		switch {
		case cannot:
			return fmt.Sprintf("node %s cannot start", name)
		case in.completes && st == StateFailed:
			// What it was to complete will not happen: the others would
			// wait for ever (compose's --abort-on-container-exit).
			return fmt.Sprintf("node %s failed for good; the topology cannot complete", name)
		}
	}
	for _, in := range e.insts {
		st := in.state()
		terminal := st == StateCompleted || st == StateFailed || st == StateStopped
		if !terminal {
			live++
		}
		if in.completes {
			completing++
			if terminal {
				done++
			}
		}
	}
	switch {
	case completing > 0 && done == completing:
		return reasonDone
	case live == 0 && len(e.insts) > 0:
		return "no node is running"
	}
	return ""
}

// terminate ends the context, waiting at most for the drain linger of
// completed nodes (a little less when killed).
func (e *Engine) terminate(zctx *zmq4.Context) {
	done := make(chan error, 1)
	go func() { done <- zctx.Term() }()
	limit := e.opts.Grace + 2*time.Second
	if e.isKilled() {
		limit = 200 * time.Millisecond
	}
	select {
	case err := <-done:
		if err != nil {
			e.log.Warn("zeromq context termination failed", "error", err)
		}
	case <-time.After(limit):
		e.log.Warn("zeromq context still terminating; giving up on undelivered messages", "waited", limit)
	}
	e.mu.Lock()
	e.zctx = nil
	e.mu.Unlock()
}

func (e *Engine) sortedNames() []string {
	names := make([]string, 0, len(e.insts))
	for n := range e.insts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sortedInstances returns the instances by name; e.mu must be held or the
// set must not change concurrently.
func (e *Engine) sortedInstances() []*instance {
	var out []*instance
	for _, n := range e.sortedNames() {
		out = append(out, e.insts[n])
	}
	return out
}

// Status describes every instance, sorted by name.
func (e *Engine) Status() []InstanceStatus {
	e.mu.Lock()
	insts := e.sortedInstances()
	e.mu.Unlock()
	out := make([]InstanceStatus, 0, len(insts))
	for _, in := range insts {
		out = append(out, in.status())
	}
	return out
}

// Topology returns the topology the engine runs: the one it was built
// from, or the last one Apply applied (with the previous definition of any
// node whose new one failed and was rolled back).
func (e *Engine) Topology() *spec.Topology {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.topo
}
