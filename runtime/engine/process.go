package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/runtime/procnode"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// errProcessSwap is swap's error on a process instance: its handler lives
// in the child, so a handler change restarts the instance (Apply does so).
var errProcessSwap = errors.New("the handler runs in a child process and cannot be swapped in place; the node must restart")

// processRunner runs the attempts of a `run: process` or `command` instance
// as child processes (runtime/procnode). One procnode.Runner serves every
// attempt of the instance, so that its socket counters add up over restarts
// the way a goroutine node's do.
type processRunner struct {
	r       *procnode.Runner
	command bool // a command: no counters
}

func (p *processRunner) run(ctx context.Context) error { return p.r.Run(ctx) }
func (p *processRunner) swap(any) error                { return errProcessSwap }
func (p *processRunner) pid() int                      { return p.r.PID() }

// A process node's handler lives in its child, which reports counters
// only: the drain sees its in-flight messages through the edge counts.
func (p *processRunner) inFlight() int64     { return 0 }
func (p *processRunner) dropped() int64      { return 0 }
func (p *processRunner) stopProducing() bool { return false }

// countersLag: a process node reports its counters every
// procnode.StatsInterval, each a figure its own proxied sockets may trail
// by node.MaxCountersLag; a command's counters are ours, exact.
func (p *processRunner) countersLag() time.Duration {
	if p.command {
		return 0
	}
	return procnode.StatsInterval + node.MaxCountersLag
}

// stalled is OnStall of a process instance: a running instance whose
// child stalled shows as stalled until it runs again (procnode logs both).
func (in *instance) stalled(stalled bool, _ string) {
	in.mu.Lock()
	changed := false
	switch {
	case stalled && in.st == StateRunning:
		in.st, changed = StateStalled, true
	case !stalled && in.st == StateStalled:
		in.st, changed = StateRunning, true
	}
	in.mu.Unlock()
	if changed {
		in.e.notify()
	}
}

// isProcess tells whether n runs in a child process.
func isProcess(n *spec.Node) bool {
	return n.Run == spec.RunProcess || n.Handler.Kind == spec.HandlerCommand
}

// newProcessRunner prepares the child of a process instance; nothing starts
// before its first attempt.
func (in *instance) newProcessRunner(n *spec.Node, t *spec.Topology) *processRunner {
	return &processRunner{r: procnode.New(procnode.Config{
		Node:     n,
		Topology: t,
		Self:     in.e.opts.Self,
		Logger:   in.log,
		// The same bound as a goroutine node's drain: SIGTERM, then at
		// most Grace before SIGKILL.
		Grace:     in.e.opts.Grace,
		Drain:     in.e.opts.Grace,
		OnRunning: in.running,
		OnStall:   in.stalled,
		// As for goroutine nodes: a completed child keeps its sockets open
		// until the engine stops it, so that its last messages leave.
		OnCompleted:    func() { in.setState(StateCompleted) },
		HoldOnComplete: n.Restart.Policy != spec.RestartAlways,
		NoWatch:        in.e.opts.NoWatch,
	}), command: n.Handler.Kind == spec.HandlerCommand}
}

// processTraits learns what the engine must know of a process instance
// without starting anything in this process: whether it completes and
// whether it is a producer. A builtin handler is built (which checks its
// config too) and closed again. Exec and plugin handlers are not built here
// — their factories start processes; the child builds them — and count as
// reactive. A command completes when it exits 0, so it counts as
// completing: a topology with one ends when the program does.
func (in *instance) processTraits(n *spec.Node, t *spec.Topology) (completes, producer bool, err error) {
	switch n.Handler.Kind {
	case spec.HandlerCommand:
		if len(n.Handler.Argv) == 0 {
			return false, false, fmt.Errorf("node %q: command is empty", n.Name)
		}
		return true, isProducer(n, nil), nil
	case spec.HandlerExec, spec.HandlerPlugin, spec.HandlerWasm:
		return false, isProducer(n, nil), nil
	}
	h, err := in.build(n, t)
	if err != nil {
		return false, false, err
	}
	defer discard(h)
	return node.Completes(h), isProducer(n, h), nil
}

// counters returns the counters of each socket of the instance: the
// engine's own for a goroutine node; for a process node, what its child
// last reported (at most procnode.StatsInterval old); none for a command,
// whose sockets belong to the program.
func (in *instance) counters() map[string]zsock.StatsSnapshot {
	if in.proc != nil {
		return in.proc.r.Stats()
	}
	out := make(map[string]zsock.StatsSnapshot, len(in.stats))
	for name, st := range in.stats {
		out[name] = st.Snapshot()
	}
	return out
}

// freshCounters: only a command's counters are ours, exact.
func (p *processRunner) freshCounters() bool { return p.command }

// quietNeeded is how many drain samples in a row without a counter change
// mean that the instance has drained. Counters that trail the messages
// (a process node's reports, a proxied node's refreshes: countersLag) mean
// something only when still for longer than their lag.
func (in *instance) quietNeeded() int {
	var r instanceRunner = in.proc // fixed for the instance's life
	if in.proc == nil {
		in.mu.Lock()
		r = in.runner
		in.mu.Unlock()
	}
	if r == nil {
		return quietSamples
	}
	return int(r.countersLag()/drainSample) + quietSamples
}

// freshNeeded brings the instance's counters up to date where it can and
// returns how many still samples in a row it then needs: quietSamples when
// they are exact, quietNeeded when they may lag.
func (in *instance) freshNeeded() int {
	var r instanceRunner = in.proc
	if in.proc == nil {
		in.mu.Lock()
		r = in.runner
		in.mu.Unlock()
	}
	if r == nil || r.freshCounters() {
		return quietSamples
	}
	return int(r.countersLag()/drainSample) + quietSamples
}
