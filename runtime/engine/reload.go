package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/spec"
)

const (
	// startWait bounds how long Apply waits for a node it started to run
	// (past a bind that zsock retries for a while) before it calls the new
	// definition failed.
	startWait = 10 * time.Second
	// syncSettle is how long a node with a sync barrier must have been
	// starting, without failing, to count as started: its barrier may wait
	// for peers that come later, which is no failure of its definition.
	// Longer than zsock's bind retry, so that a bind failure shows first.
	syncSettle = 2500 * time.Millisecond
	// startPoll is how often Apply looks at the nodes it started.
	startPoll = 2 * time.Millisecond
)

// ErrStopped is Apply's error once Run is stopping or has returned.
var ErrStopped = errors.New("engine is stopping; reload ignored")

// Report is what one Apply did.
type Report struct {
	// Plan is spec.Diff(previous, new): Plan.Empty() when nothing changed.
	Plan spec.Plan
	// Failed lists the nodes whose new definition could not be applied
	// (its handler could not be built, it cannot run in this build, it did
	// not start), sorted by node. When it is not empty, the reload was not
	// applied at all: see RolledBack.
	Failed []NodeError
	// RolledBack lists, after a failed reload, every node of the plan that
	// runs its previous definition again: the changed, handler-only,
	// removed and dependent nodes (added ones are stopped again). If a
	// previous definition does not start either, it stays under its
	// supervisor (restart policy) and Failed says so; a node whose previous
	// handler cannot be built again is dropped, not in Engine.Topology.
	RolledBack []string
	// Dependents lists the instances restarted although the plan leaves
	// them unchanged (or only swaps their handler): each connects over
	// inproc to a node that stops, restarts or was rolled back, and libzmq
	// does not re-establish an inproc connection to a new binder. They are
	// drained and restarted after it, and counted as restarted. tcp and ipc
	// peers reconnect by themselves and are never restarted.
	Dependents []string
	Duration   time.Duration
}

// NodeError is the failure of one node of a reload.
type NodeError struct {
	Node string
	Err  error
}

func (e NodeError) Error() string {
	msg := e.Err.Error()
	// Errors of building a handler name their node already.
	if prefix := fmt.Sprintf("node %q: ", e.Node); !strings.HasPrefix(msg, prefix) {
		msg = prefix + msg
	}
	return msg
}
func (e NodeError) Unwrap() error { return e.Err }

// Err joins the node failures, or is nil.
func (r Report) Err() error {
	errs := make([]error, len(r.Failed))
	for i, f := range r.Failed {
		errs[i] = f
	}
	return errors.Join(errs...)
}

