package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/builtin"
	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/runtime/supervise"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// defaultRestart applies to hand-built nodes whose Restart is zero; the spec
// loader always resolves one (these are its documented defaults).
var defaultRestart = spec.Restart{
	Policy:      spec.RestartOnFailure,
	MaxRestarts: 5,
	Within:      time.Minute,
	BackoffMin:  100 * time.Millisecond,
	BackoffMax:  5 * time.Second,
}

// instanceRunner runs one attempt of an instance: the seam between the
// supervisor and where the instance lives (a goroutine today; a child
// process with issue 4).
type instanceRunner interface {
	// run blocks until the attempt ends: nil when it completed, ctx's
	// error when stopped, another error when it failed.
	run(ctx context.Context) error
	// swap replaces the handler of the running attempt.
	swap(h any) error
	// pid is the process id, 0 for a goroutine.
	pid() int
}

// goroutineRunner runs an instance as a node.Node on the engine's context.
type goroutineRunner struct {
	n *node.Node
}

func (g *goroutineRunner) run(ctx context.Context) error { return g.n.Run(ctx) }
func (g *goroutineRunner) swap(h any) error              { g.n.SwapHandler(h); return nil }
func (g *goroutineRunner) pid() int                      { return 0 }

// instance is one supervised node instance.
type instance struct {
	e     *Engine
	log   hclog.Logger
	stats map[string]*zsock.Stats

	mu        sync.Mutex
	spec      *spec.Node
	topo      *spec.Topology // spec's topology, the handler's Env.Topo
	first     any            // the handler built by New, used by the first attempt
	completes bool
	st        State
	restarts  int
	started   time.Time
	lastErr   error
	runner    instanceRunner
	cancel    context.CancelFunc // stops this instance's supervisor
	done      chan struct{}      // closed when the supervisor returned
	producer  bool
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
	for _, s := range n.Sockets {
		in.stats[s.Name] = &zsock.Stats{}
	}
	if n.Handler.Kind == spec.HandlerCommand {
		return in, nil // refused by runnable, checked by Run
	}
	h, err := in.build(n, t)
	if err != nil {
		return nil, err
	}
	in.first = h
	in.completes = node.Completes(h)
	in.producer = isProducer(n, h)
	return in, nil
}

// runnable reports what keeps this instance from running in this build.
func (in *instance) runnable() error {
	switch {
	case in.spec.Handler.Kind == spec.HandlerCommand:
		return fmt.Errorf("node %q: command nodes are not supported yet (they run as processes)", in.spec.Name)
	case in.spec.Run == spec.RunProcess:
		return fmt.Errorf("node %q: run: process is not supported yet", in.spec.Name)
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
		return nil, fmt.Errorf("node %q: %w", n.Name, err)
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
	if _, ok := h.(*builtin.Generate); ok {
		return true
	}
	for _, s := range n.Sockets {
		role := s.Role
		if role == "" {
			role = node.DefaultRole(s.Type)
		}
		if role != spec.RoleOut {
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
	for _, so := range sp.Sockets {
		st := in.stats[so.Name]
		if st == nil {
			continue
		}
		snap := st.Snapshot()
		s.Sockets = append(s.Sockets, SocketStats{
			Name: so.Name, MsgsIn: snap.MsgsIn, MsgsOut: snap.MsgsOut,
			BytesIn: snap.BytesIn, BytesOut: snap.BytesOut, SendErrors: snap.SendErrors,
		})
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
		r = defaultRestart
	}
	lim := supervise.NewLimiter(r)
	for {
		in.mu.Lock()
		sp, topo := in.spec, in.topo
		h := in.first
		in.first = nil
		in.mu.Unlock()
		if h == nil {
			var err error
			if h, err = in.build(sp, topo); err != nil {
				in.log.Error("cannot build handler", "error", err)
				in.fail(err)
				return
			}
		}
		runner := &goroutineRunner{n: node.New(node.Config{
			Spec:        sp,
			Context:     in.e.zctx,
			Handler:     h,
			Logger:      in.log,
			Stats:       in.stats,
			Drain:       in.e.opts.Grace,
			OnRunning:   func() { in.setState(StateRunning) },
			OnCompleted: func() { in.setState(StateCompleted) },
			// Under "always" a completion is followed by a restart, so the
			// node must return; otherwise it keeps its queues flowing.
			HoldOnComplete: r.Policy != spec.RestartAlways,
		})}
		in.mu.Lock()
		in.runner = runner
		in.started = time.Now()
		in.st = StateStarting
		if late := in.first; late != nil {
			// A swap arrived while this attempt was being set up: the
			// node takes it before its first message.
			in.first = nil
			_ = runner.swap(late)
		}
		in.mu.Unlock()
		in.e.notify()

		err := runner.run(ctx)
		now := time.Now()
		if ctx.Err() != nil {
			if err != nil || in.state() != StateCompleted {
				in.setState(StateStopped)
			}
			return
		}
		failed := err != nil
		if failed {
			in.log.Error("node failed", "error", err)
			in.mu.Lock()
			in.lastErr = err
			in.mu.Unlock()
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
		in.mu.Lock()
		in.restarts = lim.Restarts()
		in.mu.Unlock()
		in.setState(StateRestarting)
		in.log.Info("restarting node", "in", delay, "restarts", lim.Restarts())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			in.setState(StateStopped)
			return
		case <-t.C:
		}
	}
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
	in.log.Info("handler swapped", "handler", describe(ref))
	return nil
}

func describe(ref spec.HandlerRef) string {
	switch ref.Kind {
	case spec.HandlerExec, spec.HandlerCommand:
		return fmt.Sprint(ref.Argv)
	case spec.HandlerPlugin:
		return ref.Path
	}
	return ref.Name
}
