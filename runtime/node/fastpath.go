package node

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// discarder returns h as a Discarder when it discards now, or nil.
func discarder(h handler.Handler, async handler.Async) handler.Discarder {
	d, ok := h.(handler.Discarder)
	if !ok || async != nil {
		return nil
	}
	if on, _ := d.Discarding(); !on {
		return nil
	}
	return d
}

// discard takes what s has for a Discarder, in batches, as the reactive
// loop takes messages one by one (at most batch turns, so the other sockets
// and the control socket get their turn).
func (r *run) discard(d handler.Discarder, s *rsock, cur *slot) (completed, swapped, stop bool, err error) {
	for i := 0; i < batch; i++ {
		_, limit := d.Discarding()
		if limit <= 0 {
			limit = math.MaxInt
		}
		n, err := s.sock.Discard(limit)
		if now := time.Now(); n > 0 && d.Discarded(n, now, now) {
			return true, false, true, nil
		}
		if err != nil {
			if zsock.IsAgain(err) || zsock.IsInterrupted(err) {
				return false, false, false, nil
			}
			return false, false, true, fmt.Errorf("socket %q: receive: %w", s.name, err)
		}
		if r.ctx.Err() != nil {
			return false, false, true, nil
		}
		if r.n.slot.Load() != cur {
			return false, true, true, nil
		}
	}
	return false, false, false, nil
}

// Counters of a node whose messages libzmq's steerable proxy moves (a
// forward on the fast path, or a Runner that said Proxying): the proxy's
// STATISTICS are read by the signaller goroutine, which owns the other end
// of the control pair the proxy is steered through, every statsBusy while
// messages move (statsIdle otherwise), and exactly when the proxy is
// stopped: PAUSE, STATISTICS, then TERMINATE. ps and the engine's drain see
// them at that pace.
const (
	statsBusy  = 100 * time.Millisecond
	statsIdle  = time.Second
	statsReply = 100 * time.Millisecond // wait for the proxy's answer
	// statsLinger is how long the busy pace outlasts the last movement
	// seen (or the proxy's start): a drain that begins right after the
	// traffic then waits out the short lag (Node.CountersLag), not the
	// idle one.
	statsLinger = 3 * time.Second
)

// proxyStats turns one proxy run's cumulative STATISTICS into increments
// of the node's socket counters. Used only by the signaller goroutine.
type proxyStats struct {
	front, back *zsock.Stats
	capture     *zsock.Stats // nil: none
	last        [8]uint64
	// ended is set by the node's goroutine the moment the run's C loop
	// returned, before it waits for ctlMu to say so (stopProxy): the
	// signaller, which may hold ctlMu waiting for an answer, stops
	// asking a loop that will never answer again.
	ended atomic.Bool
}

func (r *run) fastPath(h handler.Handler, async handler.Async) (in, out *rsock, ok bool) {
	// On pebbe's fallback (zbatch.Fast false) there is no C proxy, and
	// libzmq's own one blocks in a send to a full or vanished inproc peer,
	// deaf to the commands that stop or reconnect it: the Go loop forwards.
	if !zbatch.Fast || async != nil || len(r.recv) != 1 {
		return nil, nil, false
	}
	if discarder(h, async) != nil {
		if in := r.sinks(); in != nil {
			return in, in, true
		}
		return nil, nil, false
	}
	p, isP := h.(handler.Passthrough)
	if !isP || !p.Passthrough() {
		return nil, nil, false
	}
	if in := r.echoes(); in != nil {
		return in, in, true
	}
	if len(r.outs) != 1 {
		return nil, nil, false
	}
	in, out = r.recv[0], r.outs[0]
	if in.role != spec.RoleIn || in.acks || out.rel != nil {
		return nil, nil, false
	}
	switch in.sock.Spec.Type {
	case spec.PULL, spec.SUB:
	default:
		return nil, nil, false
	}
	switch out.sock.Spec.Type {
	case spec.PUSH, spec.PUB:
	default:
		return nil, nil, false
	}
	return in, out, true
}

// echoes returns the node's only socket when it is a plain REP whose every
// request the handler answers with its own frames (a forward or echo
// without delay): zbatch.Echo answers them in C. Reliable delivery, the
// worker protocols and other sockets need the Go loop.
func (r *run) echoes() *rsock {
	if len(r.socks) != 1 {
		return nil
	}
	s := r.socks[0]
	if s.sock.Spec.Type != spec.REP || s.role != spec.RoleInOut || s.acks || s.rel != nil || s.wk != nil || s.worker {
		return nil
	}
	return s
}

// sinks returns the node's only socket when it is a plain PULL or SUB whose
// messages a discarding handler only counts: zbatch.Sink takes them in C.
func (r *run) sinks() *rsock {
	if len(r.socks) != 1 {
		return nil
	}
	s := r.socks[0]
	switch s.sock.Spec.Type {
	case spec.PULL, spec.SUB:
	default:
		return nil
	}
	if s.role != spec.RoleIn || s.acks || s.rel != nil || s.wk != nil {
		return nil
	}
	return s
}

