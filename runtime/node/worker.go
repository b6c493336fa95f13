package node

import (
	"bytes"
	"fmt"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// The worker side of the reliable request-reply protocols (SPEC §7): a
// node whose spec has a Worker speaks it on that DEALER socket, whatever
// its reactive handler is (builtin, exec, plugin, or any later kind), since
// the protocol lives here and the handler only sees request bodies.
//
//	PPP (Paranoid Pirate): sends "\x01" once connected, "\x02" every
//	    heartbeat; a request is [envelope..., "", body...] and its reply
//	    goes back with the same envelope.
//	MDP (Majordomo 0.1, MDPW01): READY with the service, HEARTBEAT, a
//	    REQUEST [client, "", body...] answered by a REPLY to that client;
//	    DISCONNECT from the broker makes it reconnect at once.
//
// Any message from the broker keeps it alive. When nothing came for
// Liveness heartbeats (counted from the connection's handshake, not from
// the socket's opening) the worker closes its socket, waits (Reconnect,
// doubling up to ReconnectMax while the broker stays silent), opens it
// anew and announces itself again. The state lives in the socket's rsock,
// so a handler swap keeps the connection and the broker's view of it: the
// request in hand is finished by the old handler, the next one goes to the
// new.

// PPP commands (the zguide's ppworker).
var (
	pppReady     = []byte{1}
	pppHeartbeat = []byte{2}
)

// MDP 0.1 worker protocol (RFC 7).
const mdpWorker = "MDPW01"

const (
	mdpReady      = 1
	mdpRequest    = 2
	mdpReply      = 3
	mdpHeartbeat  = 4
	mdpDisconnect = 5
)

type workerState struct {
	w           *spec.Worker
	heard       time.Time     // last message from the broker
	heartbeatAt time.Time     // next heartbeat due
	backoff     time.Duration // pause before the next reconnect
	announced   bool          // READY went out on this connection
	reconnect   bool          // the broker said DISCONNECT
	warned      bool          // a malformed message was logged
}

func (r *run) setupWorker(rs *rsock) {
	w := r.n.cfg.Spec.Worker
	if w == nil || w.Socket != rs.name {
		return
	}
	rs.wk = &workerState{w: w, backoff: w.Reconnect}
	r.workers = true
}

// announce sends READY on a worker socket that has not yet sent it.
func (r *run) announce(s *rsock) {
	wk := s.wk
	if wk.announced {
		return
	}
	now := time.Now()
	var m [][]byte
	switch wk.w.Protocol {
	case spec.ProtoMDP:
		m = [][]byte{{}, []byte(mdpWorker), {mdpReady}, []byte(wk.w.Service)}
	default:
		m = [][]byte{pppReady}
	}
	r.workerSend(s, m)
	wk.announced = true
	wk.heard = now
	wk.heartbeatAt = now.Add(wk.w.Heartbeat)
	r.log.Debug("worker ready", "socket", s.name, "protocol", wk.w.Protocol, "service", wk.w.Service)
}

// workerSend sends a protocol command without waiting: a broker that
// cannot take it is as good as gone, and liveness will tell.
func (r *run) workerSend(s *rsock, m [][]byte) {
	if err := s.sock.SendEnvelope(nil, m, zmq4.DONTWAIT); err != nil && !zsock.IsAgain(err) {
		r.log.Debug("worker command not sent", "socket", s.name, "error", err)
	}
}

// workerMsg reads a message received on a worker socket: it returns the
// reply envelope and the request body, or ok=false for a protocol command
// (handled here) or a malformed message (logged once, dropped).
func (r *run) workerMsg(s *rsock, frames [][]byte) (env, body [][]byte, ok bool) {
	wk := s.wk
	wk.heard = time.Now()
	wk.backoff = wk.w.Reconnect
	if wk.w.Protocol == spec.ProtoMDP {
		// ["", "MDPW01", command, ...]
		if len(frames) < 3 || len(frames[0]) != 0 || string(frames[1]) != mdpWorker || len(frames[2]) != 1 {
			r.workerMalformed(s, frames)
			return nil, nil, false
		}
		switch frames[2][0] {
		case mdpRequest:
			// [..., client, "", body...]
			if len(frames) < 5 || len(frames[4]) != 0 {
				r.workerMalformed(s, frames)
				return nil, nil, false
			}
			client := append([]byte(nil), frames[3]...)
			return [][]byte{{}, []byte(mdpWorker), {mdpReply}, client, {}}, frames[5:], true
		case mdpHeartbeat:
		case mdpDisconnect:
			r.log.Info("broker asked the worker to reconnect", "socket", s.name)
			wk.reconnect = true
		default:
			r.workerMalformed(s, frames)
		}
		return nil, nil, false
	}
	if len(frames) == 1 && (bytes.Equal(frames[0], pppHeartbeat) || bytes.Equal(frames[0], pppReady)) {
		return nil, nil, false
	}
	for i, f := range frames {
		if len(f) == 0 {
			return frames[: i+1 : i+1], frames[i+1:], true
		}
	}
	r.workerMalformed(s, frames)
	return nil, nil, false
}

func (r *run) workerMalformed(s *rsock, frames [][]byte) {
	if s.wk.warned {
		return
	}
	s.wk.warned = true
	r.log.Warn("malformed message from the broker, dropped (further ones are not logged)", "socket", s.name,
		"protocol", s.wk.w.Protocol, "frames", fmt.Sprintf("%q", frames))
}

// workerTimeout is how long the reactive loop may sleep before a worker
// socket needs a heartbeat sent or its liveness checked; -1: no worker.
func (r *run) workerTimeout() time.Duration {
	t := time.Duration(-1)
	now := time.Now()
	for _, s := range r.recv {
		wk := s.wk
		if wk == nil {
			continue
		}
		next := wk.heartbeatAt
		if dead := wk.heard.Add(wk.w.Heartbeat * time.Duration(wk.w.Liveness)); len(r.pending) == 0 && dead.Before(next) {
			next = dead
		}
		d := next.Sub(now)
		if d < 0 {
			d = 0
		}
		if t < 0 || d < t {
			t = d
		}
	}
	return t
}

// workerTick sends the heartbeats that are due and reconnects worker
// sockets whose broker fell silent. rebuilt reports that a socket was
// replaced, so the caller's poller is stale.
func (r *run) workerTick() (rebuilt bool, err error) {
	now := time.Now()
	for _, s := range r.recv {
		wk := s.wk
		if wk == nil {
			continue
		}
		if s.sock.Monitor() != nil {
			// A reopened socket whose connection has not completed its
			// handshake: the broker has not heard the READY yet, so its
			// silence says nothing. Counting it from the socket's
			// opening would make the worker give up on a connection
			// just as its READY registers (a broker that takes longer
			// than a liveness to come back), leaving the broker a
			// registration nobody answers for.
			if _, err := s.sock.ReadMonitor(); err != nil {
				r.log.Debug("worker socket monitor", "socket", s.name, "error", err)
				s.sock.Unwatch()
			}
			wk.heard = now
		}
		// While requests are in the handler's hands the broker owes the
		// worker nothing (brokers heartbeat idle workers only).
		silent := len(r.pending) == 0 && now.After(wk.heard.Add(wk.w.Heartbeat*time.Duration(wk.w.Liveness)))
		if wk.reconnect || silent {
			if err := r.reconnectWorker(s); err != nil {
				return true, err
			}
			rebuilt = true
			continue
		}
		if !now.Before(wk.heartbeatAt) {
			if wk.w.Protocol == spec.ProtoMDP {
				r.workerSend(s, [][]byte{{}, []byte(mdpWorker), {mdpHeartbeat}})
			} else {
				r.workerSend(s, [][]byte{pppHeartbeat})
			}
			wk.heartbeatAt = now.Add(wk.w.Heartbeat)
		}
	}
	return rebuilt, nil
}

// reconnectWorker closes a worker socket, pauses (stoppably; none when the
// broker asked for it) and opens it anew; the caller's next turn announces
// it. errStopped when the node stops meanwhile.
func (r *run) reconnectWorker(s *rsock) error {
	wk := s.wk
	pause := wk.backoff
	if wk.reconnect {
		pause = 0
	} else {
		r.log.Warn("broker silent, reconnecting", "socket", s.name, "protocol", wk.w.Protocol,
			"silent", time.Since(wk.heard).Round(time.Millisecond), "pause", pause)
		if wk.backoff *= 2; wk.backoff > wk.w.ReconnectMax {
			wk.backoff = wk.w.ReconnectMax
		}
	}
	wk.reconnect = false
	if err := s.sock.CloseLinger(0); err != nil {
		r.log.Debug("close worker socket", "socket", s.name, "error", err)
	}
	if pause > 0 {
		poller := zmq4.NewPoller()
		poller.Add(r.ctl, zmq4.POLLIN)
		deadline := time.Now().Add(pause)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			if _, err := poller.Poll(left); err != nil && !zsock.IsInterrupted(err) {
				return fmt.Errorf("poll: %w", err)
			}
			if r.readCtl() {
				return errStopped
			}
		}
	}
	zs, err := zsock.OpenWith(r.n.cfg.Context, s.sock.Spec, zsock.Options{Stats: r.n.stats[s.name], Allow: r.n.cfg.Allow[s.name], Node: r.n.cfg.Spec.Name, Logger: r.n.log, WatchHandshakes: true})
	if err != nil {
		return fmt.Errorf("worker socket %q: reopen: %w", s.name, err)
	}
	s.sock = zs
	wk.announced = false
	// Silence counts from the new connection's handshake (workerTick
	// watches for it), then the broker gets a full liveness.
	wk.heard = time.Now()
	return nil
}
