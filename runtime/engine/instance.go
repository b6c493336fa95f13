package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/runtime/supervise"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// instanceRunner runs one attempt of an instance: the seam between the
// supervisor and where the instance lives (goroutineRunner, or
// processRunner for a child process).
type instanceRunner interface {
	// run blocks until the attempt ends: nil when it completed, ctx's
	// error when stopped, another error when it failed.
	run(ctx context.Context) error
	// swap replaces the handler of the running attempt.
	swap(h any) error
	// pid is the process id, 0 for a goroutine.
	pid() int
	// inFlight is how many messages the attempt holds inside its handler.
	inFlight() int64
	// dropped is how many messages it abandoned because it was stopped.
	dropped() int64
	// stopProducing asks a producer to stop sending and keep its sockets
	// open until stopped; false when the runner cannot.
	stopProducing() bool
	// countersLag is how far the attempt's counters may trail the
	// messages it moved.
	countersLag() time.Duration
	// freshCounters brings the attempt's counters up to date and reports
	// whether they now hold everything it moved (no lag to wait out).
	freshCounters() bool
}

// goroutineRunner runs an instance as a node.Node on the engine's context.
type goroutineRunner struct {
	n *node.Node
}

func (g *goroutineRunner) run(ctx context.Context) error { return g.n.Run(ctx) }
func (g *goroutineRunner) swap(h any) error              { g.n.SwapHandler(h); return nil }
func (g *goroutineRunner) pid() int                      { return 0 }
func (g *goroutineRunner) inFlight() int64               { return g.n.InFlight() }
func (g *goroutineRunner) dropped() int64                { return g.n.Dropped() }
func (g *goroutineRunner) stopProducing() bool           { g.n.StopProducing(); return true }
func (g *goroutineRunner) countersLag() time.Duration    { return g.n.CountersLag() }
func (g *goroutineRunner) freshCounters() bool           { return g.n.FreshCounters(freshBound) }

// freshBound bounds how long a drain sample waits for a proxied node's
// counters (a proxy answers in microseconds unless the machine is loaded).
const freshBound = 100 * time.Millisecond

// instance is one supervised node instance.
type instance struct {
	e     *Engine
	log   hclog.Logger
	stats map[string]*zsock.Stats
	// allow: the live allow lists of its CURVE server sockets (goroutine
	// nodes), which a reload widens in place (setAllow).
	allow map[string]*zsock.Allow

	mu        sync.Mutex // after Engine.reloadMu and Engine.mu (see Engine)
	spec      *spec.Node
	topo      *spec.Topology // spec's topology, the handler's Env.Topo
	first     any            // the handler built by New, used by the first attempt
	firstErr  error          // why New could not build it: the first attempt's failure
	completes bool
	st        State
	restarts  int
	started   time.Time
	lastErr   error
	runner    instanceRunner
	cancel    context.CancelFunc // stops this instance's supervisor
	done      chan struct{}      // closed when the supervisor returned
	producer  bool
	proc      *processRunner // process and command nodes; nil for a goroutine
	// initial: built by New for Run's first start (not by a reload): no
	// earlier instance of ours can hold what it binds. cannotStart is set
	// when its first attempt failed in a way no restart can mend (a port
	// another program holds): the topology stops (Engine.finished).
	initial     bool
	cannotStart bool
	// opening: set by Run for the first start of a goroutine instance,
	// done once its sockets are open or its first attempt ended
	// (runWaves).
	opening *opening

	// Restarts for an inproc peer (see bounce): attempts counts the runs
	// of this instance; cancelAttempt ends the current one; bounced says
	// why it was ended, and causes which instances' restarts led here (the
	// chain of restarts never goes back along itself).
	attempts      int
	cancelAttempt context.CancelFunc
	bounced       string
	causes        map[string]bool
	bounces       int
}

