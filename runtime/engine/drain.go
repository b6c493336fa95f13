package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// Drain accounting. The drain on stop waits for the work left inside the
// topology, not only for counters that stopped moving: a handler that
// takes 300 ms per message leaves every counter still for 300 ms while it
// holds a message and dozens more wait in its queue. Two figures make the
// work visible:
//
//   - in hand: per goroutine instance, the messages its handler took and
//     has not answered or passed on (node.InFlight: the one a synchronous
//     handler works on, what an Async handler holds);
//   - queued: per edge group — the PUSH/PULL or PAIR sockets of the
//     topology joined by shared endpoints — the messages sent into the
//     group and not yet received out of it (Σ sent − Σ received). libzmq
//     holds them in its queues, where no counter can see them otherwise.
//
// An edge group counts only when the topology knows every end of it: each
// endpoint bound by one of its sockets, no command node among them (a
// command's sockets have no counters), no at-least-once edge (the sender
// keeps and redelivers what is lost; acknowledgements and redeliveries
// move the counters too), only PUSH, PULL and PAIR sockets
// (on PUB, ROUTER and the rest a send does not map to one receive). A peer
// outside the topology that connects to a PUSH the topology binds takes
// messages the counts cannot see: they look queued until the drain's grace
// ends, and are reported as not received by any node.
//
// What the counts still show when every node has stopped was lost — at
// stop (a receiver's queue dropped with its socket) or earlier, when a
// receiver restarted or crashed — except where every receiver of the group
// had completed: those messages were left unread by nodes that had what
// they wanted, which is no failure of the run. The instances reloads took
// out of the topology (Engine.retired) count with their counters.
//
// The drain itself does not wait for the queued count to reach zero (what
// a crash lost never arrives): it ends when no counter moved for a few
// samples and no handler holds a message.

// maxRetired bounds Engine.retired: past it the oldest retired instances'
// counters are forgotten (and the accounting of their edges with them).
const maxRetired = 4096

// bury keeps an instance a reload took out of the set, for the accounting;
// e.mu is held.
func (e *Engine) bury(in *instance) {
	if len(e.retired) >= maxRetired {
		e.retired = e.retired[1:]
	}
	e.retired = append(e.retired, in)
}

// edgeEnd is one socket of an edge group.
type edgeEnd struct {
	in     *instance
	socket string
	recv   bool // it receives (PULL, PAIR)
	pair   bool // it sends too
}

// edgeGroup is a set of PUSH/PULL (or PAIR) sockets joined by endpoints.
type edgeGroup struct {
	ends []edgeEnd
}

// name describes the group: "src.out -> slow.in".
func (g *edgeGroup) name() string {
	var from, to []string
	for _, e := range g.ends {
		n := e.in.name() + "." + e.socket
		if e.recv {
			to = append(to, n)
		} else {
			from = append(from, n)
		}
	}
	sort.Strings(from)
	sort.Strings(to)
	return strings.Join(from, ",") + " -> " + strings.Join(to, ",")
}

// sums are Σ sent and Σ received over the group's sockets.
func (g *edgeGroup) sums() (out, in uint64) {
	for _, e := range g.ends {
		c, ok := e.in.counters()[e.socket]
		if !ok {
			continue
		}
		out += c.MsgsOut
		in += c.MsgsIn
	}
	return out, in
}

// queued is Σ sent − Σ received over the group's sockets, never below 0
// (messages from outside the topology make it smaller).
func (g *edgeGroup) queued() uint64 {
	out, in := g.sums()
	if in >= out {
		return 0
	}
	return out - in
}

// receiversLive reports whether some instance that receives in the group
// still runs (could still take what is queued for it).
func (g *edgeGroup) receiversLive() bool {
	for _, e := range g.ends {
		if e.recv && !terminal(e.in.state()) {
			return true
		}
	}
	return false
}

// receiversCompleted reports whether every instance receiving in the group
// completed.
func (g *edgeGroup) receiversCompleted() bool {
	for _, e := range g.ends {
		if e.recv && e.in.state() != StateCompleted {
			return false
		}
	}
	return true
}

