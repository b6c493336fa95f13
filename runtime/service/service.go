// Package service is one running topology as `ztopo up` serves it: the
// engine, and what everyone outside asks of it while it runs. It is the
// control socket's Handler (status, reload, down, logs, restart, tap), the
// one reload path that file events, SIGHUP and `ztopo reload` all feed
// (STYLE 10 and 11), the rate sampler behind the RATE columns, the
// progress lines of a long batch, and the metrics, health and readiness
// answers.
//
// It lives apart from cmd/ztopo so that it can be tested without building
// and executing the CLI, and apart from engine because none of this is
// running instances: it is the running topology's service to its
// operators. cmd/ztopo keeps flags, signals, the process's run.Group, the
// HTTP listeners and exit codes; control keeps the wire and the replies'
// schema.
//
// Lifecycle: New, then Run (builds and runs the engine) next to
// RunReloads, RunRates and RunProgress, each in its own goroutine until
// the topology ends. Stop asks for the orderly stop, Kill for the forced
// one. Every exported method is safe for concurrent use; before Run has
// built the engine, the verbs that need it say the topology is starting.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/runtime/logbuf"
	"github.com/ztopo/ztopo/spec"
)

// KillBound is how long Run waits for the engine to return after Kill
// before leaving without it: children die with ztopo anyway (their
// parent-death signal), and the user asked for an exit now.
const KillBound = 2 * time.Second

// ErrAbandoned is Run's error when the engine did not return within
// KillBound of Kill.
var ErrAbandoned = errors.New("engine still stopping after a kill; left behind")

// Options configure a Service.
type Options struct {
	Logger hclog.Logger
	// Engine is how the engine is built; its Logger is set from Logger
	// when nil.
	Engine engine.Options
	// Load is how a reload reads the file again (--host, --env-file).
	Load spec.LoadOptions
	// Logs is the log kept for `ztopo logs`; nil: the logs verb says there
	// is none.
	Logs *logbuf.Ring
}

// Service is one running topology. Its zero value is not usable; see New.
type Service struct {
	log     hclog.Logger
	file    string // the topology file as given
	load    spec.LoadOptions
	eopts   engine.Options
	logs    *logbuf.Ring
	started time.Time

	// eng is nil until Run built it: building an engine already starts
	// plugin processes.
	eng atomic.Pointer[engine.Engine]

	topo atomic.Pointer[spec.Topology] // the definition running now

	// stopCtx is cancelled (with the reason) to stop the topology in
	// order; Run runs the engine under it.
	stopCtx context.Context
	stop    context.CancelCauseFunc

	killOnce sync.Once
	killed   chan struct{} // closed by Kill

	engineStarted chan struct{} // closed once the engine exists and runs

	reloads reloadCounts
	rl      *reloader
	rates   *rateSampler
	taps    taps
}

type reloadCounts struct{ applied, rejected, failed atomic.Uint64 }

var (
	_ control.Handler        = (*Service)(nil)
	_ control.LogsHandler    = (*Service)(nil)
	_ control.RestartHandler = (*Service)(nil)
	_ control.TapHandler     = (*Service)(nil)
)

// New prepares the service of t, loaded from file; nothing runs yet.
func New(t *spec.Topology, file string, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Engine.Logger == nil {
		opts.Engine.Logger = opts.Logger
	}
	if opts.Engine.Grace <= 0 {
		opts.Engine.Grace = engine.DefaultGrace
	}
	s := &Service{
		log:           opts.Logger,
		file:          file,
		load:          opts.Load,
		eopts:         opts.Engine,
		logs:          opts.Logs,
		started:       time.Now(),
		killed:        make(chan struct{}),
		engineStarted: make(chan struct{}),
		rl:            newReloader(),
	}
	s.rates = newRateSampler(s.Instances)
	s.topo.Store(t)
	s.stopCtx, s.stop = context.WithCancelCause(context.Background())
	return s
}

