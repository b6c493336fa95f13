package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ztopo/ztopo/runtime/procnode"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// Messages lost to a crash. When an instance fails (a process node's child
// killed, a handler's panic), what libzmq queued for it and what its
// handler held are gone: ZeroMQ has no way back for them. The engine
// cannot tell at the moment of the crash how many that was — messages are
// still on their way along every edge — but the edge counts of drain.go
// tell once the topology is quiet: what was sent into an edge and received
// by no node. So after a crash the engine waits for the topology to go
// quiet (no counter moving for crashSettle, no handler holding a message,
// no instance restarting or stalled) and then logs one line with
// the count. If that leaves a batch unable to complete — every producer is
// done, a completing node still waits for what will never come — the run
// ends with that Loss (exit status 3) instead of waiting for ever.
//
// A process node's counters reach the engine once a second, and a killed
// child sends no final report: those of its last run can be up to a second
// old. For a crashed relay (forward, echo, upper: one message out for one
// in), what it received and passed on after its last report shows as a
// surplus on the edge it sends into (received there, not sent, by the
// counts) and as a deficit on the edge it receives from; the accounting
// moves the surplus over, and adds what the relay held at its last report
// (in − out), which is lost with it. For a relay the count is then exact.

// crashSettle is how long the counters must stay still after a crash before
// the engine counts what it lost: longer than a process node's report
// interval, so that a still figure means a still node.
const crashSettle = 3 * procnode.StatsInterval

// crashCheckEvery is how often Run looks for the quiet after a crash.
const crashCheckEvery = 250 * time.Millisecond

// crashes is the engine's record of instances that failed while running.
type crashes struct {
	mu      sync.Mutex
	all     map[*instance]bool // every instance that crashed in this run
	held    map[*instance]uint64
	pending []string  // crashed instances not reported yet, by name
	fp      [2]uint64 // Σ in and Σ out of every counter when the quiet began
	since   time.Time // when it began; zero when not quiet
}

// noteCrash records that in's attempt failed; relay tells what its last
// run's counters say it held (process relays only).
func (e *Engine) noteCrash(in *instance) {
	held := uint64(0)
	if in.proc != nil && !in.proc.command && isRelay(in.spec) {
		held = heldByRelay(in.spec, in.proc.r.LastRun())
	}
	c := &e.crash
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.all == nil {
		c.all, c.held = map[*instance]bool{}, map[*instance]uint64{}
	}
	c.all[in] = true
	c.held[in] += held
	c.pending = append(c.pending, in.name())
	c.since = time.Time{}
}

// isRelay tells whether n runs a reactive relay, which holds what it
// received and did not send.
func isRelay(n *spec.Node) bool {
	b, _ := n.Handler.Builtin()
	return b.Relay && b.Reactive
}

// heldByRelay is what a relay had received and not sent, by the counters
// of one run.
func heldByRelay(n *spec.Node, counts map[string]zsock.StatsSnapshot) uint64 {
	var in, out uint64
	for _, s := range n.Sockets {
		c := counts[s.Name]
		switch s.EffectiveRole() {
		case spec.RoleIn:
			in += c.MsgsIn
		case spec.RoleOut:
			out += c.MsgsOut
		default:
			in += c.MsgsIn
			out += c.MsgsOut
		}
	}
	if in > out {
		return in - out
	}
	return 0
}

// crashed returns the instances that crashed and what each held.
func (e *Engine) crashed() (map[*instance]bool, map[*instance]uint64) {
	c := &e.crash
	c.mu.Lock()
	defer c.mu.Unlock()
	all := make(map[*instance]bool, len(c.all))
	held := make(map[*instance]uint64, len(c.held))
	for in := range c.all {
		all[in] = true
	}
	for in, n := range c.held {
		held[in] = n
	}
	return all, held
}

