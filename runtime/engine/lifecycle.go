package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/spec"
)

// Instance mechanics shared by reloads, supervised restarts and shutdown:
// swapping an instance's handler, discarding one that never ran, retiring
// (draining, then stopping) running ones, and waiting until started ones
// run.

// swapTo gives a live instance the definition n (of topology t), whose
// handler h is built: into the running node's slot, or for its next attempt
// when it is between attempts.
func (in *instance) swapTo(n *spec.Node, t *spec.Topology, h any) error {
	if in.proc != nil {
		return errProcessSwap
	}
	in.mu.Lock()
	var stale any
	switch {
	case in.runner != nil && in.st != StateRestarting:
		if err := in.runner.swap(h); err != nil {
			in.mu.Unlock()
			return err
		}
	default:
		// Restarting (or not started yet): the next attempt starts with
		// it; supervise also hands it over if that attempt is being set up.
		stale, in.first = in.first, h
	}
	in.spec, in.topo = n, t
	in.completes = node.Completes(h)
	in.producer = isProducer(n, h)
	in.mu.Unlock()
	discard(stale)
	return nil
}

// setAllow gives the instance n, a definition that differs from its own
// only in widened allow lists (spec.Plan.AllowOnly): the lists its CURVE
// server sockets' ZAP domains read are replaced, nothing else is touched.
func (in *instance) setAllow(n *spec.Node, t *spec.Topology) error {
	for _, s := range n.Sockets {
		if a := in.allow[s.Name]; a != nil && s.Curve != nil && s.Curve.Server {
			if err := a.Set(s.Curve); err != nil {
				return fmt.Errorf("socket %q: %w", s.Name, err)
			}
		}
	}
	in.mu.Lock()
	in.spec, in.topo = n, t
	in.mu.Unlock()
	return nil
}

func (in *instance) name() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.spec.Name
}

// discard closes the handler built for an instance that never ran.
func (in *instance) discard() {
	in.mu.Lock()
	h := in.first
	in.first = nil
	in.mu.Unlock()
	discard(h)
}

// discard closes a handler that never ran (a plugin host or exec child was
// already started by its factory).
func discard(h any) {
	if c, ok := h.(handler.Closer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}
}

// moved is the instance's message count, in and out, over every socket.
func (in *instance) moved() uint64 {
	var total uint64
	for _, s := range in.counters() {
		total += s.MsgsIn + s.MsgsOut
	}
	return total
}

// remove stops a started instance at once and takes it out of the set.
func (e *Engine) remove(in *instance) {
	in.stop()
	if !in.wait(minLevelWait) {
		in.log.Warn("node is slow to stop")
	}
	e.mu.Lock()
	if e.insts[in.name()] == in {
		delete(e.insts, in.name())
		e.bury(in)
	}
	e.mu.Unlock()
}

// retire drains and stops instances that a reload removes or replaces.
// Producers stop at once; every other instance keeps running until its
// counters stayed still for quietSamples samples, so that what it already
// received is handled and what it sent has left — at most Grace, and cut
// short when the engine stops, is killed or ctx ends.
func (e *Engine) retire(ctx context.Context, insts []*instance) {
	if len(insts) == 0 {
		return
	}
	deadline := time.Now().Add(e.opts.Grace)
	last := make(map[*instance]uint64, len(insts))
	quiet := make(map[*instance]int, len(insts))
	var draining []*instance
	for _, in := range insts {
		in.mu.Lock()
		// A completed producer may still have output queued: it drains.
		now := (in.producer && in.st != StateCompleted) ||
			in.st == StateFailed || in.st == StateStopped || in.st == StateRestarting
		in.mu.Unlock()
		if now {
			in.stop()
			continue
		}
		last[in] = in.moved()
		draining = append(draining, in)
	}
	for len(draining) > 0 {
		wait := min(drainSample, time.Until(deadline))
		cut := ""
		if wait <= 0 {
			cut = "drain grace expired"
		} else {
			select {
			case <-ctx.Done():
				cut = "reload cancelled"
			case <-e.stopReq:
				cut = "engine stopping"
			case <-e.kill:
				cut = "engine killed"
			case <-time.After(wait):
			}
		}
		if cut != "" {
			for _, in := range draining {
				in.log.Warn("stopping node with messages still moving", "reason", cut)
				in.stop()
			}
			break
		}
		busy := draining[:0]
		for _, in := range draining {
			m := in.moved()
			// A handler holding a message is busy, however still its
			// counters are.
			if m == last[in] && in.inFlight() == 0 {
				quiet[in]++
			} else {
				quiet[in] = 0
			}
			last[in] = m
			if quiet[in] >= in.quietNeeded() {
				in.stop()
				continue
			}
			busy = append(busy, in)
		}
		draining = busy
	}
	for _, in := range insts {
		if !in.wait(max(time.Until(deadline), minLevelWait)) {
			in.log.Warn("node is slow to stop")
		}
	}
}

// awaitStart waits until every instance runs (or completed), failed, or
// startWait passed, and returns the errors of those that did not start. A
// node with a sync barrier counts as started once it waited there for
// syncSettle without failing. When ctx ends or the engine stops, the
// instances not yet judged are left to their supervisors.
func (e *Engine) awaitStart(ctx context.Context, insts []*instance) map[*instance]error {
	errs := map[*instance]error{}
	deadline := time.Now().Add(startWait)
	pending := append([]*instance(nil), insts...)
	for len(pending) > 0 {
		left := pending[:0]
		for _, in := range pending {
			in.mu.Lock()
			st, err, since, sync := in.st, in.lastErr, time.Since(in.started), in.spec.Sync != nil
			started := !in.started.IsZero()
			in.mu.Unlock()
			switch {
			case err != nil:
				errs[in] = err
			case st == StateFailed || st == StateStopped:
				errs[in] = fmt.Errorf("%s while starting", st)
			case st == StateRunning || st == StateStalled || st == StateCompleted || st == StateRestarting:
				// Restarting without an error: it completed and its policy
				// is "always".
			case started && sync && since >= syncSettle:
			default:
				left = append(left, in)
			}
		}
		pending = left
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, in := range pending {
				errs[in] = fmt.Errorf("did not start within %v", startWait)
			}
			break
		}
		select {
		case <-ctx.Done():
			return errs
		case <-e.stopReq:
			return errs
		case <-e.kill:
			return errs
		case <-time.After(startPoll):
		}
	}
	return errs
}
