package engine

import (
	"fmt"
	"strings"

	"github.com/ztopo/ztopo/runtime/tap"
)

// Tap attaches t to the socket named socket of the instances that name
// designates: an instance (worker.1) or a node (worker: every replica).
// Points t already has are left as they are, so calling Tap again picks up
// instances a reload or a restart made since. It returns the instances
// tapped now.
//
// A socket whose messages never come into Go cannot be tapped: those of
// process and command nodes (another process), and those of the proxy
// builtin (libzmq's proxy moves them). A forward on the fast path leaves
// it while tapped (node.TapChanged).
func (e *Engine) Tap(t *tap.Tap, name, socket string) ([]string, error) {
	e.mu.Lock()
	insts := e.sortedInstances()
	e.mu.Unlock()
	var matched []*instance
	for _, in := range insts {
		in.mu.Lock()
		sp := in.spec
		in.mu.Unlock()
		if sp.Name == name || sp.Base == name {
			matched = append(matched, in)
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("no node or instance %q", name)
	}
	var names []string
	for _, in := range matched {
		in.mu.Lock()
		sp := in.spec
		in.mu.Unlock()
		if sp.Socket(socket) == nil {
			var have []string
			for _, s := range sp.Sockets {
				have = append(have, s.Name)
			}
			return nil, fmt.Errorf("node %q has no socket %q (its sockets: %s)", sp.Base, socket, strings.Join(have, ", "))
		}
		if in.proc != nil {
			return nil, fmt.Errorf("node %q runs in its own process (run: process or command): its messages never pass through ztopo; tap a socket of a peer instead", sp.Base)
		}
		if b, _ := sp.Handler.Builtin(); b.Opaque {
			return nil, fmt.Errorf("node %q runs the %s builtin, whose messages libzmq moves without ztopo seeing them; tap a socket of a peer instead", sp.Base, b.Name)
		}
		names = append(names, sp.Name)
	}
	for _, in := range matched {
		in.mu.Lock()
		st := in.stats[socket]
		name := in.spec.Name
		in.mu.Unlock()
		if st == nil {
			continue
		}
		t.Attach(tap.Point{Instance: name, Socket: socket, Stats: st, Changed: in.tapChanged})
	}
	return names, nil
}

// tapChanged tells the running node, if any, that its taps changed.
func (in *instance) tapChanged() {
	in.mu.Lock()
	r := in.runner
	in.mu.Unlock()
	if g, ok := r.(*goroutineRunner); ok {
		g.n.TapChanged()
	}
}
