package control

import (
	"slices"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// NewPlan is the Plan of going from old to cur, as `ztopo plan`, a
// reload's reply and its log show it: spec.Diff's lists, the labels of the
// swapped handlers, and each touched instance's changed fields.
func NewPlan(old, cur *spec.Topology, p spec.Plan) *Plan {
	swaps := make([]PlanSwap, 0, len(p.HandlerOnly))
	for _, name := range p.HandlerOnly {
		s := PlanSwap{Node: name}
		if n := old.Node(name); n != nil {
			s.From = n.Handler.Label()
		}
		if n := cur.Node(name); n != nil {
			s.To = n.Handler.Label()
		}
		swaps = append(swaps, s)
	}
	changes := map[string]PlanChange{}
	for _, name := range append(append(append([]string(nil), p.Changed...), p.HandlerOnly...), p.AllowOnly...) {
		o, n := old.Node(name), cur.Node(name)
		c := PlanChange{Reason: spec.RestartReason(o, n), Fields: []string{}}
		swap := !slices.Contains(p.Changed, name)
		for _, f := range spec.Changes(o, n) {
			if swap && strings.HasPrefix(f, "handler: ") {
				continue // the swap's own line says it
			}
			c.Fields = append(c.Fields, f)
		}
		changes[name] = c
	}
	return &Plan{
		Start:     nonNil(p.Added),
		Stop:      nonNil(p.Removed),
		Restart:   nonNil(p.Changed),
		Swap:      swaps,
		Allow:     nonNil(p.AllowOnly),
		Unchanged: nonNil(p.Unchanged),
		Changes:   changes,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