func (e *Engine) newInstance(n *spec.Node, t *spec.Topology) (*instance, error) {
	in := &instance{
		e:     e,
		spec:  n,
		topo:  t,
		log:   e.log.Named("node").With("node", n.Name),
		stats: map[string]*zsock.Stats{},
		st:    StateStarting,
	}
	if isProcess(n) {
		completes, producer, err := in.processTraits(n, t)
		if err != nil {
			return nil, err
		}
		in.completes, in.producer = completes, producer
		in.proc = in.newProcessRunner(n, t)
		return in, nil
	}
	for _, s := range n.Sockets {
		in.stats[s.Name] = &zsock.Stats{}
		if s.Curve != nil && s.Curve.Server {
			a, err := zsock.NewAllow(s.Curve)
			if err != nil {
				return nil, fmt.Errorf("node %q: socket %q: %w", n.Name, s.Name, err)
			}
			if in.allow == nil {
				in.allow = map[string]*zsock.Allow{}
			}
			in.allow[s.Name] = a
		}
	}
	h, err := in.build(n, t)
	if err != nil {
		if outOfProcess(n) && !errors.Is(err, handler.ErrPermanent) {
			// A plugin that did not complete its handshake: the instance
			// exists, and its first attempt fails with err (see New).
			in.firstErr = err
			in.producer = isProducer(n, nil)
			return in, &handlerStartError{err}
		}
		return nil, err
	}
	in.first = h
	in.completes = node.Completes(h)
	in.producer = isProducer(n, h)
	return in, nil
}

// buildError is a factory's error, named after the node for the callers
// that report it alone; the instance's own log and status use err.
type buildError struct {
	node string
	err  error
}

func (e *buildError) Error() string { return fmt.Sprintf("node %q: %v", e.node, e.err) }
func (e *buildError) Unwrap() error { return e.err }

// ownError is err without the node's name when it is a buildError.
func ownError(err error) error {
	var be *buildError
	if errors.As(err, &be) {
		return be.err
	}
	return err
}

// outOfProcess tells whether n's handler is a program of its own (exec,
// plugin), whose start can fail for reasons a restart may mend.
func outOfProcess(n *spec.Node) bool {
	return n.Handler.Kind == spec.HandlerExec || n.Handler.Kind == spec.HandlerPlugin
}

// handlerStartError is newInstance's error when the instance was made but
// its exec or plugin handler did not start (a plugin's handshake failed):
// New runs the instance anyway, and its first attempt fails with the error
// under the node's restart policy, so that one plugin does not keep every
// other node from starting. A reload treats it as any other error.
type handlerStartError struct{ err error }

func (e *handlerStartError) Error() string { return e.err.Error() }
func (e *handlerStartError) Unwrap() error { return e.err }

// runnable reports what keeps this instance from running with this
// engine's options.
func (in *instance) runnable() error {
	if in.proc != nil && !in.proc.command && in.e.opts.Self == "" {
		return fmt.Errorf("node %q: run: process needs the ztopo executable to re-execute (engine option Self)", in.spec.Name)
	}
	return nil
}

// build makes a fresh handler for n, a node of t.
func (in *instance) build(n *spec.Node, t *spec.Topology) (any, error) {
	f, err := in.e.factory(n)
	if err != nil {
		return nil, err
	}
	cfg := n.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	h, err := f(cfg, handler.Env{Node: n, Topo: t, Logger: in.log})
	if err != nil {
		return nil, &buildError{node: n.Name, err: err}
	}
	switch h.(type) {
	case handler.Handler, handler.Runner:
	default:
		return nil, fmt.Errorf("node %q: handler %q built a %T, neither a Handler nor a Runner", n.Name, n.Handler.Name, h)
	}
	return h, nil
}

// isProducer tells whether an instance originates messages: it is stopped
// first on shutdown, so that what it already sent can drain.
func isProducer(n *spec.Node, h any) bool {
	if p, ok := h.(handler.Producer); ok && p.Produces() {
		return true
	}
	for _, s := range n.Sockets {
		if s.EffectiveRole() != spec.RoleOut {
			return false
		}
	}
	return len(n.Sockets) > 0
}

func (in *instance) state() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st
}

func (in *instance) setState(st State) {
	in.mu.Lock()
	in.st = st
	in.mu.Unlock()
	in.e.notify()
}

func (in *instance) final() (State, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st, in.lastErr
}

