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
	// have them before it starts publishing.
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
	if err := r.waitConnections(); err != nil {
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
	return nil
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
// subscriptions settle. Both sides of a barrier do it: a subscriber so that
// its subscription is in place before it signals, a publisher that connects
// (to a proxy's XSUB) so that the subscriptions forwarded to it have
// arrived before it publishes.
func (r *run) waitConnections() error {
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
	if !watched && r.n.cfg.Spec.Sync.Connect == "" {
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
