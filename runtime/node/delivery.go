package node

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// At-least-once delivery (SPEC §7, docs/reliability.md).
//
// Wire: a reliable sender sends [ALOMarker, ack, id, body...] (after the
// routing envelope, if any), where ack is the endpoint of the sender's
// acknowledgement PULL and id the message's 16-byte origin id. The
// receiving node strips the three frames, runs its handler, and
// acknowledges by sending the id, in a multipart batch of ids, on a PUSH
// it connects to ack.
//
// A receiver acknowledges once its handler finished with the message and
// what it made of it is safe: sent on plain sockets, or, on its own
// reliable sockets, acknowledged by their receivers in turn (the id
// travels with the message, so a chain of reliable edges acknowledges
// from the far end back). A sender keeps every message until it is
// acknowledged and sends it again, to whichever peer ZeroMQ picks, when
// AckTimeout passes without: the receiver died, stalled, or was removed.
// At most relWindow messages are unacknowledged per socket; past that the
// sender waits.

// ALOMarker is the first frame of a message on an at-least-once edge.
const ALOMarker = "ztopo-alo/1"

// relWindow bounds the unacknowledged messages of one reliable socket.
const relWindow = 1000

// relSender is the sending side of a reliable socket.
type relSender struct {
	spec    *spec.Reliable
	key     []byte
	ack     *zmq4.Socket // PULL bound at spec.AckBind
	nonce   [8]byte
	seq     uint64
	unacked map[string]*relMsg
	// queue holds the messages by the number of times they were sent
	// again (0, 1, 2, 3 or more): within one the wait is the same, so each
	// is in deadline order.
	queue  [4][]qent
	resent uint64
	sends  int
}

// qent is a place in the redelivery queue; only the latest of a message's
// places (gen) counts, so that a message sent again is queued once.
type qent struct {
	m   *relMsg
	gen uint64
}

type relMsg struct {
	gen      uint64
	tries    int // sends again so far: each doubles the wait, up to 8 times AckTimeout
	id       string
	env      [][]byte
	body     [][]byte
	deadline time.Time
	ups      []upRef // upstream acknowledgements owed once this one comes
	acked    bool
}

// upRef is an acknowledgement this node owes an upstream sender.
type upRef struct {
	key string
	id  string
	n   *upCount // shared by the copies sent on several reliable sockets
}

// originIDSize is the length of a message's origin id, the one content of
// an acknowledgement frame.
const originIDSize = 16

// ackMaxFrame bounds a frame on an acknowledgement socket. libzmq applies
// ZMQ_MAXMSGSIZE to the ZMTP handshake's commands too (READY with its
// socket type and identity, some 40 bytes): an id's 16 would refuse every
// peer, so the bound leaves them room.
const ackMaxFrame = 1024

type upCount struct{ left int }

// relIn is the delivery header of the message being handled.
type relIn struct {
	key string
	id  string
}

func (r *run) openReliable(rs *rsock) error {
	sp := rs.sock.Spec
	if sp.Reliable != nil && sp.Reliable.AckBind != "" {
		ack, err := r.n.cfg.Context.NewSocket(zmq4.PULL)
		if err != nil {
			return fmt.Errorf("socket %q: acknowledgements: %w", rs.name, err)
		}
		_ = ack.SetLinger(0)
		_ = ack.SetRcvhwm(0)
		// Every frame an acknowledgement carries is one origin id: a much
		// larger one (another local program on the ipc path) is refused
		// by libzmq before it is read into memory.
		if err := ack.SetMaxmsgsize(ackMaxFrame); err != nil {
			ack.Close()
			return fmt.Errorf("socket %q: acknowledgements: %w", rs.name, err)
		}
		if err := zsock.BindRetry(ack, sp.Reliable.AckBind); err != nil {
			ack.Close()
			return fmt.Errorf("socket %q: bind acknowledgements %s: %w", rs.name, sp.Reliable.AckBind, err)
		}
		s := &relSender{spec: sp.Reliable, key: []byte(sp.Reliable.AckBind), ack: ack, unacked: map[string]*relMsg{}}
		_, _ = rand.Read(s.nonce[:])
		rs.rel = s
		r.reliable = append(r.reliable, rs)
	}
	rs.acks = sp.Acks
	return nil
}

// relSplit takes the delivery header off a received body.
func relSplit(body [][]byte) (in *relIn, rest [][]byte) {
	if len(body) < 3 || string(body[0]) != ALOMarker || len(body[2]) != originIDSize {
		return nil, body
	}
	return &relIn{key: string(body[1]), id: string(body[2])}, body[3:]
}

