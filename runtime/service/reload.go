package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/spec"
)

// errStopping answers a reload asked for while the topology stops.
var errStopping = errors.New("the topology is stopping")

// reloader is the latest-value queue of reload requests: file events,
// SIGHUP and `ztopo reload` all land here. kick holds at most one token, so
// a burst of requests while a reload runs gives one more reload, of the
// file as it is by then. Callers that want the result (ztopo reload) leave
// a reply channel, answered by the first reload that starts after their
// request.
type reloader struct {
	kick chan struct{}
	done chan struct{} // closed when the loop has ended

	mu      sync.Mutex
	waiters []chan<- reloadOutcome
}

type reloadOutcome struct {
	result *control.ReloadReply
	err    error
}

func newReloader() *reloader {
	return &reloader{kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (r *reloader) request(reply chan<- reloadOutcome) {
	if reply != nil {
		r.mu.Lock()
		r.waiters = append(r.waiters, reply)
		r.mu.Unlock()
	}
	select {
	case r.kick <- struct{}{}:
	default: // a reload is pending already; it will read the latest file
	}
}

func (r *reloader) take() []chan<- reloadOutcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.waiters
	r.waiters = nil
	return w
}

// RequestReload asks for a reload without waiting for it (a file event,
// SIGHUP): requests made while one is pending are one reload.
func (s *Service) RequestReload() { s.rl.request(nil) }

// Reload is the control socket's reload: it goes through the reload loop
// like any other request and answers with that reload's result.
func (s *Service) Reload() (*control.ReloadReply, error) {
	reply := make(chan reloadOutcome, 1)
	s.rl.request(reply)
	select {
	case out := <-reply:
		return out.result, out.err
	case <-s.rl.done:
		return nil, errStopping
	}
}

// RunReloads serves reload requests, one at a time, until ctx is done.
// Requests made before the engine started wait for it: there is nothing
// to apply them to yet. Once it returns, Reload answers at once that the
// topology is stopping.
func (s *Service) RunReloads(ctx context.Context) {
	defer close(s.rl.done)
	select {
	case <-ctx.Done():
		return
	case <-s.engineStarted:
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.rl.kick:
		}
		waiters := s.rl.take()
		res, err := s.reload(ctx)
		for _, w := range waiters {
			w <- reloadOutcome{res, err}
		}
	}
}

// reload is the one reload path (STYLE 10): load and validate; an invalid
// file is rejected with every diagnostic logged and the topology left
// alone; an unchanged one is skipped; otherwise the plan is logged and
// applied, and one summary line says how it went.
func (s *Service) reload(ctx context.Context) (*control.ReloadReply, error) {
	start := time.Now()
	log := s.log.Named("reload")
	cur := s.topo.Load()
	res := &control.ReloadReply{File: cur.File}
	finish := func(result string) {
		res.Result = result
		res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	}
	if s.stopCtx.Err() != nil {
		finish(control.ReloadRejected)
		return res, errStopping
	}

	t, ds := spec.Load(s.file, s.load)
	for _, d := range ds {
		res.Diagnostics = append(res.Diagnostics, d.String())
		if d.Severity == spec.Error {
			log.Error(d.String())
		} else {
			log.Warn(d.String())
		}
	}
	if t == nil {
		s.reloads.rejected.Add(1)
		finish(control.ReloadRejected)
		log.Error("reload rejected, the running topology is unchanged", "file", s.file, "errors", countErrors(ds))
		return res, fmt.Errorf("%s is invalid; the running topology is unchanged", s.file)
	}
	if t.Name != cur.Name {
		s.reloads.rejected.Add(1)
		msg := spec.Diag{Pos: t.NamePos, Msg: fmt.Sprintf("the topology name cannot change while it runs (%q to %q)", cur.Name, t.Name),
			Hint: "stop it and start it again, or undo the rename"}.String()
		res.Diagnostics = append(res.Diagnostics, msg)
		finish(control.ReloadRejected)
		log.Error("reload rejected, the running topology is unchanged", "file", s.file, "error", msg)
		return res, errors.New(msg)
	}

	// Apply plans (spec.Diff against what runs), logs each node it touches
	// and the reload's summary line; an empty plan touches nothing.
	eng := s.eng.Load() // set: reloads wait for the engine to start
	report, err := eng.Apply(ctx, t)
	if errors.Is(err, engine.ErrStopped) {
		finish(control.ReloadRejected)
		return res, errStopping
	}
	res.Plan = control.NewPlan(cur, t, report.Plan)
	logChanges(log, res.Plan)
	s.topo.Store(eng.Topology())
	if err != nil {
		s.reloads.failed.Add(1)
		finish(control.ReloadFailed)
		log.Error("reload failed", "error", err, "rolled_back", report.RolledBack)
		return res, fmt.Errorf("reload failed: %w", err)
	}
	s.reloads.applied.Add(1)
	if report.Plan.Empty() {
		finish(control.ReloadUnchanged)
	} else {
		finish(control.ReloadApplied)
	}
	return res, nil
}

func countErrors(ds spec.Diags) int {
	n := 0
	for _, d := range ds {
		if d.Severity == spec.Error {
			n++
		}
	}
	return n
}

// logChanges logs the field-level changes of a reload, one line per
// instance, as `ztopo plan` prints them.
func logChanges(log hclog.Logger, p *control.Plan) {
	names := make([]string, 0, len(p.Changes))
	for n := range p.Changes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := p.Changes[n]
		if len(c.Fields) == 0 && c.Reason == "" {
			continue
		}
		args := []any{"node", n}
		if c.Reason != "" {
			args = append(args, "why", c.Reason)
		}
		if len(c.Fields) > 0 {
			args = append(args, "changes", strings.Join(c.Fields, "; "))
		}
		log.Info("node definition changed", args...)
	}
}
