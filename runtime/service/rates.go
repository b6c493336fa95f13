package service

import (
	"context"
	"sync"
	"time"

	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/spec"
)

// Rates are computed over the last rateWindow, sampled every rateSample.
// Process nodes report their counters once a second (procnode.
// StatsInterval), in steps: over a window of two seconds their rate would
// jump by half its value depending on how many reports fell in it, so
// theirs is computed over procRateWindow (one report more or less is 20%).
const (
	rateSample     = 500 * time.Millisecond
	rateWindow     = 2 * time.Second
	procRateWindow = 5 * time.Second
)

type rateKey struct{ inst, socket string }

type rate struct{ in, out float64 }

// rateCount is one socket's counters in a sample.
type rateCount struct {
	in, out uint64
	process bool // the instance runs in a child process
}

type rateSnap struct {
	at     time.Time
	counts map[rateKey]rateCount
}

// rateSampler keeps the samples of the last procRateWindow; a socket's rate
// is the difference between the newest sample and the oldest one within
// its window.
type rateSampler struct {
	status func() []engine.InstanceStatus

	mu    sync.Mutex
	snaps []rateSnap
}

func newRateSampler(status func() []engine.InstanceStatus) *rateSampler {
	return &rateSampler{status: status}
}

func (r *rateSampler) run(ctx context.Context) {
	t := time.NewTicker(rateSample)
	defer t.Stop()
	r.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sample()
		}
	}
}

func (r *rateSampler) sample() {
	s := rateSnap{at: time.Now(), counts: map[rateKey]rateCount{}}
	for _, in := range r.status() {
		for _, so := range in.Sockets {
			s.counts[rateKey{in.Name, so.Name}] = rateCount{so.MsgsIn, so.MsgsOut, in.Run == spec.RunProcess}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, s)
	keep := int(procRateWindow/rateSample) + 1
	if len(r.snaps) > keep {
		r.snaps = append(r.snaps[:0], r.snaps[len(r.snaps)-keep:]...)
	}
}

func (r *rateSampler) current() map[rateKey]rate {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[rateKey]rate{}
	if len(r.snaps) < 2 {
		return out
	}
	last := r.snaps[len(r.snaps)-1]
	for k, c := range last.counts {
		window := rateWindow
		if c.process {
			window = procRateWindow
		}
		// The oldest sample within the window that knows this socket.
		var first *rateSnap
		for i := range r.snaps[:len(r.snaps)-1] {
			s := &r.snaps[i]
			if _, ok := s.counts[k]; ok && last.at.Sub(s.at) <= window {
				first = s
				break
			}
		}
		if first == nil {
			continue
		}
		p := first.counts[k]
		dt := last.at.Sub(first.at).Seconds()
		// A counter that went down belongs to a replaced instance: no rate
		// until the window holds two samples of the new one.
		if dt <= 0 || c.in < p.in || c.out < p.out {
			continue
		}
		out[k] = rate{in: float64(c.in-p.in) / dt, out: float64(c.out-p.out) / dt}
	}
	return out
}

// RunRates samples the counters for the rates of Status until ctx is done.
func (s *Service) RunRates(ctx context.Context) { s.rates.run(ctx) }