// edgeGroups finds the edge groups of insts whose every end is known.
func edgeGroups(insts []*instance) []*edgeGroup {
	type sock struct {
		end   edgeEnd
		binds []string
		conns []string
	}
	var socks []sock
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	union := func(a, b string) { parent[find(a)] = find(b) }
	tainted := map[string]bool{} // endpoint -> the group cannot be counted
	bound := map[string]bool{}
	for _, in := range insts {
		in.mu.Lock()
		sp := in.spec
		command := in.proc != nil && in.proc.command
		in.mu.Unlock()
		for _, so := range sp.Sockets {
			var s sock
			for _, b := range so.Bind {
				s.binds = append(s.binds, spec.EndpointKey(b))
			}
			for _, c := range so.Connect {
				s.conns = append(s.conns, spec.EndpointKey(c))
			}
			eps := append(append([]string(nil), s.binds...), s.conns...)
			for _, ep := range eps {
				find(ep)
			}
			for i := 1; i < len(eps); i++ {
				union(eps[0], eps[i])
			}
			t := spec.SocketType(strings.ToUpper(string(so.Type)))
			switch {
			case command, so.Reliable != nil, so.Acks:
				// No counters, or counts that acknowledgements and
				// redeliveries make differ from one send, one receive.
				for _, ep := range eps {
					tainted[ep] = true
				}
				continue
			case t == spec.PUSH:
			case t == spec.PULL, t == spec.PAIR:
				s.end.recv, s.end.pair = true, t == spec.PAIR
			default:
				for _, ep := range eps {
					tainted[ep] = true
				}
				continue
			}
			for _, b := range s.binds {
				bound[b] = true
			}
			s.end.in, s.end.socket = in, so.Name
			socks = append(socks, s)
		}
	}
	bad := map[string]bool{} // group root -> not countable
	for ep := range tainted {
		bad[find(ep)] = true
	}
	for _, s := range socks {
		for _, c := range s.conns {
			if !bound[c] {
				bad[find(c)] = true // its binder is outside the topology
			}
		}
	}
	byRoot := map[string]*edgeGroup{}
	var roots []string
	for _, s := range socks {
		eps := append(append([]string(nil), s.binds...), s.conns...)
		if len(eps) == 0 {
			continue
		}
		root := find(eps[0])
		if bad[root] {
			continue
		}
		g := byRoot[root]
		if g == nil {
			g = &edgeGroup{}
			byRoot[root] = g
			roots = append(roots, root)
		}
		g.ends = append(g.ends, s.end)
	}
	sort.Strings(roots)
	var out []*edgeGroup
	for _, r := range roots {
		g := byRoot[r]
		send, recv := false, false
		for _, e := range g.ends {
			if e.recv {
				recv = true
			}
			if !e.recv || e.pair {
				send = true
			}
		}
		if send && recv {
			out = append(out, g)
		}
	}
	return out
}

// inFlight is how many messages the instance's current attempt holds
// inside its handler.
func (in *instance) inFlight() int64 {
	in.mu.Lock()
	r := in.runner
	in.mu.Unlock()
	if r == nil || terminal(in.state()) {
		return 0
	}
	return r.inFlight()
}

// droppedAtStop is how many messages the instance's last attempt
// abandoned because it was stopped.
func (in *instance) droppedAtStop() int64 {
	in.mu.Lock()
	r := in.runner
	in.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.dropped()
}

// Loss is a stop's account of the messages that did not arrive: Run
// returns it (as its error, when no node failed) when a stop left messages
// behind or its drain was cut short by the grace. The CLI exits with
// status 3 for it.
type Loss struct {
	// Lost is how many messages were sent by a node of the topology and
	// received by none (over the whole run), plus those a handler held
	// when it was stopped.
	Lost uint64
	// CutShort says the drain ended at its grace with work left.
	CutShort bool
	// Where lists, per edge group or instance, what was lost there.
	Where []string
}

func (l *Loss) Error() string {
	msg := fmt.Sprintf("%d messages lost", l.Lost)
	if l.CutShort {
		msg += " (the drain grace expired before they were delivered)"
	}
	if len(l.Where) > 0 {
		msg += ": " + strings.Join(l.Where, "; ")
	}
	return msg
}

// pendingWork is the work left in the topology: the messages queued on
// the edge groups whose receivers still run, and those inside handlers.
// The drain takes each new low of it as progress.
func pendingWork(groups []*edgeGroup, insts []*instance) uint64 {
	var w uint64
	for _, g := range groups {
		if g.receiversLive() {
			w += g.queued()
		}
	}
	for _, in := range insts {
		if n := in.inFlight(); n > 0 {
			w += uint64(n)
		}
	}
	return w
}

// account tells, once every instance has stopped, what was lost and what
// was left unread by completed receivers. completed holds which groups'
// receivers had all completed when the drain ended.
func (e *Engine) account(groups []*edgeGroup, completed map[*edgeGroup]bool, insts []*instance, cut bool) *Loss {
	loss := &Loss{CutShort: cut}
	crashed, held := e.crashed()
	lost := lossByGroup(groups, crashed)
	for _, g := range groups {
		q := lost[g]
		if q == 0 {
			continue
		}
		if completed[g] {
			e.log.Info("messages left unread by completed nodes", "edge", g.name(), "count", q)
			continue
		}
		e.log.Warn("messages lost: sent, and received by no node", "edge", g.name(), "count", q)
		loss.Lost += q
		loss.Where = append(loss.Where, fmt.Sprintf("%s: %d", g.name(), q))
	}
	var relays []*instance
	for in, n := range held {
		if n > 0 {
			relays = append(relays, in)
		}
	}
	sort.Slice(relays, func(i, j int) bool { return relays[i].name() < relays[j].name() })
	for _, in := range relays {
		e.log.Warn("messages lost: held by a relay when it crashed", "node", in.name(), "count", held[in])
		loss.Lost += held[in]
		loss.Where = append(loss.Where, fmt.Sprintf("%s (in its handler when it crashed): %d", in.name(), held[in]))
	}
	for _, in := range insts {
		if d := in.droppedAtStop(); d > 0 {
			e.log.Warn("messages lost: taken by a handler that was stopped", "node", in.name(), "count", d)
			loss.Lost += uint64(d)
			loss.Where = append(loss.Where, fmt.Sprintf("%s (in its handler): %d", in.name(), d))
		}
	}
	if loss.Lost == 0 {
		return nil
	}
	return loss
}
