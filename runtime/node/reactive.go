package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// batch bounds how many messages the node takes from one socket before it
// polls again: polling costs a system call, so a busy socket is read
// without it, yet the other sockets and the control socket are never
// starved for long.
const batch = 256

var emptyReply = [][]byte{{}}

// reactive feeds a handler.Handler (or Async) one message at a time until
// the node stops, the handler completes or is swapped.
func (r *run) reactive(cur *slot) (completed, swapped bool, err error) {
	h := cur.h.(handler.Handler)
	async, _ := h.(handler.Async)

	// A REQ with a reactive handler is an lbbroker worker: it speaks first.
	for _, s := range r.recv {
		if s.worker && !s.announced {
			if err := r.send(s, nil, [][]byte{[]byte(Ready)}); err != nil {
				return false, false, err
			}
			s.announced = true
		}
		if s.wk != nil {
			r.announce(s)
		}
	}

	// A message received after the swap to h was published is h's.
	if c := r.carry; c != nil {
		r.carry = nil
		if end, done, err := r.handOver(h, async, *c); end {
			return done, false, err
		}
	}

	// The proxy cannot collect a swapped-out handler's results: the fast
	// path waits until they are in.
	in, out, fast := r.fastPath(h, async)
	if fast && len(r.retiring) == 0 && !tapped(in, out) {
		if d := discarder(h, async); d != nil {
			return r.sink(cur, d, in)
		}
		return r.proxyForward(cur, in, out)
	}
	// held off the fast path by a tap: back to it once none is attached.
	tapHeld := fast && tapped(in, out)
	r.n.tapWake.Store(false)

	// A synchronous handler is done with a message's frames slice when it
	// returns and the node has sent its output (handler.Msg's contract), so
	// each socket reuses one; an Async handler keeps messages after Submit.
	var bufs [][][]byte
	if async == nil {
		bufs = make([][][]byte, len(r.recv))
	}
	dis := discarder(h, async)

	if nt, ok := async.(handler.Notifier); ok {
		if r.resultWaker == nil {
			w, err := zbatch.NewWaker()
			if err != nil {
				return false, false, fmt.Errorf("result wake-up: %w", err)
			}
			r.resultWaker = w
		}
		nt.OnResult(r.resultReady)
	}
	poller := &zbatch.Poller{}
	poller.Add(r.ctl, zmq4.POLLIN)
	for _, s := range r.recv {
		ev := zmq4.POLLIN
		if s.lockstep && s.inflight > 0 {
			ev = 0
		}
		s.pollIdx = poller.Add(s.sock.Z, ev)
	}
	// Also while the current handler is not Async: a swapped-out one may
	// still have results to come.
	wakeIdx := -1
	if r.resultWaker != nil {
		wakeIdx = poller.AddFd(r.resultWaker.Fd(), zmq4.POLLIN)
	}
	for _, s := range r.reliable {
		poller.Add(s.rel.ack, zmq4.POLLIN)
	}
	r.poller = poller
	// Whether the loop may vouch for its sockets to the poller (Drained,
	// Untouched): only when nothing but the loop below uses them between
	// polls — no acknowledgements, worker protocol or Async results.
	plain := len(r.reliable) == 0 && !r.workers && len(r.acks) == 0 && async == nil
	ctlSeen := r.ctlUsed

	for {
		if plain && len(r.retiring) == 0 && len(r.pending) == 0 {
			if r.ctlUsed == ctlSeen {
				poller.Untouched(0)
			}
			for _, s := range r.recv {
				if s.drained {
					poller.Drained(s.pollIdx)
				}
			}
		}
		for _, s := range r.recv {
			s.drained = false
		}
		ctlSeen = r.ctlUsed
		if err := r.poll(poller, async); err != nil {
			if zsock.IsInterrupted(err) {
				continue
			}
			return false, false, fmt.Errorf("poll: %w", err)
		}
		if len(r.reliable) > 0 {
			if err := r.relTick(); err != nil {
				return false, false, unlessStopped(err)
			}
		}
		if r.workers {
			rebuilt, err := r.workerTick()
			if err != nil {
				return false, false, unlessStopped(err)
			}
			if rebuilt {
				return false, true, nil // a new socket: a new poller
			}
		}
		if wakeIdx >= 0 && poller.Ready(wakeIdx) != 0 {
			r.resultWaker.Drain()
		}
		if poller.Ready(0)&zmq4.POLLIN != 0 {
			if r.readCtl() {
				return false, false, nil
			}
			r.n.tapWake.Store(false)
			if tapHeld && !tapped(in, out) && len(r.retiring) == 0 {
				return false, true, nil // on to the fast path
			}
		}
		if r.n.slot.Load() != cur {
			return false, true, nil
		}
		for si, s := range r.recv {
			if poller.Ready(s.pollIdx)&zmq4.POLLIN == 0 {
				continue
			}
			// Not where each message needs a look: acknowledgements of
			// at-least-once edges, worker protocols.
			if dis != nil && s.role == spec.RoleIn && !s.lockstep && !s.acks && s.wk == nil {
				completed, swapped, stop, err := r.discard(dis, s, cur)
				if stop || err != nil {
					return completed, swapped, err
				}
				continue
			}
			for i := 0; i < batch; i++ {
				if s.lockstep && s.inflight > 0 {
					break
				}
				var frames [][]byte
				if bufs != nil {
					frames, err = s.sock.RecvInto(bufs[si], zmq4.DONTWAIT)
					if err == nil {
						bufs[si] = frames
					}
				} else {
					frames, err = s.sock.Recv(zmq4.DONTWAIT)
				}
				if err != nil {
					if zsock.IsAgain(err) {
						s.drained = true
						break
					}
					if zsock.IsInterrupted(err) {
						break
					}
					return false, false, fmt.Errorf("socket %q: receive: %w", s.name, err)
				}
				var env, body [][]byte
				if s.wk != nil {
					var ok bool
					if env, body, ok = r.workerMsg(s, frames); !ok {
						continue
					}
				} else {
					env, body = s.sock.SplitEnvelope(frames)
				}
				var in *relIn
				if s.acks {
					in, body = relSplit(body)
				}
				// The poll and the checks above came before a swap that
				// this message may have followed (SwapHandler returned,
				// then it was sent): the swapped-in handler takes it,
				// unless that one is a Runner, which reads its sockets
				// itself.
				if next := r.n.slot.Load(); next != cur {
					if _, runner := next.h.(handler.Runner); !runner {
						r.carry = &pendingIn{from: s, env: env, body: body, rel: in}
						return false, true, nil
					}
				}
				if end, done, err := r.handOver(h, async, pendingIn{from: s, env: env, body: body, rel: in}); end {
					return done, false, err
				}
				if r.ctx.Err() != nil {
					return false, false, nil
				}
				if r.n.slot.Load() != cur {
					return false, true, nil
				}
				if i&15 == 15 && (len(r.reliable) > 0 || len(r.acks) > 0) {
					// Acknowledgements move on during a long batch too.
					if err := r.relTick(); err != nil {
						return false, false, unlessStopped(err)
					}
				}
			}
		}
		if len(r.acks) > 0 {
			r.flushAcks()
		}
		if len(r.pending) > 0 || len(r.retiring) > 0 {
			for _, s := range r.recv {
				s.drained = false // results go out on them
			}
			if err := r.collect(async); err != nil {
				return false, false, unlessStopped(err)
			}
			if fast && len(r.retiring) == 0 && !tapped(in, out) {
				return false, true, nil // on to the fast path
			}
		}
	}
}