// relSend sends body on a reliable socket under the current message's
// origin id (a new one for a message that came without), keeping a copy
// until it is acknowledged.
func (r *run) relSend(s *rsock, env, body [][]byte, send func(env, body [][]byte) error) error {
	rs := s.rel
	for len(rs.unacked) >= relWindow {
		if err := r.relWait(s); err != nil {
			return err
		}
	}
	var id string
	if r.relCur != nil {
		id = r.relCur.id
	} else {
		var b [originIDSize]byte
		copy(b[:8], rs.nonce[:])
		rs.seq++
		binary.BigEndian.PutUint64(b[8:], rs.seq)
		id = string(b[:])
	}
	m := rs.unacked[id]
	if m == nil {
		m = &relMsg{id: id}
		rs.unacked[id] = m
	}
	m.env = clone(env, m.env)
	m.body = clone(body, m.body)
	m.deadline = time.Now().Add(rs.spec.AckTimeout)
	m.gen++
	rs.queue[0] = append(rs.queue[0], qent{m, m.gen})
	if r.relCur != nil && r.relUp != nil {
		r.relUp.left++
		m.ups = append(m.ups, upRef{key: r.relCur.key, id: r.relCur.id, n: r.relUp})
	}
	if rs.sends++; rs.sends&63 == 0 {
		// A Runner that only sends never polls: look at acks now and then.
		r.relAcks(s)
		if err := r.relResend(s, time.Now()); err != nil {
			return err
		}
	}
	return send(m.env, relFrames(rs, m))
}

func relFrames(rs *relSender, m *relMsg) [][]byte {
	out := make([][]byte, 0, len(m.body)+3)
	out = append(out, []byte(ALOMarker), rs.key, []byte(m.id))
	return append(out, m.body...)
}

func clone(src, dst [][]byte) [][]byte {
	dst = dst[:0]
	for _, f := range src {
		dst = append(dst, append([]byte(nil), f...))
	}
	return dst
}

// relAcks takes in the acknowledgements waiting on a reliable socket.
func (r *run) relAcks(s *rsock) {
	rs := s.rel
	for {
		ids, err := rs.ack.RecvMessageBytes(zmq4.DONTWAIT)
		if err != nil {
			return
		}
		for _, id := range ids {
			m := rs.unacked[string(id)]
			if m == nil {
				continue // a second ack of a message sent twice
			}
			delete(rs.unacked, string(id))
			m.acked = true
			for _, u := range m.ups {
				if u.n.left--; u.n.left == 0 {
					r.ackUp(u.key, u.id)
				}
			}
			m.ups, m.env, m.body = nil, nil, nil
		}
	}
}

