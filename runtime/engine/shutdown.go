package engine

import (
	"strings"
	"time"

	"github.com/ztopo/ztopo/spec"
)

const (
	// drainSample is how often the drain looks at the socket counters, and
	// quietSamples how many unchanged looks in a row mean "drained".
	drainSample  = 50 * time.Millisecond
	quietSamples = 3
	// minLevelWait is the least a stop level is waited for, even past the
	// grace: a node's own stop is quick (it polls its control socket), this
	// only covers a handler's Close.
	minLevelWait = time.Second
)

// shutdown stops every instance in order: running producers stop
// producing, the drain waits for what is in flight, then the rest stop by
// data-flow level. Producers keep their sockets open through the drain (a
// goroutine producer stops sending and holds them, a completed one holds
// them anyway), so that what they queued still flows; a process or command
// producer is stopped first. The drain is bounded by Grace from the stop
// request; after a completion (natural) every step of progress — less work
// left than ever before — gives it another Grace, so that a slow pipeline
// finishes while a stuck handler still ends it. It returns what was lost,
// nil when nothing was.
func (e *Engine) shutdown(natural bool, stop <-chan struct{}) *Loss {
	deadline := time.Now().Add(e.opts.Grace)
	e.mu.Lock()
	insts := e.sortedInstances()
	e.mu.Unlock()

	if e.isKilled() {
		for _, in := range insts {
			in.stop()
		}
		return nil
	}

	e.mu.Lock()
	groups := edgeGroups(append(append([]*instance(nil), insts...), e.retired...))
	e.mu.Unlock()
	var producers []*instance
	for _, in := range insts {
		if in.producer && !terminal(in.state()) && in.state() != StateCompleted && !in.quiesce() {
			in.stop()
			producers = append(producers, in)
		}
	}
	for _, in := range producers {
		in.wait(max(time.Until(deadline), minLevelWait))
	}
	cut := false
	if needsDrain(insts) {
		e.log.Debug("draining")
		cut, deadline = e.drain(insts, groups, deadline, natural, stop)
	} else {
		e.log.Debug("no drain: nothing still running can take a message")
	}
	completed := map[*edgeGroup]bool{}
	for _, g := range groups {
		completed[g] = g.receiversCompleted()
	}
	// A share of a topology spread over hosts: its peers on other hosts
	// are not instances here, and what it sent them may still be queued.
	if e.Topology().Share != "" {
		e.awaitSent(deadline)
	}
	for _, level := range levels(insts) {
		for _, in := range level {
			in.stop()
		}
		for _, in := range level {
			if !in.wait(max(time.Until(deadline), minLevelWait)) {
				in.log.Warn("node is slow to stop")
			}
		}
	}
	if e.isKilled() {
		return nil
	}
	return e.account(groups, completed, insts, cut)
}

// quiesce makes a running goroutine producer stop producing while it keeps
// its sockets open; false when it cannot (a process or command node, or an
// instance between attempts), and the caller stops it instead.
func (in *instance) quiesce() bool {
	in.mu.Lock()
	r, st := in.runner, in.st
	in.mu.Unlock()
	if r == nil || in.proc != nil || (st != StateRunning && st != StateStarting) {
		return false
	}
	return r.stopProducing()
}

// drainRelay reports whether n runs a relay: a builtin whose only effect
// is what it sends on (spec.HandlerSchema.Relay).
func drainRelay(n *spec.Node) bool {
	b, _ := n.Handler.Builtin()
	return b.Relay
}

