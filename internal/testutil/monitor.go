package testutil

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pebbe/zmq4"
)

var monitorSeq atomic.Int64

// DisconnectMonitor watches s for EVENT_DISCONNECTED: it returns the PAIR
// the events come on, with a 0 linger. The caller closes it before it
// terminates zctx (a context waits for its sockets).
func DisconnectMonitor(t testing.TB, zctx *zmq4.Context, s *zmq4.Socket) *zmq4.Socket {
	t.Helper()
	addr := fmt.Sprintf("inproc://testutil-disconnect-monitor-%d", monitorSeq.Add(1))
	if err := s.Monitor(addr, zmq4.EVENT_DISCONNECTED); err != nil {
		t.Fatal(err)
	}
	mon, err := zctx.NewSocket(zmq4.PAIR)
	if err != nil {
		t.Fatal(err)
	}
	_ = mon.SetLinger(0)
	if err := mon.Connect(addr); err != nil {
		mon.Close()
		t.Fatal(err)
	}
	return mon
}
