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
	Unchanged   []string // leave alone
}

// Empty reports whether the plan has nothing to do.
func (p Plan) Empty() bool {
	return len(p.Added) == 0 && len(p.Removed) == 0 && len(p.Changed) == 0 && len(p.HandlerOnly) == 0
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
	var added, changed, handlerOnly, unchanged []*Node
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
	return p
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