func (in *instance) status() InstanceStatus {
	in.mu.Lock()
	s := InstanceStatus{
		Name:     in.spec.Name,
		Node:     in.spec.Base,
		Run:      in.spec.Run,
		State:    in.st,
		Restarts: in.restarts,
		Started:  in.started,
	}
	if s.Run == "" {
		s.Run = spec.RunGoroutine
	}
	if in.runner != nil {
		s.PID = in.runner.pid()
	}
	if in.lastErr != nil {
		s.Error = in.lastErr.Error()
	}
	sp := in.spec
	in.mu.Unlock()
	counters := in.counters()
	for _, so := range sp.Sockets {
		snap, ok := counters[so.Name]
		if !ok {
			continue
		}
		ss := SocketStats{
			Name: so.Name, MsgsIn: snap.MsgsIn, MsgsOut: snap.MsgsOut,
			BytesIn: snap.BytesIn, BytesOut: snap.BytesOut, SendErrors: snap.SendErrors,
			AuthFailures: snap.AuthFailures,
		}
		if so.Curve != nil {
			ss.Curve = "client"
			if so.Curve.Server {
				ss.Curve = "server"
			}
		}
		s.Sockets = append(s.Sockets, ss)
	}
	return s
}

// startInstance starts the instance's supervisor; e.mu is held.
func (e *Engine) startInstance(in *instance) {
	ctx, cancel := context.WithCancel(e.runCtx)
	in.mu.Lock()
	in.cancel = cancel
	in.done = make(chan struct{})
	in.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(in.done)
		defer in.opening.done()
		in.supervise(ctx)
	}()
}

// stop asks the instance to stop; wait waits for it, at most d.
func (in *instance) stop() {
	in.mu.Lock()
	c := in.cancel
	in.mu.Unlock()
	if c != nil {
		c()
	}
}