// poll waits for the node's sockets and, while Async results are
// outstanding, for those too: a Notifier handler wakes the node through
// resultWaker, any other is looked at every millisecond.
func (r *run) poll(poller *zbatch.Poller, async handler.Async) error {
	limit := time.Duration(-1)
	if r.workers {
		limit = r.workerTimeout()
	}
	if len(r.reliable) > 0 {
		if t := r.relNext(); t >= 0 && (limit < 0 || t < limit) {
			limit = t
		}
	}
	if len(r.pending) == 0 && len(r.retiring) == 0 {
		_, err := poller.Poll(limit)
		return err
	}
	// A first look that does not sleep: under load there is always
	// something, and no wake-up is asked for.
	n, err := poller.Poll(0)
	if err != nil || n > 0 || r.resultsWaiting(async) {
		return err
	}
	if !r.canSleep(async) {
		d := time.Millisecond
		if limit >= 0 && limit < d {
			d = limit
		}
		_, err := poller.Poll(d)
		return err
	}
	r.sleeping.Store(true)
	// A Result that came after the look above but before the flag was
	// set found nobody asleep and woke nobody: look once more.
	if r.resultsWaiting(async) {
		r.sleeping.Store(false)
		return nil
	}
	_, err = poller.Poll(limit)
	r.sleeping.Store(false)
	return err
}

