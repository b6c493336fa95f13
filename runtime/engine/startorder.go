package engine

import (
	"context"
	"sync"
	"time"

	"github.com/ztopo/ztopo/spec"
)

// openWait bounds how long Run waits for one wave of instances to open
// their sockets before it starts the next anyway: a handler that takes
// long to build (a plugin's handshake) must not hold its peers back more
// than libzmq's reconnects would.
const openWait = time.Second

// opening tells when an instance's first attempt has opened its sockets
// (node.Config.OnOpen), or ended without: the next wave may start.
type opening struct {
	once sync.Once
	ch   chan struct{}
}

func newOpening() *opening { return &opening{ch: make(chan struct{})} }

func (o *opening) done() {
	if o != nil {
		o.once.Do(func() { close(o.ch) })
	}
}

// runWaves orders instances for Run's first start: binders before the
// instances that connect to them. A tcp or ipc connect that comes before
// its peer's bind is refused, and libzmq retries it only after its
// reconnect interval (100 ms and up to as much again of jitter by
// default) — time every node behind it waits, a sync barrier longest.
// Wave k holds the instances whose connects (sockets and sync) all meet
// binds of earlier waves or of no instance; those on a cycle of connects
// go together in a last wave. Process nodes open their sockets in a child
// the engine does not hear from: nothing waits for them.
func runWaves(insts []*instance) [][]*instance {
	binds := make([][]string, len(insts))
	conns := make([][]string, len(insts))
	for i, in := range insts {
		for _, s := range in.spec.Sockets {
			binds[i] = append(binds[i], s.Bind...)
			conns[i] = append(conns[i], s.Connect...)
		}
		if sy := in.spec.Sync; sy != nil {
			if sy.Expect > 0 && sy.Bind != "" {
				binds[i] = append(binds[i], sy.Bind)
			}
			if sy.Connect != "" {
				conns[i] = append(conns[i], sy.Connect)
			}
		}
	}
	// after[i]: the instances i connects to, which must open first.
	after := make([][]int, len(insts))
	for i := range insts {
		for j := range insts {
			if i != j && meetsAny(conns[i], binds[j]) {
				after[i] = append(after[i], j)
			}
		}
	}
	var waves [][]*instance
	placed := make([]bool, len(insts))
	for left := len(insts); left > 0; {
		var wave []int
		for i := range insts {
			if placed[i] {
				continue
			}
			ready := true
			for _, j := range after[i] {
				if !placed[j] {
					ready = false
					break
				}
			}
			if ready {
				wave = append(wave, i)
			}
		}
		if len(wave) == 0 {
			for i := range insts {
				if !placed[i] {
					wave = append(wave, i)
				}
			}
		}
		var w []*instance
		for _, i := range wave {
			placed[i] = true
			left--
			w = append(w, insts[i])
		}
		waves = append(waves, w)
	}
	return waves
}

func meetsAny(conns, binds []string) bool {
	for _, c := range conns {
		for _, b := range binds {
			if spec.Meet(b, c) {
				return true
			}
		}
	}
	return false
}

// awaitOpen waits until every goroutine instance of wave has opened its
// sockets or ended its first attempt, at most openWait, or until ctx ends.
func awaitOpen(ctx context.Context, wave []*instance) {
	t := time.NewTimer(openWait)
	defer t.Stop()
	for _, in := range wave {
		if in.opening == nil {
			continue
		}
		select {
		case <-in.opening.ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
