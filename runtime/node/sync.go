package node

import (
	"fmt"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

const (
	// handshakeWait bounds how long a `sync: {connect}` node waits for its
	// connections before it signals anyway (a peer that never binds must
	// not hold the node forever; the barrier then only orders start-up).
	handshakeWait = 10 * time.Second
	// subscribeSettle is the pause between the last handshake and the sync
	// request: a SUB sends its subscriptions right after the handshake, on
	// a different connection than the sync request, and the publisher must
	// have them before it starts publishing. (The publisher side does not
	// guess: it waits for a subscription to reach it, waitSubscribed.)
	subscribeSettle = 50 * time.Millisecond
	// syncReplyWarn is how often a node still waiting for its sync reply
	// says so.
	syncReplyWarn = 5 * time.Second
)

// openSyncRep binds the REP of a `sync: {expect}` barrier, nil without
// one. It is bound with the node's sockets, before OnOpen, so that the
// engine starts the nodes that signal it once it listens: a REQ that
// connects first waits out libzmq's reconnect interval.
func (r *run) openSyncRep() (*zsock.Socket, error) {
	sy := r.n.cfg.Spec.Sync
	if sy == nil || sy.Expect <= 0 {
		return nil, nil
	}
	return zsock.Open(r.n.cfg.Context, &spec.Socket{Name: "sync", Type: spec.REP, Bind: []string{sy.Bind}})
}

// barrier runs the node's sync start barrier, if it has one; rep is
// openSyncRep's socket, which it closes.
func (r *run) barrier(rep *zsock.Socket) error {
	if rep != nil {
		// The last reply may still be queued: give it a moment to leave.
		defer rep.CloseLinger(min(time.Second, r.n.cfg.Drain))
	}
	sy := r.n.cfg.Spec.Sync
	if sy == nil {
		return nil
	}
	if sy.Connect != "" {
		if err := r.syncConnect(sy); err != nil {
			return err
		}
	}
	if rep != nil {
		return r.syncExpect(sy, rep)
	}
	return nil
}

// syncExpect answers Expect sync requests on rep, bound at sy.Bind, each
// with one empty frame — what zguide subscribers (REQ send, recv) expect.
func (r *run) syncExpect(sy *spec.Sync, rep *zsock.Socket) error {
	// With connecting PUB sockets the node waits for subscriptions after
	// the peers (waitSubscribed), rather than for a settle here.
	if err := r.waitConnectionsSettle(!r.seesSubscriptions()); err != nil {
		return err
	}
	r.log.Info("waiting for sync peers", "expect", sy.Expect, "endpoint", sy.Bind)
	poller := zmq4.NewPoller()
	poller.Add(r.ctl, zmq4.POLLIN)
	poller.Add(rep.Z, zmq4.POLLIN)
	for got := 0; got < sy.Expect; {
		polled, err := r.syncPoll(poller, -1)
		if err != nil {
			return err
		}
		if polled[1].Events&zmq4.POLLIN == 0 {
			continue
		}
		if _, err := rep.Recv(zmq4.DONTWAIT); err != nil {
			if zsock.IsAgain(err) {
				continue
			}
			return fmt.Errorf("sync: receive: %w", err)
		}
		if err := rep.Send(emptyReply, 0); err != nil {
			return fmt.Errorf("sync: reply: %w", err)
		}
		got++
		r.log.Debug("sync peer arrived", "got", got, "expect", sy.Expect)
	}
	r.log.Info("sync barrier passed", "peers", sy.Expect)
	return r.waitSubscribed()
}

// seesSubscriptions reports whether the node has a PUB opened to see its
// subscriptions (seeSubscriptions).
func (r *run) seesSubscriptions() bool {
	for _, s := range r.socks {
		if s.sock.SeesSubscriptions() {
			return true
		}
	}
	return false
}

// waitSubscribed waits, once every sync peer has signalled, until a
// subscription has reached each of the node's connecting PUB sockets
// (seeSubscriptions). A peer's signal says that its SUB has subscribed
// where it connects, not that the subscription has reached the
// publisher: through an XSUB/XPUB proxy it has one more hop to travel (the
// proxy forwards it), and what the node publishes before it arrives is
// dropped. Bounded by handshakeWait: a PUB nobody subscribes to does not
// hold the node for ever.
func (r *run) waitSubscribed() error {
	var waiting []*zsock.Socket
	for _, s := range r.socks {
		if s.sock.SeesSubscriptions() {
			waiting = append(waiting, s.sock)
		}
	}
	deadline := time.Now().Add(handshakeWait)
	for {
		left := waiting[:0]
		for _, s := range waiting {
			n, err := s.TakeSubscriptions()
			if err != nil {
				return fmt.Errorf("sync: subscriptions: %w", err)
			}
			if n == 0 {
				left = append(left, s)
			}
		}
		waiting = left
		if len(waiting) == 0 {
			return nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			names := make([]string, len(waiting))
			for i, s := range waiting {
				names[i] = s.Spec.Name
			}
			r.log.Warn("sync: no subscription reached these sockets in time, publishing anyway", "sockets", names, "waited", handshakeWait)
			return nil
		}
		poller := zmq4.NewPoller()
		poller.Add(r.ctl, zmq4.POLLIN)
		for _, s := range waiting {
			poller.Add(s.Z, zmq4.POLLIN)
		}
		if _, err := r.syncPoll(poller, min(wait, time.Second)); err != nil {
			return err
		}
	}
}

// syncConnect waits for the node's connections (and subscriptions), then
// signals the node at sy.Connect and waits for its answer.
func (r *run) syncConnect(sy *spec.Sync) error {
	if err := r.waitConnections(); err != nil {
		return err
	}
	req, err := zsock.Open(r.n.cfg.Context, &spec.Socket{Name: "sync", Type: spec.REQ, Connect: []string{sy.Connect}})
	if err != nil {
		return err
	}
	defer req.CloseLinger(0)
	if err := req.Send(emptyReply, 0); err != nil {
		return fmt.Errorf("sync: request: %w", err)
	}
	r.log.Debug("sync request sent", "node", sy.ConnectNode, "endpoint", sy.Connect)
	poller := zmq4.NewPoller()
	poller.Add(r.ctl, zmq4.POLLIN)
	poller.Add(req.Z, zmq4.POLLIN)
	for {
		polled, err := r.syncPoll(poller, syncReplyWarn)
		if err != nil {
			return err
		}
		if polled[1].Events&zmq4.POLLIN != 0 {
			if _, err := req.Recv(zmq4.DONTWAIT); err == nil {
				r.log.Debug("sync reply received", "node", sy.ConnectNode)
				return nil
			} else if !zsock.IsAgain(err) {
				return fmt.Errorf("sync: receive: %w", err)
			}
			continue
		}
		r.log.Info("still waiting for the sync reply", "node", sy.ConnectNode, "endpoint", sy.Connect)
	}
}

// waitConnections waits (bounded by handshakeWait) until every tcp/ipc
// connect of the node's sockets completed its handshake, then lets
// subscriptions settle: a subscriber does, so that its subscription is in
// place before it signals. (A publisher whose PUB sockets connect skips
// the settle and waits for the subscriptions themselves, waitSubscribed.)
func (r *run) waitConnections() error { return r.waitConnectionsSettle(true) }

// waitConnectionsSettle is waitConnections, with the settle only when
// settle is true.
func (r *run) waitConnectionsSettle(settle bool) error {
	deadline := time.Now().Add(handshakeWait)
	watched := false
	for {
		poller := zmq4.NewPoller()
		poller.Add(r.ctl, zmq4.POLLIN)
		var watching []*zsock.Socket
		for _, s := range r.socks {
			if m := s.sock.Monitor(); m != nil {
				poller.Add(m, zmq4.POLLIN)
				watching = append(watching, s.sock)
			}
		}
		if len(watching) == 0 {
			break
		}
		watched = true
		left := time.Until(deadline)
		if left <= 0 {
			var pending []string
			for _, s := range watching {
				pending = append(pending, s.Pending()...)
				s.Unwatch()
			}
			r.log.Warn("sync: connections not established in time, going on anyway", "pending", pending)
			break
		}
		if _, err := r.syncPoll(poller, min(left, time.Second)); err != nil {
			return err
		}
		for _, s := range watching {
			if _, err := s.ReadMonitor(); err != nil {
				return fmt.Errorf("sync: monitor: %w", err)
			}
		}
	}
	if !settle || (!watched && r.n.cfg.Spec.Sync.Connect == "") {
		return nil
	}
	return r.pause(subscribeSettle)
}

// pause waits d, stoppably.
func (r *run) pause(d time.Duration) error {
	poller := zmq4.NewPoller()
	poller.Add(r.ctl, zmq4.POLLIN)
	deadline := time.Now().Add(d)
	for left := d; left > 0; left = time.Until(deadline) {
		if _, err := r.syncPoll(poller, left); err != nil {
			return err
		}
	}
	return nil
}

// syncPoll polls poller, whose first socket is the control socket, for up
// to timeout (-1: for ever), polling again after an interruption for what
// is left: errStopped when the node is told to stop meanwhile.
func (r *run) syncPoll(poller *zmq4.Poller, timeout time.Duration) ([]zmq4.Polled, error) {
	deadline := time.Now().Add(timeout)
	for {
		polled, err := poller.PollAll(timeout)
		if err != nil {
			if zsock.IsInterrupted(err) {
				if timeout >= 0 {
					timeout = max(time.Until(deadline), 0)
				}
				continue
			}
			return nil, fmt.Errorf("sync: poll: %w", err)
		}
		if polled[0].Events&zmq4.POLLIN != 0 && r.readCtl() {
			return nil, errStopped
		}
		return polled, nil
	}
}