// resultReady is the node's handler.Notifier hook, called by a handler's
// goroutine after each Result: it wakes the node only if it sleeps.
func (r *run) resultReady() {
	if r.sleeping.CompareAndSwap(true, false) {
		r.resultWaker.Wake()
	}
}

func (r *run) resultsWaiting(async handler.Async) bool {
	if async != nil && len(async.Results()) > 0 {
		return true
	}
	for _, a := range r.retiring {
		if len(a.Results()) > 0 {
			return true
		}
	}
	return false
}

// canSleep reports whether every handler with results outstanding wakes
// the node when one is ready.
func (r *run) canSleep(async handler.Async) bool {
	if _, ok := async.(handler.Notifier); async != nil && !ok {
		return false
	}
	for _, a := range r.retiring {
		if _, ok := a.(handler.Notifier); !ok {
			return false
		}
	}
	return true
}

// handOver dispatches m for the reactive loop: end says the loop ends there,
// with the handler done or err (nil when the node is stopping).
func (r *run) handOver(h handler.Handler, async handler.Async, m pendingIn) (end, done bool, err error) {
	done, err = r.dispatch(h, async, m.from, m.env, m.body, m.rel)
	return done || err != nil, done, unlessStopped(err)
}

// dispatch hands one received message to the handler and sends what it
// returns. done reports that the handler completed.
func (r *run) dispatch(h handler.Handler, async handler.Async, s *rsock, env, body [][]byte, in *relIn) (done bool, err error) {
	m := handler.Msg{Frames: body, Socket: s.name}
	if in != nil {
		m.ID = []byte(in.id)
	}
	r.n.inHand.Add(1)
	if async != nil {
		r.tag++
		tag := r.tag
		r.pending[tag] = pendingMsg{from: s, env: env, rel: in}
		r.hold(s)
		if err := async.Submit(r.ctx, m, tag); err != nil {
			delete(r.pending, tag)
			r.n.inHand.Add(-1)
			r.release(s)
			if r.ctx.Err() != nil {
				return false, errStopped
			}
			if errors.Is(err, handler.ErrFatal) {
				return false, err
			}
			r.errs.handlerError("handler rejected message", s.name, err)
			return false, r.deliverAck(s, env, nil, in)
		}
		return false, nil
	}
	defer r.n.inHand.Add(-1)
	out, herr := h.Handle(r.ctx, m)
	if herr != nil && !errors.Is(herr, handler.ErrDone) {
		if errors.Is(herr, handler.ErrFatal) {
			return false, herr
		}
		if r.ctx.Err() != nil {
			r.n.dropped.Add(1)
			return false, errStopped
		}
		r.errs.handlerError("handler error", s.name, herr)
		out = nil
		if s.role == spec.RoleInOut {
			out = handler.ErrorReply(herr)
		}
	}
	if err := r.deliverAck(s, env, out, in); err != nil {
		if errors.Is(err, errStopped) {
			r.n.dropped.Add(1)
		}
		return false, err
	}
	return errors.Is(herr, handler.ErrDone), nil
}