// Apply moves the running topology to t, which must be loaded and valid
// (the caller reports an invalid file and keeps the old topology). It is
// safe from any goroutine while Run runs; reloads are serialized. Before
// Run it only replaces what Run will start; once Run stops it returns
// ErrStopped.
//
// spec.Diff(current, t) decides: an empty plan does nothing. Otherwise, in
// this order: handler-only changes swap the handler in the node's atomic
// slot (sockets stay open; each message is answered by the old or the new
// handler), removed nodes and the old instances of changed nodes are
// drained and stopped, then added nodes and the new instances of changed
// nodes start (stop-before-start: an endpoint passes from an old instance
// to its replacement; zsock retries the bind while libzmq releases it).
// Unchanged instances are not touched, with one exception: an instance
// connected over inproc to a node that stops or restarts restarts with it
// (Report.Dependents), since libzmq never re-establishes an inproc
// connection to a new binder; tcp and ipc peers reconnect by themselves.
//
// Draining: a node being stopped keeps running until its socket counters
// stayed still for a few samples (messages it holds are passed on first),
// at most Grace; producers stop at once. See the package doc for what this
// can and cannot save.
//
// A handler-only change becomes a restart where no swap is possible: on a
// process node (its handler lives in another process), and on an instance
// that is not live (completed, failed or stopped), which the reload starts
// again with its new definition.
//
// A reload is all or nothing: a node whose handler cannot be built stops
// it before anything is touched; a node that does not start rolls every
// node of the plan back to its previous definition (Report.RolledBack;
// added nodes are stopped again), never leaving peers on a mixture of the
// two files. The error is Report.Err(), or ErrStopped or ctx's error when
// the reload did not run. Engine.Topology then describes what runs.
func (e *Engine) Apply(ctx context.Context, t *spec.Topology) (Report, error) {
	if t == nil {
		return Report{}, errors.New("engine: Apply needs a topology")
	}
	start := time.Now()
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	e.mu.Lock()
	old, running, stopping := e.topo, e.running, e.stopping
	e.mu.Unlock()
	if stopping {
		return Report{}, ErrStopped
	}
	rl := &reload{
		e: e, ctx: ctx, log: e.log.Named("reload"),
		old: old, new: t, plan: spec.Diff(old, t),
		oldNodes: byName(old), failed: map[string]error{},
		kept: map[string]bool{}, dropped: map[string]bool{}, why: map[string]string{},
	}
	if rl.plan.Empty() {
		rl.adopt()
		rl.log.Info("topology unchanged; nothing to reload", "unchanged", len(rl.plan.Unchanged))
		return Report{Plan: rl.plan, Duration: time.Since(start)}, nil
	}

	e.mu.Lock()
	e.reloading = true
	e.mu.Unlock()
	if running {
		rl.apply()
	} else {
		rl.applyIdle()
	}
	rl.adopt()
	e.mu.Lock()
	e.reloading = false
	e.mu.Unlock()
	// Completion may have changed: a completing node came or went.
	e.notify()

	rep := rl.report(time.Since(start))
	unchanged := len(rl.plan.Unchanged)
	for _, name := range rl.plan.Unchanged {
		if rl.why[name] != "" {
			unchanged--
		}
	}
	if rl.aborted {
		rl.log.Info("reload rolled back",
			"rolled_back", len(rep.RolledBack), "unchanged", unchanged,
			"failed", len(rep.Failed), "duration", rep.Duration)
		return rep, rep.Err()
	}
	args := []any{"started", rl.started, "stopped", rl.stopped, "restarted", rl.restarted,
		"swapped", rl.swapped, "unchanged", unchanged,
		"failed", len(rep.Failed), "duration", rep.Duration}
	if rl.allowed > 0 {
		args = append(args, "allow_updated", rl.allowed)
	}
	rl.log.Info("reload applied", args...)
	return rep, rep.Err()
}

// reload is the state of one Apply.
type reload struct {
	e        *Engine
	ctx      context.Context
	log      hclog.Logger
	old, new *spec.Topology
	plan     spec.Plan
	oldNodes map[string]*spec.Node

	failed  map[string]error
	kept    map[string]bool   // failed, running (or trying) its old definition
	dropped map[string]bool   // failed, running nothing
	why     map[string]string // restarts the plan does not name as such: why
	deps    []string          // instances restarted for an inproc peer
	// aborted: the reload was not applied (nothing touched) or rolled
	// back as a whole; the engine runs the old topology.
	aborted bool

	started, stopped, restarted, swapped, allowed int
}

// swapJob is a handler-only change: the instance keeps running.
type swapJob struct {
	in *instance
	n  *spec.Node
	h  any
}

// startJob starts a node instance: added (old nil) or the replacement of a
// changed one.
type startJob struct {
	n   *spec.Node
	old *instance
	in  *instance
}

func byName(t *spec.Topology) map[string]*spec.Node {
	m := map[string]*spec.Node{}
	if t != nil {
		for _, n := range t.Nodes {
			m[n.Name] = n
		}
	}
	return m
}

func (rl *reload) fail(name string, err error) {
	rl.log.Error("reload failed for node", "node", name, "error", err)
	rl.failed[name] = err
}