func (in *instance) wait(d time.Duration) bool {
	in.mu.Lock()
	done := in.done
	in.mu.Unlock()
	if done == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// supervise runs attempts of the instance under its restart policy.
func (in *instance) supervise(ctx context.Context) {
	in.mu.Lock()
	r := in.spec.Restart
	in.mu.Unlock()
	if r.Policy == "" {
		r = spec.DefaultRestart // a hand-built node: the loader's default
	}
	lim := supervise.NewLimiter(r)
	for attempt := 1; ; attempt++ {
		first := attempt == 1 && in.initial
		var runner instanceRunner = in.proc
		if in.proc == nil {
			in.mu.Lock()
			sp, topo := in.spec, in.topo
			h := in.first
			in.first = nil
			in.mu.Unlock()
			if h == nil {
				in.mu.Lock()
				err := in.firstErr
				in.firstErr = nil
				in.mu.Unlock()
				if err == nil {
					h, err = in.build(sp, topo)
				}
				if err != nil && (!outOfProcess(sp) || errors.Is(err, handler.ErrPermanent)) {
					in.log.Error("cannot build handler", "error", err)
					in.fail(err)
					return
				}
				if err != nil {
					// The plugin did not complete its handshake: a failed
					// attempt, under the node's restart policy.
					err = ownError(err)
					in.log.Error("handler did not start", "error", err)
					if !in.retryAfter(ctx, lim, r, err) {
						return
					}
					continue
				}
			}
			runner = &goroutineRunner{n: node.New(node.Config{
				Spec:        sp,
				Context:     in.e.zctx,
				Handler:     h,
				Logger:      in.log,
				Stats:       in.stats,
				Allow:       in.allow,
				Drain:       in.e.opts.Grace,
				OnOpen:      in.opening.done,
				OnRunning:   in.running,
				OnCompleted: func() { in.setState(StateCompleted) },
				// Under "always" a completion is followed by a restart, so the
				// node must return; otherwise it keeps its queues flowing.
				HoldOnComplete: r.Policy != spec.RestartAlways,
				NoBindRetry:    first,
				WatchPeers:     drainRelay(sp),
			})}
		}
		attempt, cancelAttempt := context.WithCancel(ctx)
		in.mu.Lock()
		in.runner = runner
		in.started = time.Now()
		in.st = StateStarting
		in.attempts++
		in.cancelAttempt = cancelAttempt
		if late := in.first; late != nil && in.proc == nil {
			// A swap arrived while this attempt was being set up: the
			// node takes it before its first message.
			in.first = nil
			_ = runner.swap(late)
		}
		in.mu.Unlock()
		in.e.notify()

		err := runner.run(attempt)
		cancelAttempt()
		in.opening.done() // a failed first attempt holds no one back
		now := time.Now()
		if ctx.Err() != nil {
			if err != nil || in.state() != StateCompleted {
				in.setState(StateStopped)
			}
			return
		}
		in.mu.Lock()
		why := in.bounced
		in.bounced = ""
		in.cancelAttempt = nil
		if why != "" && in.st != StateCompleted {
			// Ended by bounce, not by itself: at once again, outside the
			// restart limit.
			in.bounces++
			in.restarts = lim.Restarts() + in.bounces
			in.mu.Unlock()
			in.log.Info("restarting node", "reason", why)
			continue
		}
		in.causes = nil
		in.mu.Unlock()
		if why != "" {
			err = nil // it completed before the bounce reached it
		}
		failed := err != nil
		if failed && supervise.IsPermanent(err) {
			// A missing program, or one that cannot be executed: a
			// restart would meet the same error (a crash loop until the
			// limit), so the node fails now, under its name and path.
			err = fmt.Errorf("%w (not retried: the program cannot be executed until it is fixed)", err)
			in.log.Error("node cannot start", "error", err)
			in.fail(err)
			return
		}
		if failed && first && zsock.IsAddrInUse(err) {
			// Nothing of this topology held it before: another program
			// does, and retrying with backoff would only hide that.
			err = fmt.Errorf("%w (another program holds this endpoint)", err)
			in.log.Error("node cannot start", "error", err)
			in.mu.Lock()
			in.cannotStart = true
			in.mu.Unlock()
			in.fail(err)
			return
		}
		if failed && errors.Is(err, handler.ErrGiveUp) {
			// Its exec or plugin child was already restarted as the
			// policy allows: restarting the node would apply it twice.
			in.log.Error("node failed for good", "error", err)
			in.fail(err)
			return
		}
		if failed {
			in.log.Error("node failed", "error", err)
			in.mu.Lock()
			in.lastErr = err
			in.mu.Unlock()
			// What was queued for it is gone: counted once the
			// topology is quiet (crash.go).
			in.e.noteCrash(in)
		}
		restart, delay := lim.Next(failed, now)
		if !restart {
			switch {
			case !failed:
				in.setState(StateCompleted)
			case lim.Exhausted():
				err = fmt.Errorf("%w (restart limit reached: %d restarts within %v)", err, r.MaxRestarts, r.Within)
				in.log.Error("node failed for good", "error", err)
				in.fail(err)
			default:
				in.fail(err)
			}
			return
		}
		if !in.backoff(ctx, lim, delay) {
			return
		}
	}
}

// retryAfter handles an attempt that failed with err before it ran: it
// waits for the restart the policy grants and returns true, or fails the
// instance (or sees it stopped) and returns false.
func (in *instance) retryAfter(ctx context.Context, lim *supervise.Limiter, r spec.Restart, err error) bool {
	in.mu.Lock()
	in.lastErr = err
	in.mu.Unlock()
	restart, delay := lim.Next(true, time.Now())
	if !restart {
		if lim.Exhausted() {
			err = fmt.Errorf("%w (restart limit reached: %d restarts within %v)", err, r.MaxRestarts, r.Within)
			in.log.Error("node failed for good", "error", err)
		}
		in.fail(err)
		return false
	}
	return in.backoff(ctx, lim, delay)
}

// backoff counts a restart the policy granted, shows the instance as
// restarting and waits delay before it; false when ctx ended first (the
// instance is then stopped).
func (in *instance) backoff(ctx context.Context, lim *supervise.Limiter, delay time.Duration) bool {
	in.mu.Lock()
	in.restarts = lim.Restarts() + in.bounces
	in.mu.Unlock()
	in.setState(StateRestarting)
	in.log.Info("restarting node", "in", delay, "restarts", lim.Restarts())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		in.setState(StateStopped)
		return false
	case <-t.C:
		return true
	}
}