// deliverAck delivers a handler's output for a message that came with a
// delivery header (in; nil: none) and acknowledges it: at once, or, when
// copies went out on reliable sockets, once those are acknowledged.
func (r *run) deliverAck(s *rsock, env, out [][]byte, in *relIn) error {
	if in == nil {
		return r.deliver(s, env, out)
	}
	up := &upCount{}
	r.relCur, r.relUp = in, up
	err := r.deliver(s, env, out)
	r.relCur, r.relUp = nil, nil
	if up.left == 0 {
		r.ackUp(in.key, in.id)
	}
	return err
}

// hold and release track a lockstep socket's outstanding async message: a
// REP or REQ must not be read again before its reply went out.
func (r *run) hold(s *rsock) {
	if !s.lockstep {
		return
	}
	s.inflight++
	if s.inflight == 1 && r.poller != nil {
		r.poller.Update(s.pollIdx, 0)
	}
}

func (r *run) release(s *rsock) {
	if !s.lockstep || s.inflight == 0 {
		return
	}
	s.inflight--
	if s.inflight == 0 && r.poller != nil {
		r.poller.Update(s.pollIdx, zmq4.POLLIN)
	}
}

// deliver sends a handler's output: back on an inout socket with the
// envelope restored, or to every out socket.
func (r *run) deliver(s *rsock, env, out [][]byte) error {
	if s.role == spec.RoleInOut {
		if s.wk != nil {
			// The request is answered: the broker takes the worker as
			// alive from here, and so does the worker the broker. A
			// client waits for an answer, so a dropped one is empty.
			s.wk.heard = time.Now()
			if out == nil {
				out = emptyReply
			}
			return r.send(s, env, out)
		}
		if out == nil {
			if !s.lockstep {
				return nil
			}
			out = emptyReply
		}
		return r.send(s, env, out)
	}
	if out == nil {
		return nil
	}
	for _, o := range r.outs {
		if err := r.send(o, nil, out); err != nil {
			return err
		}
	}
	return nil
}

// collect delivers the results Async handlers have ready, without waiting,
// and closes retired handlers that hold nothing any more.
func (r *run) collect(async handler.Async) error {
	if async != nil {
		if err := r.collectFrom(async); err != nil {
			return err
		}
	}
	keep := r.retiring[:0]
	for _, a := range r.retiring {
		if err := r.collectFrom(a); err != nil {
			return err
		}
		if a.Pending() > 0 {
			keep = append(keep, a)
			continue
		}
		r.closeRetired(a)
	}
	for i := len(keep); i < len(r.retiring); i++ {
		r.retiring[i] = nil
	}
	r.retiring = keep
	return nil
}