// sink takes s's messages in C for d until d completes, the node stops or
// its handler is swapped; a stale wake-up (neither) restarts it.
func (r *run) sink(cur *slot, d handler.Discarder, s *rsock) (completed, swapped bool, err error) {
	r.log.Debug("counting inside libzmq", "socket", s.name)
	for {
		r.n.tapWake.Store(false)
		if tapped(s, s) {
			return false, true, nil
		}
		_, limit := d.Discarding()
		max := uint64(math.MaxInt64)
		if limit > 0 {
			max = uint64(limit)
		}
		ps := &proxyStats{front: s.sock.Stats, back: s.sock.Stats}
		r.startProxy(ps)
		if r.n.slot.Load() != cur {
			// Swapped before the loop began (SwapHandler saw no loop).
			r.stopProxy()
			return false, true, nil
		}
		got, err := zbatch.Sink(s.sock.Z, r.ctl, max)
		r.stopSink(ps, got)
		if got.Msgs > 0 && d.Discarded(int(got.Msgs), got.First, got.Last) {
			return true, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("socket %q: receive: %w", s.name, err)
		}
		stop := r.readCtl()
		if stop || r.ctx.Err() != nil {
			return false, false, nil
		}
		if r.n.slot.Load() != cur {
			return false, true, nil
		}
	}
}

// stopSink is stopProxy for a sink run, which can end by itself (at its
// limit) with messages the signaller has not asked about: they are counted
// here, exactly, before the signaller may ask again.
func (r *run) stopSink(ps *proxyStats, got zbatch.Sunk) {
	r.loopEnded()
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	var msgs, bytes uint64
	if got.Msgs > ps.last[0] {
		msgs = got.Msgs - ps.last[0]
	}
	if got.Bytes > ps.last[1] {
		bytes = got.Bytes - ps.last[1]
	}
	ps.front.AddProxied(msgs, bytes, 0, 0)
	ps.last[0], ps.last[1] = got.Msgs, got.Bytes
	r.setFast(nil)
}

// proxyForward runs the proxy until the node stops or its handler is
// swapped; a stale wake-up (neither) restarts it.
func (r *run) proxyForward(cur *slot, in, out *rsock) (completed, swapped bool, err error) {
	r.log.Debug("forwarding inside libzmq", "from", in.name, "to", out.name)
	for {
		r.n.tapWake.Store(false)
		if tapped(in, out) {
			// A tap came: on to the Go loop, where it sees each message.
			return false, true, nil
		}
		r.startProxy(&proxyStats{front: in.sock.Stats, back: out.sock.Stats})
		if r.n.slot.Load() != cur {
			// Swapped before the loop began (SwapHandler saw no loop).
			r.stopProxy()
			return false, true, nil
		}
		// pebbe retries EINTR itself; any error here is real.
		var err error
		if in == out {
			err = zbatch.Echo(in.sock.Z, r.ctl)
		} else {
			err = zbatch.Proxy(in.sock.Z, out.sock.Z, nil, r.ctl)
		}
		r.stopProxy()
		if err != nil {
			return false, false, fmt.Errorf("forward proxy: %w", err)
		}
		// Repeated TERMINATEs and unanswered requests are spent.
		stop := r.readCtl()
		if stop || r.ctx.Err() != nil {
			return false, false, nil
		}
		if r.n.slot.Load() != cur {
			return false, true, nil
		}
	}
}

// startProxy is called by the node's goroutine just before a proxy run
// that ps counts: the control words still queued were meant for no proxy
// or for an earlier run, and the proxy must not read them (a TERMINATE
// would end this run before anyone asked its counters). A wake-up dropped
// here is not lost: the signaller repeats it every resendEvery until the
// node has acted on it.
func (r *run) startProxy(ps *proxyStats) {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	r.readCtl()
	r.setFast(ps)
}

// stopProxy is called by the node's goroutine when the proxy run returned.
func (r *run) stopProxy() {
	r.loopEnded()
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	r.setFast(nil)
}

// loopEnded marks the current proxy run's C loop as returned. Called by
// the node's goroutine, the only one that changes r.fast, without ctlMu:
// a signaller holding ctlMu while it waits for that loop's answer (up to
// 20 statsReply for the final figures) would otherwise keep the node
// from going on — a handler swap of an idle echo waited out swapBound
// (2 s) that way in about one reload of fifteen (bench reload/50-nodes).
func (r *run) loopEnded() {
	if ps := r.fast.Load(); ps != nil {
		ps.ended.Store(true)
	}
}