// running is OnRunning of every attempt. When the attempt is a restart of a
// goroutine instance, the inproc peers connected to what it binds must
// connect again.
func (in *instance) running() {
	in.mu.Lock()
	in.st = StateRunning
	again := in.attempts > 1 && in.proc == nil
	causes := in.causes
	in.causes = nil
	in.mu.Unlock()
	in.e.notify()
	if again {
		// Not from the node's goroutine, which must go on; the caller's
		// supervisor is in e.wg, so the count is not zero here.
		in.e.wg.Add(1)
		go func() {
			defer in.e.wg.Done()
			in.e.reconnectPeers(in, causes)
		}()
	}
}

// reconnectPeers restarts the live goroutine instances that connect to an
// inproc endpoint binder binds, now that binder runs again after a restart:
// libzmq dropped their connection with binder's old socket and never
// re-establishes an inproc one (tcp and ipc peers reconnect by themselves).
// causes are the instances whose restarts led to binder's: they are not
// restarted again, so that a cycle of inproc peers ends.
func (e *Engine) reconnectPeers(binder *instance, causes map[string]bool) {
	binder.mu.Lock()
	bn := binder.spec
	binder.mu.Unlock()
	eps := map[string]bool{}
	for _, ep := range inprocBinds(bn) {
		eps[ep] = true
	}
	if len(eps) == 0 {
		return
	}
	chain := map[string]bool{bn.Name: true}
	for c := range causes {
		chain[c] = true
	}
	e.mu.Lock()
	if !e.running || e.stopping || e.insts[bn.Name] != binder {
		e.mu.Unlock()
		return
	}
	var peers []*instance
	for name, in := range e.insts {
		if chain[name] || in.proc != nil {
			continue
		}
		in.mu.Lock()
		n := in.spec
		in.mu.Unlock()
		if _, ok := connectsTo(n, eps); ok {
			peers = append(peers, in)
		}
	}
	e.mu.Unlock()
	why := fmt.Sprintf("it connects over inproc to %s, which restarted (inproc connections are not re-established)", bn.Name)
	for _, p := range peers {
		p.bounce(why, chain)
	}
}

// bounce ends the current attempt of a live instance so that its
// supervisor starts the next one at once, outside the restart limit.
func (in *instance) bounce(why string, causes map[string]bool) {
	in.mu.Lock()
	c := in.cancelAttempt
	if c == nil || in.bounced != "" || (in.st != StateRunning && in.st != StateStarting && in.st != StateStalled) {
		in.mu.Unlock()
		return
	}
	in.bounced, in.causes = why, causes
	in.mu.Unlock()
	c()
}

func (in *instance) fail(err error) {
	in.mu.Lock()
	in.lastErr = err
	in.st = StateFailed
	in.mu.Unlock()
	in.e.notify()
}

// SwapHandler replaces the handler of a running instance without touching
// its sockets: the new handler is built from ref and cfg (n.Config's
// shape), the old one gets no further calls and is closed by the node.
// Later restarts of the instance use the new handler too.
func (e *Engine) SwapHandler(instance string, ref spec.HandlerRef, cfg map[string]any) error {
	e.mu.Lock()
	in := e.insts[instance]
	e.mu.Unlock()
	if in == nil {
		return fmt.Errorf("no node instance %q", instance)
	}
	if in.proc != nil {
		// Checked before building: an exec or plugin handler's factory
		// would start its processes here, in the parent.
		return fmt.Errorf("node %q: %w", instance, errProcessSwap)
	}
	in.mu.Lock()
	ns, topo := *in.spec, in.topo
	in.mu.Unlock()
	ns.Handler = ref
	ns.Config = cfg
	h, err := in.build(&ns, topo)
	if err != nil {
		return err
	}
	if err := in.swapTo(&ns, topo, h); err != nil {
		return err
	}
	in.log.Info("handler swapped", "handler", ref.Label())
	return nil
}