func (r *run) collectFrom(a handler.Async) error {
	for {
		select {
		case res := <-a.Results():
			if err := r.result(res); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (r *run) result(res handler.Result) error {
	p, ok := r.pending[res.Tag]
	if !ok {
		r.log.Warn("result for an unknown message", "tag", res.Tag)
		return nil
	}
	delete(r.pending, res.Tag)
	defer r.n.inHand.Add(-1)
	r.release(p.from)
	out := res.Frames
	if res.Err != nil {
		if errors.Is(res.Err, handler.ErrFatal) {
			return res.Err
		}
		r.errs.handlerError("handler error", p.from.name, res.Err)
		out = nil
		if p.from.role == spec.RoleInOut {
			out = handler.ErrorReply(res.Err)
		}
	}
	err := r.deliverAck(p.from, p.env, out, p.rel)
	if errors.Is(err, errStopped) {
		r.n.dropped.Add(1)
	}
	return err
}

// drainAsync waits, at most Drain, for the results of messages Async
// handlers still hold, and sends them without blocking (the node is ending:
// a peer that cannot take them loses them).
func (r *run) drainAsync() {
	if len(r.pending) == 0 || r.ctl == nil {
		return
	}
	var sources []handler.Async
	if a, ok := r.n.slot.Load().h.(handler.Async); ok {
		sources = append(sources, a)
	}
	sources = append(sources, r.retiring...)
	deadline := time.Now().Add(r.n.cfg.Drain)
	r.draining = true
	defer func() { r.draining = false }()
	for len(r.pending) > 0 && time.Now().Before(deadline) {
		got := false
		for _, a := range sources {
			select {
			case res := <-a.Results():
				got = true
				if err := r.result(res); err != nil {
					r.log.Warn("result after stop", "error", err)
				}
			default:
			}
		}
		if !got {
			time.Sleep(time.Millisecond)
		}
	}
	if len(r.pending) > 0 {
		r.n.dropped.Add(int64(len(r.pending)))
		r.log.Warn("messages still held by the handler at stop", "count", len(r.pending))
	}
}

func (r *run) closeRetired(a handler.Async) {
	ctx, cancel := contextWithTimeout(r.n.cfg.Drain)
	defer cancel()
	r.closeHandler(ctx, a)
}

// send sends one message, waiting while the peer is full but staying
// stoppable: the wait polls the control socket too.
func (r *run) send(s *rsock, env, body [][]byte) error {
	return r.sendCtx(r.ctx, s, env, body)
}

// sendCtx is send stopping with ctx (a Runner's also ends on a swap). A
// context, not a func: a method value would cost an allocation per message.
func (r *run) sendCtx(ctx context.Context, s *rsock, env, body [][]byte) error {
	if s.rel != nil {
		return r.relSend(s, env, body, func(env, body [][]byte) error { return r.sendRawCtx(ctx, s, env, body) })
	}
	return r.sendRawCtx(ctx, s, env, body)
}

// sendRaw sends as it is: no delivery header.
func (r *run) sendRaw(s *rsock, env, body [][]byte) error { return r.sendRawCtx(r.ctx, s, env, body) }

func (r *run) sendRawCtx(ctx context.Context, s *rsock, env, body [][]byte) error {
	err := s.sock.SendEnvelope(env, body, zmq4.DONTWAIT)
	if err == nil {
		return nil
	}
	if !zsock.IsAgain(err) {
		return r.sendFailed(s, err)
	}
	if r.draining {
		s.sock.CountSendError()
		return nil
	}
	r.ctlUsed++ // looked at by this poller, not the loop's
	poller := zmq4.NewPoller()
	poller.Add(r.ctl, zmq4.POLLIN)
	poller.Add(s.sock.Z, zmq4.POLLOUT)
	pause := time.Duration(0)
	for {
		polled, err := poller.PollAll(-1)
		if err != nil {
			if zsock.IsInterrupted(err) {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		if polled[0].Events&zmq4.POLLIN != 0 {
			r.readCtl()
		}
		if ctx.Err() != nil {
			s.sock.CountSendError()
			return errStopped
		}
		if polled[1].Events&zmq4.POLLOUT == 0 {
			continue
		}
		err = s.sock.SendEnvelope(env, body, zmq4.DONTWAIT)
		if err == nil {
			return nil
		}
		if !zsock.IsAgain(err) {
			return r.sendFailed(s, err)
		}
		// Writable yet refusing (a ROUTER whose peer is full): do not spin.
		if pause < 10*time.Millisecond {
			pause += time.Millisecond
		}
		time.Sleep(pause)
	}
}

func (r *run) stopped() bool { return r.ctx.Err() != nil }

// sendFailed decides what a send error means: a terminated context ends the
// node; anything else (an unroutable peer, a socket in the wrong state)
// loses this message only, and is logged once per socket and counted.
func (r *run) sendFailed(s *rsock, err error) error {
	if zsock.IsTerm(err) {
		return fmt.Errorf("socket %q: send: %w", s.name, err)
	}
	if !s.warned {
		s.warned = true
		r.log.Warn("send failed, message dropped (further failures on this socket are only counted)", "socket", s.name, "error", err)
	}
	return nil
}

// pendingIn is a received message not yet handed to a handler.
type pendingIn struct {
	from      *rsock
	env, body [][]byte
	rel       *relIn
}

// unlessStopped is err, or nil when err says the node is stopping: the loop
// then ends without an error and Run reports the context's.
func unlessStopped(err error) error {
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}