// lossByGroup is what each edge group lost (sent into it and received by
// no node), after moving the surplus of crashed process relays' stale
// counters back to the group they received from (see the package comment
// above).
func lossByGroup(groups []*edgeGroup, crashed map[*instance]bool) map[*edgeGroup]uint64 {
	q := make(map[*edgeGroup]uint64, len(groups))
	for _, g := range groups {
		q[g] = g.queued()
	}
	for in := range crashed {
		if in.proc == nil || in.proc.command || !isRelay(in.spec) {
			continue
		}
		var surplus uint64
		var from []*edgeGroup
		for _, g := range groups {
			sends, recvs := false, false
			for _, end := range g.ends {
				if end.in != in {
					continue
				}
				if end.recv {
					recvs = true
				}
				if !end.recv || end.pair {
					sends = true
				}
			}
			if sends && !recvs {
				surplus += g.surplus()
			}
			if recvs && !sends {
				from = append(from, g)
			}
		}
		for _, g := range from {
			d := min(surplus, q[g])
			q[g] -= d
			surplus -= d
		}
	}
	return q
}

// surplus is Σ received − Σ sent over the group's sockets when positive:
// what its receivers got that its senders' counters do not show.
func (g *edgeGroup) surplus() uint64 {
	out, in := g.sums()
	if in > out {
		return in - out
	}
	return 0
}

// checkCrashes is Run's look, every crashCheckEvery, for the quiet after a
// crash: it logs what the crash lost, once, and returns Run's reason to
// stop when a batch can no longer complete ("" otherwise).
func (e *Engine) checkCrashes(now time.Time) string {
	c := &e.crash
	c.mu.Lock()
	pending := len(c.pending) > 0
	c.mu.Unlock()
	if !pending {
		return ""
	}
	e.mu.Lock()
	if e.reloading || e.stopping {
		e.mu.Unlock()
		return ""
	}
	insts := e.sortedInstances()
	all := append(append([]*instance(nil), insts...), e.retired...)
	e.mu.Unlock()

	quiet := true
	var fp [2]uint64
	for _, in := range all {
		// Restarting ends within its backoff; a stalled node holds
		// messages it will pass on when it resumes. A node starting
		// takes none (a restarted sync client may wait for ever).
		switch in.state() {
		case StateRestarting, StateStalled:
			quiet = false
		}
		if in.inFlight() > 0 {
			quiet = false
		}
		for _, s := range in.counters() {
			fp[0] += s.MsgsIn
			fp[1] += s.MsgsOut
		}
	}
	c.mu.Lock()
	if !quiet || c.since.IsZero() || fp != c.fp {
		c.fp, c.since = fp, now
		if !quiet {
			c.since = time.Time{}
		}
		c.mu.Unlock()
		return ""
	}
	if now.Sub(c.since) < crashSettle {
		c.mu.Unlock()
		return ""
	}
	names := c.pending
	c.pending = nil
	c.mu.Unlock()

	crashed, held := e.crashed()
	groups := edgeGroups(all)
	q := lossByGroup(groups, crashed)
	var lost uint64
	var where []string
	for _, g := range groups {
		if q[g] > 0 && !g.receiversCompleted() {
			lost += q[g]
			where = append(where, fmt.Sprintf("%s: %d", g.name(), q[g]))
		}
	}
	for in, n := range held {
		if n > 0 {
			lost += n
			where = append(where, fmt.Sprintf("%s (in its handler when it crashed): %d", in.name(), n))
		}
	}
	sort.Strings(names)
	names = dedupe(names)
	if lost == 0 {
		e.log.Info("a node crashed; no message was lost with it", "crashed", strings.Join(names, ","))
		return ""
	}
	sort.Strings(where)
	e.log.Warn("messages lost when a node crashed", "crashed", strings.Join(names, ","), "count", lost, "where", strings.Join(where, "; "))
	if !batchStuck(insts) {
		return ""
	}
	return fmt.Sprintf("%d messages were lost when %s crashed; the batch cannot complete", lost, strings.Join(names, ","))
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// batchStuck tells whether a quiet topology is a batch that will not
// complete: some completing instance has not, and no producer runs.
func batchStuck(insts []*instance) bool {
	waiting := false
	for _, in := range insts {
		st := in.state()
		if in.producer && !terminal(st) && st != StateCompleted {
			return false
		}
		if in.completes && !terminal(st) && st != StateCompleted {
			waiting = true
		}
	}
	return waiting
}
