package zsock

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
)

// Handshakes refused before ZAP.
//
// Not every refused CURVE handshake reaches the ZAP handler: libzmq itself
// refuses a plain (NULL) client (a mechanism mismatch) and a client that
// encrypts its HELLO for another server key (a cryptographic error) before
// any ZAP request. A socket monitor sees those: a CURVE server socket gets
// one, read by a goroutine of its own, which counts HANDSHAKE_FAILED_PROTOCOL
// and HANDSHAKE_FAILED_NO_DETAIL events into the socket's auth failures (the
// ZAP handler counts the refusals it makes itself, HANDSHAKE_FAILED_AUTH,
// with the client's key) and logs them through the guard's rate limit.
//
// The peer's address: libzmq's monitor events name the bound endpoint, not
// the peer, but ACCEPTED carries the connection's file descriptor, whose
// peer the goroutine reads at once (getpeername), and the DISCONNECTED that
// follows a failed handshake carries the same descriptor. The address is a
// best effort: when the connection is already gone by the time ACCEPTED is
// read, the line says "unknown".

const authMonEvents = zmq4.EVENT_ACCEPTED | zmq4.EVENT_DISCONNECTED |
	zmq4.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq4.EVENT_HANDSHAKE_FAILED_NO_DETAIL |
	zmq4.EVENT_MONITOR_STOPPED // sent on detaching: the goroutine ends

// authMonPoll bounds each wait of the monitor goroutine; it ends on the
// monitor's MONITOR_STOPPED event or the context's termination.
const authMonPoll = 500 * time.Millisecond

// authMonitor is the goroutine side of a CURVE server socket's monitor.
type authMonitor struct {
	done chan struct{} // closed when the goroutine has closed its socket
}

// watchAuth attaches the pre-ZAP handshake monitor to a CURVE server
// socket, before it binds.
func (s *Socket) watchAuth(ctx *zmq4.Context) error {
	mon, err := s.monitorPair(ctx, "authmon", authMonEvents)
	if err != nil {
		return err
	}
	m := &authMonitor{done: make(chan struct{})}
	s.authMon = m
	// The PAIR moves to the goroutine here (a full memory barrier: the
	// go statement), and only the goroutine uses it from then on.
	go m.run(mon, s.Guard)
	return nil
}

// stop detaches the monitor and waits (bounded) for its goroutine to close
// its socket: a monitor left attached at context termination crashes
// libzmq, and a PAIR left open keeps the context from terminating.
func (s *Socket) stopAuthMonitor() {
	if s.authMon == nil {
		return
	}
	_ = s.Z.Monitor("", 0) // the goroutine gets MONITOR_STOPPED
	select {
	case <-s.authMon.done:
	case <-time.After(5 * time.Second):
		// It polls at most authMonPoll at a time; never seen to take
		// this long, but a close must not hang on it.
	}
	s.authMon = nil
}

func (m *authMonitor) run(mon *zmq4.Socket, g *Guard) {
	defer close(m.done)
	peers := map[int]string{} // fd -> peer address, from ACCEPTED
	why := ""                 // a handshake failed: its DISCONNECTED names the peer
	readEvents(mon, func(ev zmq4.Event, val int) {
		switch ev {
		case zmq4.EVENT_ACCEPTED:
			peers[val] = peerOf(val)
		case zmq4.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq4.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			g.count()
			if why != "" { // the previous one never saw its disconnect
				g.logDenied("unknown", "", why)
			}
			why = failureReason(ev, val)
		case zmq4.EVENT_DISCONNECTED:
			peer := peers[val]
			delete(peers, val)
			if why != "" {
				if peer == "" {
					peer = "unknown"
				}
				g.logDenied(peer, "", why)
				why = ""
			}
		}
	})
}

// readEvents is a monitor goroutine's loop: it hands each event of mon to
// fn until MONITOR_STOPPED (the owner detached the monitor) or the
// context's end, then closes mon. It waits at most authMonPoll at a time.
func readEvents(mon *zmq4.Socket, fn func(ev zmq4.Event, val int)) {
	defer mon.Close()
	poller := zmq4.NewPoller()
	poller.Add(mon, zmq4.POLLIN)
	for {
		polled, err := poller.Poll(authMonPoll)
		if err != nil {
			if zmq4.AsErrno(err) == zmq4.ETERM {
				return
			}
			continue
		}
		if len(polled) == 0 {
			continue
		}
		for {
			ev, _, val, err := mon.RecvEvent(zmq4.DONTWAIT)
			if err != nil {
				if IsAgain(err) {
					break
				}
				return // ETERM, or the socket is gone
			}
			if ev == zmq4.EVENT_MONITOR_STOPPED {
				return
			}
			fn(ev, val)
		}
	}
}

// peerOf is the peer address of a connection's descriptor, or "".
func peerOf(fd int) string {
	sa, err := syscall.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *syscall.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	return ""
}

// libzmq's ZMQ_PROTOCOL_ERROR_* values (zmq.h) for the refusals a CURVE
// server makes before ZAP.
const (
	protoErrCryptographic     = 0x11000001
	protoErrMechanismMismatch = 0x11000002
)

func failureReason(ev zmq4.Event, val int) string {
	if ev == zmq4.EVENT_HANDSHAKE_FAILED_NO_DETAIL {
		return "handshake failed: " + syscall.Errno(val).Error()
	}
	switch val {
	case protoErrMechanismMismatch:
		return "not a CURVE client (mechanism mismatch)"
	case protoErrCryptographic:
		return "cannot decrypt the client's hello (it expects another server key)"
	}
	return fmt.Sprintf("ZMTP protocol error 0x%x", val)
}