// needsDrain reports whether waiting for in-flight messages can still make
// a difference: whether some instance that is not done yet could consume
// one — a sink that counts or logs, an exec or plugin handler, a command, a
// peer outside the topology — directly or through running relays. When
// every completing node completed and only relays feeding completed nodes
// are left (a finished pipeline), the quiet wait would only cost its
// 150 ms. A signal that stops a topology with running sinks still drains.
func needsDrain(insts []*instance) bool {
	live := make([]bool, len(insts))
	useful := make([]bool, len(insts))
	for i, in := range insts {
		live[i] = !terminal(in.state())
		// A producer that stopped producing only holds its sockets open.
		useful[i] = live[i] && !in.producer && !drainRelay(in.spec)
	}
	for changed := true; changed; {
		changed = false
		for i, in := range insts {
			if live[i] && !useful[i] && relayMatters(in, insts, useful) {
				useful[i], changed = true, true
			}
		}
	}
	for i := range insts {
		if useful[i] {
			return true
		}
	}
	return false
}

// relayMatters reports whether what relay in sends can reach a useful
// instance or a peer outside the topology: a tcp or ipc bind with a peer
// the topology does not account for (outsidePeers), or a connect no
// instance binds.
func relayMatters(in *instance, insts []*instance, useful []bool) bool {
	for _, sa := range in.spec.Sockets {
		if sa.EffectiveRole() == spec.RoleIn {
			continue
		}
		for _, ep := range sa.Bind {
			if !strings.HasPrefix(ep, "inproc://") && outsidePeers(in, sa, insts) {
				return true
			}
		}
		for _, ep := range sa.Connect {
			bound := false
			for j, other := range insts {
				if other == in {
					continue
				}
				for _, sb := range other.spec.Sockets {
					for _, b := range sb.Bind {
						if spec.Meet(b, ep) {
							bound = true
							if useful[j] {
								return true
							}
						}
					}
				}
			}
			if !bound {
				return true
			}
		}
		// Peers connecting to an inproc bind are all in this process.
		for j, other := range insts {
			if other == in || !useful[j] {
				continue
			}
			for _, sb := range other.spec.Sockets {
				if shareEndpoint(sa, sb) {
					return true
				}
			}
		}
	}
	return false
}

// outsidePeers reports whether socket sa of relay in, bound on tcp or ipc,
// may have a peer outside the topology: true unless its peer monitor
// (zsock.Stats.Peers) counts no more connections than the topology's own
// sockets that connect to it and still hold their sockets open (every
// state but stopped and failed: a completed node keeps its sockets), and
// no connection it accepted ever ended (zsock.Stats.PeersLost). Then
// whatever the relay still passes on reaches only the topology's nodes,
// which relayMatters weighs. A count alone cannot tell whose connections
// it counts: one of the topology's that is down and reconnecting leaves
// room for an outside peer's. That takes an accepted connection that
// ended (a topology socket that connected twice has one, or counts one
// too many), and from then on the relay drains. An outside peer still
// goes unseen in the moment between its accept and its event, and while
// one of the topology's sockets has not connected at all yet.
func outsidePeers(in *instance, sa *spec.Socket, insts []*instance) bool {
	st := in.stats[sa.Name]
	if st == nil || in.proc != nil {
		return true
	}
	// Peers before PeersLost: a connection gone from the count is then
	// in PeersLost.
	peers, known := st.Peers()
	if !known || st.PeersLost() > 0 {
		return true
	}
	var inside int64
	for _, other := range insts {
		if other == in {
			continue
		}
		if s := other.state(); s == StateStopped || s == StateFailed {
			continue
		}
		for _, sb := range other.spec.Sockets {
			for _, c := range sb.Connect {
				for _, b := range sa.Bind {
					if spec.Meet(b, c) {
						inside++
						break
					}
				}
			}
		}
	}
	return peers > inside
}

func terminal(st State) bool {
	return st == StateCompleted || st == StateFailed || st == StateStopped
}