// prepare builds everything the plan needs before anything is stopped, so
// that a definition whose handler cannot be built never costs the running
// one: swaps for handler-only changes, new instances (with their first
// handler) for added and changed nodes. When any of it fails, prepare
// abandons the reload (nothing was touched yet) and ok is false.
func (rl *reload) prepare(live bool) (swaps []swapJob, starts []startJob, ok bool) {
	e := rl.e
	e.mu.Lock()
	current := make(map[string]*instance, len(e.insts))
	for name, in := range e.insts {
		current[name] = in
	}
	e.mu.Unlock()
	newNodes := byName(rl.new)

	var restarts []string
	for _, name := range rl.plan.HandlerOnly {
		in, n := current[name], newNodes[name]
		if in == nil {
			restarts = append(restarts, name)
			continue
		}
		if why := noSwap(in, n); why != "" {
			rl.why[name] = "handler change: " + why
			restarts = append(restarts, name)
			continue
		}
		h, err := in.build(n, rl.new)
		if err != nil {
			rl.fail(name, err)
			rl.kept[name] = true
			continue
		}
		swaps = append(swaps, swapJob{in: in, n: n, h: h})
	}
	restarts = append(restarts, rl.plan.Changed...)
	if live {
		going := map[string]bool{}
		for _, name := range append(append([]string(nil), restarts...), rl.plan.Removed...) {
			going[name] = true
		}
		candidates := append(append([]string(nil), rl.plan.Unchanged...), rl.plan.AllowOnly...)
		for _, j := range swaps {
			candidates = append(candidates, j.n.Name)
		}
		deps := rl.inprocDependents(going, candidates, newNodes)
		if len(deps) > 0 {
			kept := swaps[:0]
			for _, j := range swaps {
				if deps[j.n.Name] == "" {
					kept = append(kept, j)
					continue
				}
				discard(j.h)
			}
			swaps = kept
			for _, name := range candidates {
				if peer := deps[name]; peer != "" {
					rl.why[name] = fmt.Sprintf("it connects over inproc to %s, which restarts (inproc connections are not re-established)", peer)
					rl.deps = append(rl.deps, name)
					restarts = append(restarts, name)
				}
			}
			sort.Strings(rl.deps)
		}
	}
	sort.Strings(restarts)
	for _, name := range append(restarts, rl.plan.Added...) {
		n, old := newNodes[name], current[name]
		in, err := rl.e.newInstance(n, rl.new)
		if err == nil {
			if err = in.runnable(); err != nil {
				in.discard()
			}
		}
		if err != nil {
			rl.fail(name, err)
			if old != nil {
				rl.kept[name] = true
			} else {
				rl.dropped[name] = true
			}
			continue
		}
		starts = append(starts, startJob{n: n, old: old, in: in})
	}
	if len(rl.failed) > 0 {
		rl.abandon(swaps, starts)
		return nil, nil, false
	}
	return swaps, starts, true
}

// inprocDependents finds the instances among candidates that must restart
// because an instance that stops or restarts (going) binds an inproc
// endpoint they connect to: libzmq never re-establishes an inproc
// connection whose binder went away (tcp and ipc reconnect by themselves).
// It is transitive, since a dependent's restart drops the inproc
// connections to what it binds. The result maps each to the peer it
// follows.
func (rl *reload) inprocDependents(going map[string]bool, candidates []string, newNodes map[string]*spec.Node) map[string]string {
	bound := map[string]string{} // inproc endpoint -> the instance that binds it
	addBinds := func(n *spec.Node) {
		if n == nil {
			return
		}
		for _, ep := range inprocBinds(n) {
			bound[ep] = n.Name
		}
	}
	for name := range going {
		addBinds(rl.oldNodes[name])
	}
	deps := map[string]string{}
	for grew := len(bound) > 0; grew; {
		grew = false
		for _, name := range candidates {
			n := newNodes[name]
			if going[name] || deps[name] != "" || n == nil {
				continue
			}
			if peer, ok := connectsTo(n, bound); ok {
				deps[name] = peer
				addBinds(rl.oldNodes[name])
				grew = true
			}
		}
	}
	return deps
}

// noSwap says why a handler-only change of in cannot be a swap, or "".
func noSwap(in *instance, n *spec.Node) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.spec.Run == spec.RunProcess || n.Run == spec.RunProcess:
		return "the handler runs in a child process"
	case in.st == StateCompleted || in.st == StateFailed || in.st == StateStopped:
		return "the instance is " + string(in.st)
	}
	return ""
}