// Run builds the engine and runs the topology until it ends by itself
// (nil, or the engine's error: a node failed, messages were lost), is
// stopped (Stop, Down: nil once drained), or killed (Kill: the engine's
// error, or ErrAbandoned when it does not return within KillBound).
// Run is called once.
func (s *Service) Run() error {
	eng, err := engine.New(s.topo.Load(), s.eopts)
	if err != nil {
		return err
	}
	s.eng.Store(eng)
	if s.IsKilled() {
		eng.Kill() // the kill came while the engine was being built
	}
	close(s.engineStarted)
	done := make(chan error, 1)
	go func() { done <- eng.Run(s.stopCtx) }()
	select {
	case err := <-done:
		return err
	case <-s.killed:
	}
	select {
	case err := <-done:
		return err
	case <-time.After(KillBound):
		s.log.Warn("engine still stopping; exiting without it")
		return ErrAbandoned
	}
}

// Stop asks for the orderly stop (drain, then close), with the reason the
// log gives; it does not wait. Later calls keep the first reason.
func (s *Service) Stop(cause error) { s.stop(cause) }

// Kill stops the engine at once (the second signal).
func (s *Service) Kill() {
	s.killOnce.Do(func() {
		close(s.killed)
		if e := s.eng.Load(); e != nil {
			e.Kill()
		}
	})
}

// IsKilled reports whether Kill was called.
func (s *Service) IsKilled() bool {
	select {
	case <-s.killed:
		return true
	default:
		return false
	}
}

// Killed is closed by Kill.
func (s *Service) Killed() <-chan struct{} { return s.killed }

// StopContext is cancelled, with the reason, once the stop was asked for
// (Stop, Down).
func (s *Service) StopContext() context.Context { return s.stopCtx }

// EngineStarted is closed once Run has built the engine and started it.
func (s *Service) EngineStarted() <-chan struct{} { return s.engineStarted }

// Topology is the definition running now (after the last applied reload).
func (s *Service) Topology() *spec.Topology { return s.topo.Load() }

// Instances is the engine's status, empty before the engine exists.
func (s *Service) Instances() []engine.InstanceStatus {
	if e := s.eng.Load(); e != nil {
		return e.Status()
	}
	return nil
}

// Name is the topology name, for the control socket's ping and errors.
func (s *Service) Name() string { return s.topo.Load().Name }

// Down is the control socket's down: the same orderly stop as SIGTERM.
func (s *Service) Down() error {
	s.stop(errors.New("ztopo down"))
	return nil
}

// Logs is the control socket's logs: records from the log up keeps.
func (s *Service) Logs(req control.LogsRequest) (control.LogsReply, error) {
	if s.logs == nil {
		return control.LogsReply{}, errors.New("this topology keeps no log")
	}
	return control.RingLogs(s.logs, req), nil
}

