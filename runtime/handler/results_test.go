package handler

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestResultQueueNeverBlocksAndCounts: Put never blocks, even far beyond the
// channel's capacity; every Result arrives exactly once; Pending counts what
// was not read; OnResult is called once per Result made receivable.
func TestResultQueueNeverBlocksAndCounts(t *testing.T) {
	const capacity, n = 4, 100
	q := NewResultQueue(capacity)
	defer q.Close()
	var notified atomic.Int64
	q.OnResult(func() { notified.Add(1) })
	q.Add(n)
	for i := range n {
		q.Put(Result{Tag: uint64(i)}) // would hang the test if it blocked
	}
	if got := q.Pending(); got != n {
		t.Fatalf("Pending before any read = %d, want %d", got, n)
	}
	seen := make(map[uint64]bool)
	for len(seen) < n {
		select {
		case r := <-q.C():
			if seen[r.Tag] {
				t.Fatalf("tag %d delivered twice", r.Tag)
			}
			seen[r.Tag] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d results arrived", len(seen), n)
		}
	}
	// The pump settles its books just after the send a reader saw:
	// Pending may count a Result a moment longer, never less.
	deadline := time.Now().Add(10 * time.Second)
	for (q.Pending() != 0 || notified.Load() != n) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := q.Pending(); got != 0 {
		t.Errorf("Pending after reading all = %d, want 0", got)
	}
	if got := notified.Load(); got != n {
		t.Errorf("OnResult called %d times, want %d", got, n)
	}
}

// TestResultQueueAddNegative: a hand-over that failed after Add(1) is taken
// back with Add(-1), so that a drain does not wait for it.
func TestResultQueueAddNegative(t *testing.T) {
	q := NewResultQueue(1)
	defer q.Close()
	q.Add(1)
	q.Add(-1)
	if got := q.Pending(); got != 0 {
		t.Fatalf("Pending = %d, want 0", got)
	}
}

// TestResultQueueCloseTwice: Close ends the pump even while Results wait in
// the overflow with nobody reading, and may be called again.
func TestResultQueueCloseTwice(t *testing.T) {
	q := NewResultQueue(1)
	q.Add(3)
	for i := range 3 {
		q.Put(Result{Tag: uint64(i)})
	}
	done := make(chan struct{})
	go func() {
		q.Close()
		q.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
