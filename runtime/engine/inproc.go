package engine

import (
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// Inproc ties: libzmq never re-establishes an inproc connection whose
// binder went away, so a reload (inprocDependents, reconnect), the order of
// a reload's starts (startWaves) and a supervised restart (reconnectPeers)
// all ask which nodes bind an inproc endpoint and which connect to one.
// These two functions are the one answer to both questions.

// inprocBinds lists the inproc endpoints n binds.
func inprocBinds(n *spec.Node) []string {
	var eps []string
	for _, s := range n.Sockets {
		for _, ep := range s.Bind {
			if strings.HasPrefix(ep, "inproc://") {
				eps = append(eps, ep)
			}
		}
	}
	return eps
}

// connectsTo returns the value of the first endpoint n connects to that is
// a key of bound (an index built from inprocBinds), and whether there is
// one.
func connectsTo[V any](n *spec.Node, bound map[string]V) (V, bool) {
	for _, s := range n.Sockets {
		for _, ep := range s.Connect {
			if v, ok := bound[ep]; ok {
				return v, true
			}
		}
	}
	var zero V
	return zero, false
}
