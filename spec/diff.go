package spec

import (
	"reflect"
)

// Equal reports whether two resolved node instances are the same for
// reload: deep equality ignoring positions (moving a node in the file
// changes nothing) and Replicas (adding a sibling replica leaves this one
// untouched; peers that connect to the node see the new replica through
// their own Connect lists, and change).
func (n *Node) Equal(o *Node) bool {
	if n == nil || o == nil {
		return n == o
	}
	return reflect.DeepEqual(canonical(n), canonical(o))
}

// canonical is a copy of n without the fields Equal ignores.
func canonical(n *Node) *Node {
	c := *n
	c.Pos = Pos{}
	c.Replicas = 0
	c.Sockets = make([]*Socket, len(n.Sockets))
	for i, s := range n.Sockets {
		cs := *s
		cs.Pos = Pos{}
		c.Sockets[i] = &cs
	}
	return &c
}

// Plan is what a reload from one topology to another does, by instance
// name; each list is sorted (by node, then replica index).
type Plan struct {
	Added       []string // start
	Removed     []string // stop
	Changed     []string // stop, then start with the new definition
	HandlerOnly []string // swap the handler, keep the sockets
	// AllowOnly: only the allow lists of CURVE server sockets changed, and
	// only by letting more clients in; the ZAP handler takes the new lists
	// at once, for the next handshakes, and nothing restarts. (Revoking a
	// key restarts the node: see RestartReason.)
	AllowOnly []string
	Unchanged []string // leave alone
}

// Empty reports whether the plan has nothing to do.
func (p Plan) Empty() bool {
	return len(p.Added) == 0 && len(p.Removed) == 0 && len(p.Changed) == 0 && len(p.HandlerOnly) == 0 && len(p.AllowOnly) == 0
}

// Diff plans the reload from old to new (either may be nil: no nodes). An
// instance is HandlerOnly when only its Handler and/or Config differ and
// neither side is a command (a command owns its sockets, so replacing it
// means replacing them) nor runs as a process (its handler is in its
// child); RestartReason says why a Changed instance restarts.
func Diff(old, new *Topology) Plan {
	var p Plan
	oldNodes := map[string]*Node{}
	if old != nil {
		for _, n := range old.Nodes {
			oldNodes[n.Name] = n
		}
	}
	var added, changed, handlerOnly, allowOnly, unchanged []*Node
	seen := map[string]bool{}
	if new != nil {
		for _, n := range new.Nodes {
			seen[n.Name] = true
			o, ok := oldNodes[n.Name]
			switch {
			case !ok:
				added = append(added, n)
			case n.Equal(o):
				unchanged = append(unchanged, n)
			case handlerOnlyChange(o, n):
				handlerOnly = append(handlerOnly, n)
			case allowOnlyChange(o, n):
				allowOnly = append(allowOnly, n)
			default:
				changed = append(changed, n)
			}
		}
	}
	var removed []*Node
	if old != nil {
		for _, n := range old.Nodes {
			if !seen[n.Name] {
				removed = append(removed, n)
			}
		}
	}
	p.Added, p.Removed, p.Changed, p.HandlerOnly, p.Unchanged = names(added), names(removed), names(changed), names(handlerOnly), names(unchanged)
	p.AllowOnly = names(allowOnly)
	return p
}

// allowOnlyChange reports whether n differs from o only in the allow lists
// of its CURVE server sockets, each new list letting in every key the old
// one did, and the node's ZAP handler is the engine's own (a goroutine node:
// a process node's handler runs in its child, a command authenticates by
// itself).
func allowOnlyChange(o, n *Node) bool {
	if !liveAllow(o) || !liveAllow(n) {
		return false
	}
	only, revoked := allowFields(o, n)
	return only && len(revoked) == 0
}

func liveAllow(n *Node) bool {
	return n.Handler.Kind != HandlerCommand && n.Run != RunProcess
}

// allowFields reports whether o and n differ at most in the allow lists of
// CURVE server sockets, and which keys (socket: key) the new lists no
// longer let in.
func allowFields(o, n *Node) (only bool, revoked []string) {
	a, b := canonical(o), canonical(n)
	if len(a.Sockets) != len(b.Sockets) {
		return false, nil
	}
	for i := range a.Sockets {
		oc, nc := a.Sockets[i].Curve, b.Sockets[i].Curve
		if oc == nil || nc == nil || !oc.Server || !nc.Server || a.Sockets[i].Name != b.Sockets[i].Name {
			continue
		}
		revoked = append(revoked, narrowed(a.Sockets[i].Name, oc, nc)...)
		x, y := *oc, *nc
		x.Allow, x.AllowAny, y.Allow, y.AllowAny = nil, false, nil, false
		a.Sockets[i].Curve, b.Sockets[i].Curve = &x, &y
	}
	return reflect.DeepEqual(a, b), revoked
}

// narrowed lists what the allow list nc no longer lets in of oc's.
func narrowed(socket string, oc, nc *Curve) []string {
	if nc.AllowAny {
		return nil
	}
	if oc.AllowAny {
		return []string{socket + `: "*"`}
	}
	now := map[string]string{}
	for _, k := range nc.Allow {
		now[k.Name] = k.Public
	}
	var out []string
	for _, k := range oc.Allow {
		if pub, ok := now[k.Name]; !ok || pub != k.Public {
			out = append(out, socket+": "+k.Name)
		}
	}
	return out
}

func handlerOnlyChange(o, n *Node) bool {
	if o.Handler.Kind == HandlerCommand || n.Handler.Kind == HandlerCommand {
		return false
	}
	// A process node's handler lives in its child: changing it means a
	// new child, which is a restart, not a swap (the plan says so).
	if o.Run == RunProcess || n.Run == RunProcess {
		return false
	}
	return handlerOnlyFields(o, n)
}

// handlerOnlyFields reports whether only Handler and Config differ.
func handlerOnlyFields(o, n *Node) bool {
	a, b := canonical(o), canonical(n)
	a.Handler, b.Handler = HandlerRef{}, HandlerRef{}
	a.Config, b.Config = nil, nil
	return reflect.DeepEqual(a, b)
}

func names(ns []*Node) []string {
	if len(ns) == 0 {
		return nil
	}
	sortInstances(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}
