package zsock

import (
	"time"

	"github.com/pebbe/zmq4"
)

// Peers of a bound socket.
//
// The engine's drain keeps a relay running after the topology completed
// only while what it passes on can still reach someone: a node of the
// topology that has not completed, or a peer outside it. A socket bound
// on tcp or ipc may have such an outside peer; whether it has one is what
// the peer monitor tells: a goroutine of the socket's own reads its
// ACCEPTED and DISCONNECTED events and keeps the number of connections
// accepted and not yet gone in the socket's Stats (Stats.Peers), and how
// many of them ended (Stats.PeersLost). The engine compares the first
// with how many of the topology's own sockets connect there.
//
// A number says nothing of whose connections it counts: while one of the
// topology's connections is down and reconnecting, an outside peer's
// takes its place in the count. That cannot happen while no accepted
// connection has ever ended, so the engine trusts the count only then. A
// socket reopened on the same Stats (a restarted node) counts as one lost
// connection: the peers of the one before must reconnect to it.
//
// libzmq keeps one monitor per socket: a socket that already has one (a
// CURVE server's, the sync barrier's) has no peer count, and its peers are
// unknown.

const peerMonEvents = zmq4.EVENT_ACCEPTED | zmq4.EVENT_DISCONNECTED |
	zmq4.EVENT_MONITOR_STOPPED // sent on detaching: the goroutine ends

// peerMonitor is the goroutine side of a bound socket's peer monitor.
type peerMonitor struct {
	done chan struct{} // closed when the goroutine has closed its socket
}

// watchPeers attaches the peer monitor, before the socket binds.
func (s *Socket) watchPeers(ctx *zmq4.Context) error {
	mon, err := s.monitorPair(ctx, "peermon", peerMonEvents)
	if err != nil {
		return err
	}
	m := &peerMonitor{done: make(chan struct{})}
	s.peerMon = m
	s.Stats.peers.Store(0)
	if s.Stats.peersWatched.Swap(true) {
		s.Stats.peersLost.Add(1)
	}
	s.Stats.peersKnown.Store(true)
	// The PAIR moves to the goroutine here, and only it uses it from
	// then on.
	go m.run(mon, s.Stats)
	return nil
}

// stopPeerMonitor detaches the monitor and waits (bounded) for its
// goroutine to close its socket, as stopAuthMonitor does.
func (s *Socket) stopPeerMonitor() {
	if s.peerMon == nil {
		return
	}
	s.Stats.peersKnown.Store(false)
	_ = s.Z.Monitor("", 0)
	select {
	case <-s.peerMon.done:
	case <-time.After(5 * time.Second):
	}
	s.peerMon = nil
}

func (m *peerMonitor) run(mon *zmq4.Socket, st *Stats) {
	defer close(m.done)
	accepted := map[int]bool{} // descriptors from ACCEPTED
	readEvents(mon, func(ev zmq4.Event, fd int) {
		switch ev {
		case zmq4.EVENT_ACCEPTED:
			accepted[fd] = true
		case zmq4.EVENT_DISCONNECTED:
			// Only the accepted ones: a socket that also connects
			// sees its own connections end too.
			if accepted[fd] {
				delete(accepted, fd)
				st.peersLost.Add(1)
			}
		}
		st.peers.Store(int64(len(accepted)))
	})
}

// Peers is how many connections the socket accepted on its tcp and ipc
// binds and still has, and whether that is known (the socket was opened
// with Options.WatchPeers, has no other monitor, and is open). An
// accepted connection counts once its event has been read, a moment after
// libzmq accepted it.
func (st *Stats) Peers() (n int64, known bool) {
	return st.peers.Load(), st.peersKnown.Load()
}

// PeersLost is how many connections accepted on the socket's tcp and ipc
// binds ended since its Stats were first watched (Options.WatchPeers),
// plus one for each time a socket was reopened on them. While it is 0,
// every connection ever accepted is still there; once it is not, some
// peer may be between a disconnect and its reconnect, unseen by Peers.
// Read it after Peers: a connection's end is counted here before Peers
// drops it, so a Peers that no longer has it comes with a PeersLost that
// has it.
func (st *Stats) PeersLost() int64 {
	return st.peersLost.Load()
}
