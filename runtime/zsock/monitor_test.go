package zsock

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
)

// rawSocket is a plain pebbe socket of ctx with a 0 linger, closed at the
// end of the test (before ctx's Term, which newCtx registered first).
func rawSocket(t *testing.T, ctx *zmq4.Context, typ zmq4.Type) *zmq4.Socket {
	t.Helper()
	s, err := ctx.NewSocket(typ)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetLinger(0)
	t.Cleanup(func() { s.Close() })
	return s
}

// A monitored socket's peer that goes away after StopMonitor leaves the
// context's I/O thread free: another connection of the same context still
// moves messages. Closing the monitor's PAIR while the monitor is attached
// blocks that thread in the disconnect event's send, and this test's
// receive then never completes.
func TestStopMonitorLeavesIOThreadFree(t *testing.T) {
	ctx := newCtx(t)
	peerCtx := newCtx(t)
	dir := t.TempDir()
	ep := func(name string) string { return "ipc://" + filepath.Join(dir, name) }

	router := rawSocket(t, ctx, zmq4.ROUTER)
	if err := router.Bind(ep("router")); err != nil {
		t.Fatal(err)
	}
	mon, err := MonitorPair(ctx, router, "test", zmq4.EVENT_DISCONNECTED)
	if err != nil {
		t.Fatal(err)
	}
	dealer, err := peerCtx.NewSocket(zmq4.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	_ = dealer.SetLinger(0)
	if err := dealer.Connect(ep("router")); err != nil {
		t.Fatal(err)
	}
	// One message through: the connection is up on both sides.
	if _, err := dealer.Send("hello", 0); err != nil {
		t.Fatal(err)
	}
	_ = router.SetRcvtimeo(20 * time.Second)
	if _, err := router.RecvMessage(0); err != nil {
		t.Fatalf("router: %v", err)
	}

	StopMonitor(router, mon)
	// The monitor's inner PAIR sees its peer gone at its next command
	// processing; give libzmq that moment, so that a PAIR closed while
	// the monitor was attached would now block the event's send.
	time.Sleep(100 * time.Millisecond)
	dealer.Close() // the router's I/O thread sees the disconnect

	pull := rawSocket(t, ctx, zmq4.PULL)
	if err := pull.Bind(ep("pull")); err != nil {
		t.Fatal(err)
	}
	push := rawSocket(t, ctx, zmq4.PUSH)
	if err := push.Connect(ep("pull")); err != nil {
		t.Fatal(err)
	}
	_ = push.SetSndtimeo(20 * time.Second)
	_ = pull.SetRcvtimeo(20 * time.Second)
	for i := range 3 {
		want := fmt.Sprint("after-", i)
		if _, err := push.Send(want, 0); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		got, err := pull.Recv(0)
		if err != nil || got != want {
			t.Fatalf("got %q, %v; want %q: the context's I/O thread is stuck", got, err, want)
		}
	}
}