// relResend sends again what waited past its deadline.
func (r *run) relResend(s *rsock, now time.Time) error {
	rs := s.rel
	for qi := range rs.queue {
		if err := r.relResendQueue(s, qi, now); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) relResendQueue(s *rsock, qi int, now time.Time) error {
	rs := s.rel
	for len(rs.queue[qi]) > 0 {
		e := rs.queue[qi][0]
		m := e.m
		if m.acked || e.gen != m.gen {
			rs.queue[qi][0] = qent{}
			rs.queue[qi] = rs.queue[qi][1:]
			continue
		}
		if now.Before(m.deadline) {
			return nil
		}
		rs.queue[qi][0] = qent{}
		rs.queue[qi] = rs.queue[qi][1:]
		// Backing off keeps a receiver that is slow rather than gone from
		// drowning in copies of what it already holds.
		m.tries++
		next := min(m.tries, 3)
		m.deadline = now.Add(rs.spec.AckTimeout << next)
		m.gen++
		rs.queue[next] = append(rs.queue[next], qent{m, m.gen})
		rs.resent++
		if rs.resent == 1 || rs.resent%1000 == 0 {
			r.log.Info("sending unacknowledged messages again", "socket", s.name, "resent", rs.resent, "unacknowledged", len(rs.unacked))
		}
		if err := r.sendRaw(s, m.env, relFrames(rs, m)); err != nil {
			return err
		}
	}
	return nil
}

// relNext is how long until the next redelivery is due; -1: none.
func (r *run) relNext() time.Duration {
	t := time.Duration(-1)
	now := time.Now()
	for _, s := range r.reliable {
		for _, q := range s.rel.queue {
			for _, e := range q {
				m := e.m
				if m.acked || e.gen != m.gen {
					continue
				}
				d := max(m.deadline.Sub(now), 0)
				if t < 0 || d < t {
					t = d
				}
				break
			}
		}
	}
	return t
}

// relTick takes in acknowledgements and redelivers on every reliable socket.
func (r *run) relTick() error {
	now := time.Now()
	for _, s := range r.reliable {
		r.relAcks(s)
		if err := r.relResend(s, now); err != nil {
			return err
		}
	}
	r.flushAcks()
	return nil
}

// relWait waits for acknowledgements (or a redelivery due) on a full
// window, stoppably.
func (r *run) relWait(s *rsock) error {
	poller := zmq4.NewPoller()
	poller.Add(r.ctl, zmq4.POLLIN)
	poller.Add(s.rel.ack, zmq4.POLLIN)
	if _, err := poller.Poll(r.relNext()); err != nil && !zsock.IsInterrupted(err) {
		return fmt.Errorf("poll: %w", err)
	}
	if r.readCtl() || r.ctx.Err() != nil {
		return errStopped
	}
	return r.relTick()
}

// relPending is the number of unacknowledged messages.
func (r *run) relPending() int {
	n := 0
	for _, s := range r.reliable {
		n += len(s.rel.unacked)
	}
	return n
}

// relDrain waits until every reliable socket's messages are acknowledged,
// redelivering as due; until stop when stop is nil, else until the
// deadline too. It reports what is left.
func (r *run) relDrain(deadline time.Time) int {
	if len(r.reliable) == 0 {
		return 0
	}
	poller := zmq4.NewPoller()
	poller.Add(r.ctl, zmq4.POLLIN)
	for _, s := range r.reliable {
		poller.Add(s.rel.ack, zmq4.POLLIN)
	}
	for r.relPending() > 0 {
		t := r.relNext()
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			if t < 0 || left < t {
				t = left
			}
		}
		if _, err := poller.Poll(t); err != nil && !zsock.IsInterrupted(err) {
			break
		}
		if r.readCtl() && deadline.IsZero() {
			break
		}
		if err := r.relTick(); err != nil {
			break
		}
	}
	return r.relPending()
}

// ackUp owes key an acknowledgement of id; flushAcks sends them.
func (r *run) ackUp(key, id string) {
	if r.acks == nil {
		r.acks = map[string][][]byte{}
	}
	r.acks[key] = append(r.acks[key], []byte(id))
	if len(r.acks[key]) >= 256 {
		r.flushAck(key)
	}
}

func (r *run) flushAcks() {
	for key, ids := range r.acks {
		if len(ids) > 0 {
			r.flushAck(key)
		}
	}
}

func (r *run) flushAck(key string) {
	ids := r.acks[key]
	r.acks[key] = ids[:0]
	s := r.ackSocks[key]
	if s == nil {
		ep := key
		if !strings.HasPrefix(ep, "inproc://") && !strings.HasPrefix(ep, "ipc://") {
			r.log.Warn("acknowledgement endpoint of a sender is neither inproc nor ipc, dropped", "endpoint", ep)
			return
		}
		z, err := r.n.cfg.Context.NewSocket(zmq4.PUSH)
		if err != nil {
			r.log.Warn("acknowledgement socket", "sender", key, "error", err)
			return
		}
		_ = z.SetLinger(time.Second)
		_ = z.SetSndhwm(0)
		if err := z.Connect(ep); err != nil {
			z.Close()
			r.log.Warn("acknowledgement socket: connect", "sender", key, "endpoint", ep, "error", err)
			return
		}
		if r.ackSocks == nil {
			r.ackSocks = map[string]*zmq4.Socket{}
		}
		r.ackSocks[key] = z
		s = z
	}
	// Never waits: an acknowledgement that cannot go is as good as lost,
	// and the sender sends the message again.
	if _, err := s.SendMessageDontwait(ids); err != nil && !zsock.IsAgain(err) {
		r.log.Debug("acknowledgement not sent", "sender", key, "error", err)
	}
}

// closeReliable closes the acknowledgement sockets.
func (r *run) closeReliable() {
	r.flushAcks()
	for _, z := range r.ackSocks {
		z.Close()
	}
	r.ackSocks = nil
	for _, s := range r.reliable {
		if n := len(s.rel.unacked); n > 0 {
			r.log.Warn("unacknowledged messages lost at stop", "socket", s.name, "count", n)
		}
		s.rel.ack.Close()
	}
	r.reliable = nil
}