// setFast says whether libzmq's proxy moves the run's messages (ps) or
// its own loop does (nil), for the signaller and for Node.CountersLag.
func (r *run) setFast(ps *proxyStats) {
	if ps != nil {
		r.n.quickUntil.Store(time.Now().Add(statsLinger).UnixNano())
		select {
		case r.statsKick <- struct{}{}:
		default:
		}
	}
	old := r.fast.Swap(ps)
	switch {
	case old == nil && ps != nil:
		r.n.proxied.Add(1)
	case old != nil && ps == nil:
		r.n.proxied.Add(-1)
	}
}

// tapped reports whether a tap is attached to in or out: the proxy would
// move their messages where no tap sees them.
func tapped(in, out *rsock) bool { return in.sock.Stats.Tapped() || out.sock.Stats.Tapped() }

// refreshProxyStats is called by the signaller on its stats timer and when
// FreshCounters asks; it returns when to call it next, and whether the
// counters now hold everything moved before the call.
func (r *run) refreshProxyStats(s *zmq4.Socket) (next time.Duration, fresh bool) {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	ps := r.fast.Load()
	if ps == nil {
		return statsIdle, r.n.proxied.Load() == 0
	}
	moved, fresh := r.askProxyStats(s, ps, false)
	if moved {
		r.n.quickUntil.Store(time.Now().Add(statsLinger).UnixNano())
	}
	// Decided after the refresh: whatever moved before quickUntil passed
	// is seen by the next one, at most statsBusy later.
	if time.Now().UnixNano() < r.n.quickUntil.Load() {
		return statsBusy, fresh
	}
	return statsIdle, fresh
}

// finalProxyStats is called by the signaller before it sends TERMINATE: the
// proxy is paused first, so the figures are exact.
func (r *run) finalProxyStats(s *zmq4.Socket) {
	if ps := r.fast.Load(); ps != nil {
		r.askProxyStats(s, ps, true)
	}
}

// askProxyStats asks the proxy for its counters and adds what moved since
// the last answer; it reports whether anything did, and whether the proxy
// answered.
func (r *run) askProxyStats(s *zmq4.Socket, ps *proxyStats, pause bool) (moved, answered bool) {
	// Answers to requests that timed out are stale.
	for {
		if _, err := s.RecvMessageBytes(zmq4.DONTWAIT); err != nil {
			break
		}
	}
	if ps.ended.Load() {
		return false, false
	}
	if pause {
		if _, err := s.Send("PAUSE", zmq4.DONTWAIT); err != nil {
			return false, false
		}
	}
	poller := zmq4.NewPoller()
	poller.Add(s, zmq4.POLLIN)
	// The final figures feed the engine's count of lost messages: worth
	// asking for longer (a loaded machine answers late) than a refresh.
	tries := 2
	if pause {
		tries = 20
	}
	for try := 0; try < tries && !ps.ended.Load(); try++ {
		if _, err := s.Send("STATISTICS", zmq4.DONTWAIT); err != nil {
			return false, false
		}
		if !awaitAnswer(poller, ps) {
			continue // libzmq 4.3.4's proxy can miss a command: ask again
		}
		reply, err := s.RecvMessageBytes(0)
		if err != nil || len(reply) != 8 {
			return false, false
		}
		var now [8]uint64
		for i, f := range reply {
			if len(f) != 8 {
				return false, false
			}
			now[i] = binary.NativeEndian.Uint64(f)
		}
		// Frontend: msgs in, bytes in, msgs out, bytes out; backend likewise.
		// A multipart message counts once. The capture socket gets a copy
		// of what either side received.
		d := func(i int) uint64 {
			if now[i] < ps.last[i] {
				return 0
			}
			return now[i] - ps.last[i]
		}
		ps.front.AddProxied(d(0), d(1), d(2), d(3))
		ps.back.AddProxied(d(4), d(5), d(6), d(7))
		if ps.capture != nil {
			ps.capture.AddProxied(0, 0, d(0)+d(4), d(1)+d(5))
		}
		moved = d(0) > 0 || d(4) > 0
		for i := range now {
			ps.last[i] = max(ps.last[i], now[i])
		}
		return moved, true
	}
	return false, false
}

// endedLook is how often awaitAnswer looks whether the run it waits for
// has returned.
const endedLook = 5 * time.Millisecond

// awaitAnswer waits up to statsReply for the proxy's answer on poller's
// socket, and no longer than the proxy run's C loop lasts (ps.ended): an
// answer sent before it returned is still taken.
func awaitAnswer(poller *zmq4.Poller, ps *proxyStats) bool {
	deadline := time.Now().Add(statsReply)
	for {
		polled, err := poller.Poll(max(time.Millisecond, min(endedLook, time.Until(deadline))))
		if err == nil && len(polled) > 0 {
			return true
		}
		if ps.ended.Load() || !time.Now().Before(deadline) {
			return false
		}
	}
}