// apply runs the plan on a running engine. It is all or nothing: when a
// node's new definition cannot be built, nothing is touched; when one does
// not start, every node the reload stopped, restarted or added goes back to
// its previous definition (rollback), so that peers never run on a mixture
// of the old file and the new one (a sender moved to a new endpoint while
// its receiver stayed on the old one). Handler swaps happen last, once
// every start succeeded.
func (rl *reload) apply() {
	swaps, starts, ok := rl.prepare(true)
	if !ok {
		return
	}
	e := rl.e

	// Stop before start: what the old instances bound is free for their
	// replacements.
	var olds []*instance
	e.mu.Lock()
	for _, name := range rl.plan.Removed {
		if in := e.insts[name]; in != nil {
			olds = append(olds, in)
			rl.log.Info("stopping node", "node", name)
		}
	}
	for _, j := range starts {
		if j.old == nil {
			continue
		}
		olds = append(olds, j.old)
		if why := rl.why[j.n.Name]; why != "" {
			rl.log.Info("restarting node", "node", j.n.Name, "reason", why)
		} else {
			rl.log.Info("restarting node", "node", j.n.Name)
		}
	}
	e.mu.Unlock()
	e.retire(rl.ctx, olds)
	e.mu.Lock()
	for _, in := range olds {
		if e.insts[in.name()] == in {
			delete(e.insts, in.name())
			e.bury(in)
		}
	}
	e.mu.Unlock()

	errs := map[*instance]error{}
	for _, wave := range startWaves(starts) {
		e.mu.Lock()
		news := make([]*instance, len(wave))
		for i, j := range wave {
			if j.old == nil {
				rl.log.Info("starting node", "node", j.n.Name)
			}
			e.insts[j.n.Name] = j.in
			e.startInstance(j.in)
			news[i] = j.in
		}
		e.mu.Unlock()
		for in, err := range e.awaitStart(rl.ctx, news) {
			errs[in] = err
		}
	}
	if len(errs) > 0 {
		for _, j := range starts {
			if err, bad := errs[j.in]; bad {
				rl.fail(j.n.Name, err)
			}
		}
		for _, j := range swaps {
			discard(j.h)
		}
		rl.rollback(starts, olds)
		return
	}
	for _, j := range starts {
		if j.old == nil {
			rl.started++
		} else {
			rl.restarted++
		}
	}
	rl.stopped = len(rl.plan.Removed)
	rl.swap(swaps, true)
}

// swap gives each node of a handler-only change its new handler; logged:
// with a line each (a live reload).
func (rl *reload) swap(swaps []swapJob, logged bool) {
	for _, j := range swaps {
		if logged {
			rl.log.Info("swapping handler", "node", j.n.Name, "handler", j.n.Handler.Label())
		}
		if err := j.in.swapTo(j.n, rl.new, j.h); err != nil {
			// Only a process node refuses, and prepare made those restarts.
			discard(j.h)
			rl.fail(j.n.Name, err)
			rl.kept[j.n.Name] = true
			continue
		}
		rl.swapped++
	}
}

// abandon gives up a reload before anything was touched: every handler and
// instance prepare built is closed, every node keeps its definition.
func (rl *reload) abandon(swaps []swapJob, starts []startJob) {
	for _, j := range swaps {
		discard(j.h)
	}
	for _, j := range starts {
		j.in.discard()
	}
	rl.aborted = true
	rl.log.Error("reload not applied: every node keeps its previous definition", "failed", len(rl.failed))
}

// rollback puts back the topology as it was before a reload whose starts
// failed: the instances it started stop, the ones it stopped (olds: removed
// nodes and the old instances of changed ones) run again, as fresh
// instances of their previous definitions, and the inproc peers of those
// reconnect.
func (rl *reload) rollback(starts []startJob, olds []*instance) {
	e := rl.e
	rl.aborted = true
	rl.log.Error("reload failed: rolling every node back to its previous definition", "failed", len(rl.failed))
	// Drained like any node a reload stops: what a new instance that did
	// start already took is passed on.
	news := make([]*instance, len(starts))
	for i, j := range starts {
		news[i] = j.in
	}
	e.retire(rl.ctx, news)
	e.mu.Lock()
	for _, in := range news {
		if e.insts[in.name()] == in {
			delete(e.insts, in.name())
			e.bury(in)
		}
	}
	e.mu.Unlock()
	var back []startJob
	for _, old := range olds {
		old.mu.Lock()
		on, ot := old.spec, old.topo
		old.mu.Unlock()
		rb, err := e.newInstance(on, ot)
		if err != nil {
			rl.failed[on.Name] = fmt.Errorf("rollback: %v", err)
			rl.dropped[on.Name] = true
			continue
		}
		rl.log.Info("rolling back node", "node", on.Name)
		rl.kept[on.Name] = true
		back = append(back, startJob{n: on, in: rb})
	}
	var rollbacks []*instance
	for _, wave := range startWaves(back) {
		e.mu.Lock()
		news := make([]*instance, len(wave))
		for i, j := range wave {
			e.insts[j.n.Name] = j.in
			e.startInstance(j.in)
			news[i] = j.in
		}
		e.mu.Unlock()
		rollbacks = append(rollbacks, news...)
		for rb, err := range e.awaitStart(rl.ctx, news) {
			// It stays under its supervisor, restart policy and all.
			name := rb.name()
			rl.log.Error("rollback did not start", "node", name, "error", err)
			if prev := rl.failed[name]; prev != nil {
				rl.failed[name] = fmt.Errorf("%w; rollback: %v", prev, err)
			} else {
				rl.failed[name] = fmt.Errorf("rollback: %w", err)
			}
		}
	}
	rl.reconnect(rollbacks)
}

