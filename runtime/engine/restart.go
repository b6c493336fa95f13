package engine

import (
	"errors"
	"fmt"
)

// Restart restarts the named instances, as `ztopo restart` asks: one that
// runs (or starts) ends its current attempt and its supervisor starts the
// next at once, as after a bounce (its restarts count goes up, its inproc
// peers connect again); one that failed for good or completed starts
// afresh, with a new restart limit. Unknown names are an error and nothing
// is restarted.
func (e *Engine) Restart(names []string, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running || e.stopping {
		return errors.New("the topology is stopping")
	}
	var unknown []string
	for _, n := range names {
		if e.insts[n] == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("no instance %q", unknown[0])
	}
	var errs []error
	for _, name := range names {
		in := e.insts[name]
		switch in.state() {
		case StateRunning, StateStarting, StateStalled:
			in.bounce(why, nil)
		case StateRestarting:
			// Its supervisor starts it again after the backoff anyway.
		default:
			in.mu.Lock()
			n, t := in.spec, in.topo
			in.mu.Unlock()
			fresh, err := e.newInstance(n, t)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			in.log.Info("restarting node", "reason", why)
			e.insts[name] = fresh
			e.startInstance(fresh)
		}
	}
	e.notify()
	return errors.Join(errs...)
}
