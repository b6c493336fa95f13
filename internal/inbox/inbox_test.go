package inbox

import (
	"testing"
	"time"

	"github.com/pebbe/zmq4"
)

// TestPutWakesSleepingOwner: a Put after an empty Take reaches the owner as
// one wake-up message; Puts while it is awake send none.
func TestPutWakesSleepingOwner(t *testing.T) {
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	b := New[int]()
	pull, stop, err := StartWaker(zctx, b.Kick())
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	defer stop()
	poller := zmq4.NewPoller()
	poller.Add(pull, zmq4.POLLIN)

	if got := b.Take(nil); len(got) != 0 {
		t.Fatalf("first Take: got %v, want nothing", got)
	}
	b.Put(1)
	b.Put(2) // the owner is already kicked: no second wake-up
	polled, err := poller.Poll(20 * time.Second)
	if err != nil || len(polled) != 1 {
		t.Fatalf("poll: got %v, %v; want one wake-up", polled, err)
	}
	Drain(pull)
	if got := b.Take(nil); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("Take: got %v, want [1 2]", got)
	}
	if left := b.Close(); len(left) != 0 {
		t.Fatalf("Close: got %v, want nothing left", left)
	}
	if b.Put(3) {
		t.Fatal("Put after Close: got true, want false")
	}
}