// drain waits until no handler holds a message and no socket counter
// moved for a few samples in a row (longer than a process node's report
// interval when there is one), or until the deadline, or the kill. With
// extend, each new low of the work left (drain.go: queued on counted edges
// plus held by handlers) moves the deadline to a Grace from
// then, until stop (a signal) closes: from then on at most a Grace. It
// reports whether it was cut short with work left, and the deadline it
// ended with.
func (e *Engine) drain(insts []*instance, groups []*edgeGroup, deadline time.Time, extend bool, stop <-chan struct{}) (bool, time.Time) {
	if !extend {
		stop = nil
	}
	last, quiet := uint64(0), 0
	best := ^uint64(0)
	for first := true; ; first = false {
		// Proxied nodes' counters are brought up to date first, so that
		// they need no longer a stillness than any other (node.FreshCounters);
		// those that cannot be are judged by their lag (quietNeeded).
		need := quietSamples
		for _, in := range insts {
			need = max(need, in.freshNeeded())
		}
		var total uint64
		for _, in := range insts {
			total += in.moved()
		}
		work := pendingWork(groups, insts)
		if work < best {
			best = work
			if extend {
				deadline = later(deadline, time.Now().Add(e.opts.Grace))
			}
		}
		var held int64
		for _, in := range insts {
			held += in.inFlight()
		}
		if !first && total == last && held == 0 {
			quiet++
			if quiet >= need {
				return false, deadline
			}
		} else {
			quiet = 0
		}
		last = total
		wait := min(drainSample, time.Until(deadline))
		if wait <= 0 {
			if work == 0 {
				e.log.Warn("drain grace expired with messages still moving", "grace", e.opts.Grace.String())
			} else {
				e.log.Warn("drain grace expired with messages still in flight", "in_flight", work, "grace", e.opts.Grace.String())
			}
			return true, deadline
		}
		select {
		case <-e.kill:
			return false, deadline
		case <-stop:
			stop, extend = nil, false
			if d := time.Now().Add(e.opts.Grace); d.Before(deadline) {
				deadline = d
			}
		case <-time.After(wait):
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// levels orders instances by data flow: an edge A→B when a socket of A
// sends (role out, or inout towards an in socket) to an endpoint a socket
// of B receives on. Level 0 has no incoming edge. Instances on a cycle end
// up together in a last level.
func levels(insts []*instance) [][]*instance {
	idx := map[*instance]int{}
	for i, in := range insts {
		idx[in] = i
	}
	indeg := make([]int, len(insts))
	out := make([][]int, len(insts))
	for i, a := range insts {
		for j, b := range insts {
			if i != j && flowsTo(a.spec, b.spec) {
				out[i] = append(out[i], j)
				indeg[j]++
			}
		}
	}
	var result [][]*instance
	done := make([]bool, len(insts))
	for left := len(insts); left > 0; {
		var level []int
		for i := range insts {
			if !done[i] && indeg[i] == 0 {
				level = append(level, i)
			}
		}
		if len(level) == 0 {
			var rest []*instance
			for i, in := range insts {
				if !done[i] {
					rest = append(rest, in)
				}
			}
			return append(result, rest)
		}
		var li []*instance
		for _, i := range level {
			done[i] = true
			left--
			li = append(li, insts[i])
			for _, j := range out[i] {
				indeg[j]--
			}
		}
		result = append(result, li)
	}
	return result
}

func flowsTo(a, b *spec.Node) bool {
	for _, sa := range a.Sockets {
		ra := sa.EffectiveRole()
		if ra == spec.RoleIn {
			continue
		}
		for _, sb := range b.Sockets {
			rb := sb.EffectiveRole()
			if rb == spec.RoleOut || (ra == spec.RoleInOut && rb == spec.RoleInOut) {
				continue
			}
			if shareEndpoint(sa, sb) {
				return true
			}
		}
	}
	return false
}

func shareEndpoint(a, b *spec.Socket) bool {
	match := func(binds, connects []string) bool {
		for _, x := range binds {
			for _, y := range connects {
				if spec.Meet(x, y) {
					return true
				}
			}
		}
		return false
	}
	return match(a.Bind, b.Connect) || match(b.Bind, a.Connect)
}
