package inbox

import (
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
)

// TestPutWakesSleepingOwner: a Put after an empty Take makes the owner's
// descriptor readable; once drained, Puts while it is awake do not.
func TestPutWakesSleepingOwner(t *testing.T) {
	b, err := New[int]()
	if err != nil {
		t.Fatal(err)
	}
	var p zbatch.Poller
	p.AddFd(b.Fd(), zmq4.POLLIN)
	poll := func(timeout time.Duration) int {
		t.Helper()
		n, err := p.Poll(timeout)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return n
	}

	if got := b.Take(nil); len(got) != 0 {
		t.Fatalf("first Take: got %v, want nothing", got)
	}
	if n := poll(0); n != 0 {
		t.Fatal("readable before any Put")
	}
	b.Put(1)
	b.Put(2)
	if n := poll(20 * time.Second); n != 1 {
		t.Fatalf("poll after Put: %d ready, want 1", n)
	}
	b.Drain()
	if got := b.Take(nil); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("Take: got %v, want [1 2]", got)
	}
	// The owner found items: it is awake, and a Put does not wake it.
	b.Put(3)
	if n := poll(0); n != 0 {
		t.Fatal("a Put to an awake owner made the descriptor readable")
	}
	if got := b.Take(nil); len(got) != 1 || got[0] != 3 {
		t.Fatalf("Take: got %v, want [3]", got)
	}
	if left := b.Close(); len(left) != 0 {
		t.Fatalf("Close: got %v, want nothing left", left)
	}
	if b.Put(4) {
		t.Fatal("Put after Close: got true, want false")
	}
	b.Wake() // after Close: must not write to a released descriptor
}
