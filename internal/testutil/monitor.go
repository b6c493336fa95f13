package testutil

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pebbe/zmq4"
)

var monitorSeq atomic.Int64

// DisconnectMonitor watches s for EVENT_DISCONNECTED: it returns the PAIR
// the events come on, with a 0 linger, and stop, which detaches the
// monitor and closes the PAIR. The caller defers stop after s's Close (so
// that it runs first) and before zctx's Term: with the PAIR closed while
// the monitor is attached, libzmq's I/O thread blocks for ever sending the
// closing s's events (see zsock.StopMonitor, which this package cannot
// import).
func DisconnectMonitor(t testing.TB, zctx *zmq4.Context, s *zmq4.Socket) (mon *zmq4.Socket, stop func()) {
	t.Helper()
	addr := fmt.Sprintf("inproc://testutil-disconnect-monitor-%d", monitorSeq.Add(1))
	if err := s.Monitor(addr, zmq4.EVENT_DISCONNECTED); err != nil {
		t.Fatal(err)
	}
	mon, err := zctx.NewSocket(zmq4.PAIR)
	if err != nil {
		_ = s.Monitor("", 0)
		t.Fatal(err)
	}
	_ = mon.SetLinger(0)
	if err := mon.Connect(addr); err != nil {
		mon.Close()
		_ = s.Monitor("", 0)
		t.Fatal(err)
	}
	return mon, func() {
		_ = s.Monitor("", 0)
		_ = mon.Close()
	}
}