// Status is the control socket's reply to ps and status.
func (s *Service) Status() control.StatusReply {
	t := s.topo.Load()
	insts := s.Instances()
	rates := s.rates.current()
	now := time.Now()
	st := control.StatusReply{
		Name:            t.Name,
		File:            t.File,
		PID:             os.Getpid(),
		State:           "running",
		Started:         s.started,
		UptimeSeconds:   now.Sub(s.started).Seconds(),
		GraceMS:         s.eopts.Grace.Milliseconds(),
		Reloads:         s.reloads.applied.Load(),
		ReloadsRejected: s.reloads.rejected.Load(),
		ReloadsFailed:   s.reloads.failed.Load(),
		Nodes:           make([]control.InstanceStatus, 0, len(insts)),
	}
	for _, in := range insts {
		ns := control.InstanceStatus{
			Name:     in.Name,
			Node:     in.Node,
			Run:      string(in.Run),
			PID:      in.PID,
			State:    string(in.State),
			Restarts: in.Restarts,
			Error:    in.Error,
			Sockets:  make([]control.SocketStatus, 0, len(in.Sockets)),
		}
		ns.ExpectIn, ns.ExpectOut = Expected(t.Node(in.Name))
		if (in.State == engine.StateRunning || in.State == engine.StateStalled || in.State == engine.StateStarting) && !in.Started.IsZero() {
			ns.UptimeSeconds = now.Sub(in.Started).Seconds()
		}
		if in.State == engine.StateFailed {
			st.State = "degraded"
		}
		for _, so := range in.Sockets {
			r := rates[rateKey{in.Name, so.Name}]
			ns.Sockets = append(ns.Sockets, withEndpoints(t, in.Name, control.SocketStatus{
				Name: so.Name, MsgsIn: so.MsgsIn, MsgsOut: so.MsgsOut,
				BytesIn: so.BytesIn, BytesOut: so.BytesOut, SendErrors: so.SendErrors,
				Curve: so.Curve, AuthFailures: so.AuthFailures,
				RateIn: r.in, RateOut: r.out,
			}))
			ns.MsgsIn += so.MsgsIn
			ns.MsgsOut += so.MsgsOut
			ns.RateIn += r.in
			ns.RateOut += r.out
		}
		st.Nodes = append(st.Nodes, ns)
	}
	switch {
	case s.stopCtx.Err() != nil:
		st.State = "stopping"
	case s.eng.Load() == nil:
		st.State = "starting"
	}
	return st
}

// withEndpoints adds the socket's type and resolved endpoints from t.
func withEndpoints(t *spec.Topology, inst string, s control.SocketStatus) control.SocketStatus {
	if n := t.Node(inst); n != nil {
		if so := n.Socket(s.Name); so != nil {
			s.Type, s.Bind, s.Connect = string(so.Type), so.Bind, so.Connect
			s.DropsUnseen = dropsUnseen(so)
		}
	}
	return s
}

// Expected returns what a node instance is to receive and send before it
// completes, 0 for unknown: a count sink's expect, a generate's count
// (issue 12 item 14: `ps` showed IN 100 for a sink stuck at 100 of 1000).
func Expected(n *spec.Node) (in, out int) {
	if n == nil {
		return 0, 0
	}
	b, _ := n.Handler.Builtin()
	if b.ExpectIn != "" {
		in, _ = n.Config[b.ExpectIn].(int)
	}
	if b.ExpectOut != "" {
		out, _ = n.Config[b.ExpectOut].(int)
	}
	return in, out
}

// dropsUnseen says why the messages a socket drops cannot be counted, or ""
// when libzmq reports them (as send errors, in SEND ERRORS). libzmq has no
// counter of its own drops: a PUB (or XPUB without xpub_nodrop) discards
// what a subscriber cannot take beyond the high-water mark, and a ROUTER
// without router_mandatory discards what is addressed to a peer it does
// not know, both without an error (issue 12 item 9).
func dropsUnseen(so *spec.Socket) string {
	opt := func(name string) bool {
		for _, o := range so.Options {
			if o.Name == name {
				v, ok := o.Value.(int)
				return ok && v != 0
			}
		}
		return false
	}
	switch {
	case so.Type == spec.PUB, so.Type == spec.XPUB && !opt("xpub_nodrop"):
		return "libzmq drops what a subscriber cannot take beyond sndhwm without reporting it: MSGS OUT counts what was published, not what each subscriber received"
	case so.Type == spec.ROUTER && !opt("router_mandatory"):
		return "libzmq drops messages to an unknown or departed peer without reporting them (router_mandatory: true makes them send errors)"
	}
	return ""
}

// errStarting is the answer of the verbs that need the engine before it
// exists.
var errStarting = errors.New("the topology is starting")

// engine returns the running engine, or errStarting.
func (s *Service) engine() (*engine.Engine, error) {
	if e := s.eng.Load(); e != nil {
		return e, nil
	}
	return nil, errStarting
}

// didYouMean is ` (did you mean "x"?)` for the candidate nearest to name,
// or "".
func didYouMean(name string, candidates []string) string {
	if c, ok := spec.Suggest(name, candidates); ok {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}
