package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// sockets is a node's sockets as its Runner sees them. Every blocking call
// also polls the control socket, so a Runner stays stoppable.
type sockets struct {
	r   *run
	ctx context.Context
}

var (
	_ handler.Sockets    = (*sockets)(nil)
	_ handler.Waiter     = (*sockets)(nil)
	_ handler.Controlled = (*sockets)(nil)
	_ handler.Repeater   = (*sockets)(nil)
)

func (s *sockets) Names() []string {
	names := make([]string, 0, len(s.r.byName))
	for n := range s.r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *sockets) Spec(name string) *spec.Socket {
	if rs := s.r.byName[name]; rs != nil {
		return rs.sock.Spec
	}
	return nil
}

func (s *sockets) Raw(name string) any {
	if rs := s.r.byName[name]; rs != nil {
		return rs.sock.Z
	}
	return nil
}

func (s *sockets) Control() any { return s.r.ctl }

func (s *sockets) Proxying(frontend, backend, capture string) (done func()) {
	ps := &proxyStats{}
	if rs := s.r.byName[frontend]; rs != nil {
		ps.front = rs.sock.Stats
	}
	if rs := s.r.byName[backend]; rs != nil {
		ps.back = rs.sock.Stats
	}
	if rs := s.r.byName[capture]; rs != nil {
		ps.capture = rs.sock.Stats
	}
	if ps.front == nil || ps.back == nil {
		return func() {}
	}
	s.r.startProxy(ps)
	return s.r.stopProxy
}

func (s *sockets) stopped() bool { return s.ctx.Err() != nil }

func (s *sockets) err() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	return context.Canceled
}

func (s *sockets) get(name string) (*rsock, error) {
	rs := s.r.byName[name]
	if rs == nil {
		return nil, fmt.Errorf("no socket %q", name)
	}
	return rs, nil
}

func (s *sockets) Send(name string, frames [][]byte) error {
	rs, err := s.get(name)
	if err != nil {
		return err
	}
	if err := s.r.sendCtx(s.ctx, rs, nil, frames); err != nil {
		if errors.Is(err, errStopped) {
			return s.err()
		}
		return err
	}
	return nil
}

func (s *sockets) SendRepeat(name string, frames [][]byte, n int) error {
	rs, err := s.get(name)
	if err != nil {
		return err
	}
	if rs.rel != nil {
		// Each copy is a message of its own, with an id to acknowledge.
		for ; n > 0; n-- {
			if err := s.Send(name, frames); err != nil {
				return err
			}
		}
		return nil
	}
	for n > 0 {
		sent, err := rs.sock.SendRepeat(frames, n)
		n -= sent
		if err == nil {
			continue
		}
		if !zsock.IsAgain(err) {
			if err := s.r.sendFailed(rs, err); err != nil {
				return err
			}
			n-- // that message is lost, as with Send
			continue
		}
		// The peer is full: one send that waits, stoppably, as Send.
		if err := s.Send(name, frames); err != nil {
			return err
		}
		n--
	}
	return nil
}

func (s *sockets) Recv(name string) ([][]byte, error) {
	rs, err := s.get(name)
	if err != nil {
		return nil, err
	}
	for {
		m, err := rs.sock.Recv(zmq4.DONTWAIT)
		if err == nil {
			return m, nil
		}
		if !zsock.IsAgain(err) && !zsock.IsInterrupted(err) {
			return nil, fmt.Errorf("socket %q: receive: %w", name, err)
		}
		if _, err := s.wait([]*rsock{rs}, -1); err != nil {
			return nil, err
		}
	}
}

func (s *sockets) Wait(names []string, timeout time.Duration) ([]string, error) {
	rss := make([]*rsock, len(names))
	for i, n := range names {
		rs, err := s.get(n)
		if err != nil {
			return nil, err
		}
		rss[i] = rs
	}
	ready, err := s.wait(rss, timeout)
	if err != nil || len(ready) == 0 {
		return nil, err
	}
	out := make([]string, len(ready))
	for i, rs := range ready {
		out[i] = rs.name
	}
	return out, nil
}

// wait polls rss for input together with the control socket. It returns
// the readable ones, nothing after timeout, or the stop error.
func (s *sockets) wait(rss []*rsock, timeout time.Duration) ([]*rsock, error) {
	if s.stopped() {
		return nil, s.err()
	}
	poller := zmq4.NewPoller()
	poller.Add(s.r.ctl, zmq4.POLLIN)
	for _, rs := range rss {
		poller.Add(rs.sock.Z, zmq4.POLLIN)
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		t := time.Duration(-1)
		if timeout >= 0 {
			// A deadline passed still polls once: Wait(names, 0) asks
			// what is ready now.
			t = max(time.Until(deadline), 0)
		}
		polled, err := poller.PollAll(t)
		if err != nil {
			if zsock.IsInterrupted(err) {
				continue
			}
			return nil, fmt.Errorf("poll: %w", err)
		}
		if polled[0].Events&zmq4.POLLIN != 0 {
			s.r.readCtl()
		}
		if s.stopped() {
			return nil, s.err()
		}
		var ready []*rsock
		for i, rs := range rss {
			if polled[i+1].Events&zmq4.POLLIN != 0 {
				ready = append(ready, rs)
			}
		}
		if len(ready) > 0 {
			return ready, nil
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return nil, nil
		}
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
