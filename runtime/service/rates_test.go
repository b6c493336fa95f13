package service

import (
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/engine"
)

// TestReloaderCoalesces checks the latest-value queue: requests made while
// one is pending give one reload, and every caller waiting for a result
// gets that reload's.
func TestReloaderCoalesces(t *testing.T) {
	r := newReloader()
	a, b := make(chan reloadOutcome, 1), make(chan reloadOutcome, 1)
	r.request(a)
	r.request(nil) // a file event
	r.request(b)
	if got, want := len(r.kick), 1; got != want {
		t.Fatalf("pending kicks: got %d, want %d", got, want)
	}
	<-r.kick
	ws := r.take()
	if got, want := len(ws), 2; got != want {
		t.Fatalf("waiters: got %d, want %d", got, want)
	}
	res := &control.ReloadReply{Result: control.ReloadApplied}
	for _, w := range ws {
		w <- reloadOutcome{result: res}
	}
	for name, c := range map[string]chan reloadOutcome{"a": a, "b": b} {
		if got := (<-c).result; got != res {
			t.Errorf("%s: got %v, want the reload's result", name, got)
		}
	}
	if got := len(r.take()); got != 0 {
		t.Errorf("waiters after take: got %d, want 0", got)
	}
}

func TestRates(t *testing.T) {
	k := rateKey{"sink", "in"}
	p := rateKey{"worker.0", "in"}
	gone := rateKey{"old", "in"}
	t0 := time.Unix(100, 0)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	r := newRateSampler(func() []engine.InstanceStatus { return nil })
	r.snaps = []rateSnap{
		{at: at(0), counts: map[rateKey]rateCount{k: {in: 100}, gone: {in: 50}, p: {in: 0, process: true}}},
		{at: at(1), counts: map[rateKey]rateCount{k: {in: 100, out: 10}, p: {in: 1000, process: true}}},
		{at: at(2), counts: map[rateKey]rateCount{k: {in: 300, out: 10}, p: {in: 1000, process: true}}},
		{at: at(3), counts: map[rateKey]rateCount{k: {in: 500, out: 30}, p: {in: 3000, process: true}, {"new", "in"}: {in: 5}}},
	}
	got := r.current()
	// A goroutine node's over the last 2 s; a process node's over up to 5 s.
	for key, want := range map[rateKey]rate{k: {in: 200, out: 10}, p: {in: 1000}} {
		if got[key] != want {
			t.Errorf("rate of %v: got %+v, want %+v", key, got[key], want)
		}
	}
	if len(got) != 2 {
		t.Errorf("rates: got %v, want only %v and %v (no rate without two samples)", got, k, p)
	}

	// A counter that went down (a replaced instance) has no rate.
	r.snaps[3].counts[k] = rateCount{in: 1}
	if _, ok := r.current()[k]; ok {
		t.Errorf("rate after a reset: got one, want none")
	}

	// The samples of the longest window are kept.
	r = newRateSampler(func() []engine.InstanceStatus { return nil })
	for i := 0; i < 20; i++ {
		r.sample()
	}
	if got, want := len(r.snaps), int(procRateWindow/rateSample)+1; got != want {
		t.Errorf("samples kept: got %d, want %d", got, want)
	}
}
