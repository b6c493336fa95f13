package ui

import (
	"sort"
	"strings"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

// edgeRate is the message rate on the connections between two nodes (as
// written), in messages per second.
type edgeRate struct {
	A    string  `json:"a"` // the connecting side
	B    string  `json:"b"` // the binding side
	Rate float64 `json:"rate"`
}

// edgeRates measures each edge at its connecting socket: the messages that
// socket moved (in or out, whichever is more: a request-reply socket moves
// both), summed over the connecting node's instances. A connecting socket
// with several peer nodes counts towards each of them: ZeroMQ does not say
// which peer a message went to.
func edgeRates(t *spec.Topology, v control.StatusReply) []edgeRate {
	rates := map[[2]string]float64{} // instance.socket → rate
	for _, in := range v.Nodes {
		for _, so := range in.Sockets {
			rates[[2]string{in.Name, so.Name}] = max(so.RateIn, so.RateOut)
		}
	}
	sum := map[[2]string]float64{}
	for _, n := range t.Nodes {
		for _, s := range n.Sockets {
			for _, peer := range peersOf(t, n, s) {
				sum[[2]string{n.Base, peer}] += rates[[2]string{n.Name, s.Name}]
			}
		}
	}
	out := make([]edgeRate, 0, len(sum))
	for k, r := range sum {
		out = append(out, edgeRate{A: k[0], B: k[1], Rate: r})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].A != out[j].A {
			return out[i].A < out[j].A
		}
		return out[i].B < out[j].B
	})
	return out
}

// peersOf lists the nodes (as written) that socket s of n connects to: its
// `node.socket` references, else the nodes binding one of its literal
// connect endpoints.
func peersOf(t *spec.Topology, n *spec.Node, s *spec.Socket) []string {
	seen := map[string]bool{}
	var out []string
	add := func(base string) {
		if base != "" && base != n.Base && !seen[base] {
			seen[base] = true
			out = append(out, base)
		}
	}
	for _, ref := range s.Peers {
		base, _, _ := strings.Cut(ref, ".")
		add(base)
	}
	if len(out) > 0 {
		return out
	}
	for _, c := range s.Connect {
		for _, m := range t.Nodes {
			for _, ms := range m.Sockets {
				for _, b := range ms.Bind {
					if spec.Meet(b, c) {
						add(m.Base)
					}
				}
			}
		}
	}
	return out
}