// reconnect restarts the instances connected over inproc to nodes that were
// rolled back: the failed new instance may have bound an inproc endpoint
// before it failed, and whoever connected to it lost the connection when it
// closed.
func (rl *reload) reconnect(rolledBack []*instance) {
	if len(rolledBack) == 0 {
		return
	}
	e := rl.e
	going := map[string]bool{}
	for _, rb := range rolledBack {
		going[rb.name()] = true
	}
	e.mu.Lock()
	current := map[string]*instance{}
	specs := map[string]*spec.Node{}
	var candidates []string
	for name, in := range e.insts {
		if going[name] {
			continue
		}
		in.mu.Lock()
		specs[name] = in.spec
		in.mu.Unlock()
		current[name] = in
		candidates = append(candidates, name)
	}
	e.mu.Unlock()
	sort.Strings(candidates)
	deps := rl.inprocDependents(going, candidates, specs)
	var olds, news []*instance
	for _, name := range candidates {
		peer := deps[name]
		if peer == "" {
			continue
		}
		old := current[name]
		old.mu.Lock()
		n, t := old.spec, old.topo
		old.mu.Unlock()
		in, err := e.newInstance(n, t)
		if err != nil {
			rl.fail(name, err)
			continue
		}
		rl.log.Info("restarting node", "node", name, "reason",
			fmt.Sprintf("it connects over inproc to %s, which was rolled back", peer))
		olds = append(olds, old)
		news = append(news, in)
		if !slices.Contains(rl.deps, name) && rl.why[name] == "" && !slices.Contains(rl.plan.Changed, name) && !slices.Contains(rl.plan.Added, name) {
			rl.deps = append(rl.deps, name)
		}
	}
	sort.Strings(rl.deps)
	e.retire(rl.ctx, olds)
	e.mu.Lock()
	for i, old := range olds {
		if e.insts[old.name()] == old {
			e.bury(old)
			e.insts[old.name()] = news[i]
			e.startInstance(news[i])
		} else {
			news[i].discard()
		}
	}
	e.mu.Unlock()
	errs := e.awaitStart(rl.ctx, news)
	for in, err := range errs {
		rl.fail(in.name(), err)
	}
	rl.restarted += len(news) - len(errs)
}

// startWaves orders start jobs so that a node connecting to an inproc
// endpoint that another started node binds starts after that node runs.
// libzmq unregisters a closed socket's inproc endpoints a moment after the
// close, in its reaper thread: a connect in that moment reaches the old
// socket and dies with it, whereas a connect once the new binder is bound
// (or before anyone is) is kept. Nodes on an inproc cycle start together.
func startWaves(starts []startJob) [][]startJob {
	binder := map[string]int{}
	for i, j := range starts {
		for _, ep := range inprocBinds(j.n) {
			binder[ep] = i
		}
	}
	after := make([][]int, len(starts))
	for i, j := range starts {
		for _, s := range j.n.Sockets {
			for _, ep := range s.Connect {
				if b, ok := binder[ep]; ok && b != i {
					after[i] = append(after[i], b)
				}
			}
		}
	}
	placed := make([]bool, len(starts))
	var waves [][]startJob
	for left := len(starts); left > 0; {
		var wave []int
		for i := range starts {
			if placed[i] {
				continue
			}
			ready := true
			for _, b := range after[i] {
				ready = ready && placed[b]
			}
			if ready {
				wave = append(wave, i)
			}
		}
		if len(wave) == 0 { // a cycle: the rest together
			for i := range starts {
				if !placed[i] {
					wave = append(wave, i)
				}
			}
		}
		jobs := make([]startJob, len(wave))
		for k, i := range wave {
			jobs[k] = starts[i]
		}
		for _, i := range wave {
			placed[i] = true
			left--
		}
		waves = append(waves, jobs)
	}
	return waves
}

// applyIdle applies the plan before Run: nothing runs yet, so instances
// are replaced, added and dropped; Run starts what is there.
func (rl *reload) applyIdle() {
	swaps, starts, ok := rl.prepare(false)
	if !ok {
		return
	}
	e := rl.e
	var gone []*instance
	defer func() {
		for _, in := range gone {
			in.discard()
		}
	}()
	rl.swap(swaps, false)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range rl.plan.Removed {
		if in := e.insts[name]; in != nil {
			gone = append(gone, in)
			delete(e.insts, name)
		}
	}
	for _, j := range starts {
		if j.old != nil {
			gone = append(gone, j.old)
			rl.restarted++
		} else {
			rl.started++
		}
		e.insts[j.n.Name] = j.in
	}
	rl.stopped = len(rl.plan.Removed)
}

// adopt makes the engine's topology what runs now: t, with the previous
// definition of the nodes kept after a failure and without the dropped
// ones. Instances left alone take their new (equal) definition, so that
// later restarts and Status follow the file.
func (rl *reload) adopt() {
	if rl.aborted {
		e := rl.e
		e.mu.Lock()
		e.topo = rl.old
		e.mu.Unlock()
		return
	}
	eff := *rl.new
	eff.Nodes = make([]*spec.Node, 0, len(rl.new.Nodes))
	for _, n := range rl.new.Nodes {
		switch {
		case rl.dropped[n.Name]:
		case rl.kept[n.Name] && rl.oldNodes[n.Name] != nil:
			eff.Nodes = append(eff.Nodes, rl.oldNodes[n.Name])
		default:
			eff.Nodes = append(eff.Nodes, n)
		}
	}
	e := rl.e
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range rl.plan.Unchanged {
		if in := e.insts[name]; in != nil {
			n := rl.new.Node(name)
			in.mu.Lock()
			in.spec, in.topo = n, rl.new
			in.mu.Unlock()
		}
	}
	// Widened allow lists: the ZAP handler reads them at the next
	// handshake; the sockets, and the clients let in, stay.
	for _, name := range rl.plan.AllowOnly {
		if in := e.insts[name]; in != nil {
			n := rl.new.Node(name)
			if err := in.setAllow(n, rl.new); err != nil {
				// Validation decoded these keys already: not seen.
				rl.log.Error("cannot update the allow list", "node", name, "error", err)
				continue
			}
			rl.allowed++
			rl.log.Info("allow list updated in place", "node", name)
		}
	}
	e.topo = &eff
}

func (rl *reload) report(d time.Duration) Report {
	rep := Report{Plan: rl.plan, Dependents: rl.deps, Duration: d}
	for name, err := range rl.failed {
		rep.Failed = append(rep.Failed, NodeError{Node: name, Err: err})
	}
	if rl.aborted {
		rep.Dependents = nil
		// Every node the plan touches keeps (or is back on) its previous
		// definition; added nodes are gone.
		seen := map[string]bool{}
		for _, list := range [][]string{rl.plan.Changed, rl.plan.HandlerOnly, rl.plan.Removed, rl.deps} {
			for _, name := range list {
				if !seen[name] && !rl.dropped[name] {
					seen[name] = true
					rep.RolledBack = append(rep.RolledBack, name)
				}
			}
		}
	} else {
		for name := range rl.failed {
			if rl.kept[name] && !rl.dropped[name] {
				rep.RolledBack = append(rep.RolledBack, name)
			}
		}
	}
	sort.Slice(rep.Failed, func(i, j int) bool { return rep.Failed[i].Node < rep.Failed[j].Node })
	sort.Strings(rep.RolledBack)
	return rep
}
