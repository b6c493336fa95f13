// Package graph draws the wiring of a resolved topology as Graphviz DOT or as
// a Mermaid flowchart.
//
// Both formats show the same picture: one graph node per topology node (the
// replicas of a node share one graph node, labelled ×N), one edge per
// connection between sockets drawn in the direction data flows (by socket
// role: out -> in, both ways for request-reply), labelled with the socket
// types and transport, with a marker on the side that binds. Endpoints that
// nobody in the file binds or connects to appear as external endpoint nodes,
// so that the clients and servers living outside the topology are visible.
// Start barriers (sync) are dotted edges. An edge where either socket
// uses CURVE says so in its label ("PUSH→PULL tcp CURVE"); keys never show. Output is deterministic: nodes in
// name order, edges in node, socket and file order.
package graph

import (
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// flow is the direction of an edge from its "from" end to its "to" end.
type flow int

const (
	flowForward flow = iota // from -> to
	flowBoth                // request-reply: both ways
	flowNone                // two sockets of the same direction (out/out, in/in)
)

// shape classes, mapped to a DOT shape and a Mermaid node syntax.
const (
	shapeBuiltin = "builtin"
	shapeBroker  = "broker" // proxy and lbbroker: the centre of a pattern
	shapeExec    = "exec"
	shapePlugin  = "plugin"
	shapeCommand = "command"
)

type gnode struct {
	id      string // base node name
	lines   []string
	shape   string
	process bool
	host    string // "" without hosts
}

type gedge struct {
	from, to string // graph node ids (base names or endpoint strings)
	flow     flow
	label    string
	binder   string // id of the end that binds, or "" (sync edges)
	sync     bool
}

type model struct {
	name      string
	hosts     []spec.Host // the file's hosts: nodes are drawn grouped by them
	nodes     []gnode
	externals []string // endpoint strings, sorted
	edges     []gedge
}

func shapeOf(n *spec.Node) string {
	switch n.Handler.Kind {
	case spec.HandlerExec:
		return shapeExec
	case spec.HandlerPlugin:
		return shapePlugin
	case spec.HandlerCommand:
		return shapeCommand
	}
	if n.Handler.Name == "proxy" || n.Handler.Name == "lbbroker" {
		return shapeBroker
	}
	return shapeBuiltin
}

// transport is an endpoint's scheme: tcp, ipc, inproc, pgm, epgm.
func transport(ep string) string {
	if u, err := url.Parse(ep); err == nil && u.Scheme != "" {
		return u.Scheme
	}
	if i := strings.Index(ep, "://"); i > 0 {
		return ep[:i]
	}
	return ep
}

func transports(eps []string) string {
	var seen []string
	for _, ep := range eps {
		tr := transport(ep)
		dup := false
		for _, s := range seen {
			dup = dup || s == tr
		}
		if !dup {
			seen = append(seen, tr)
		}
	}
	return strings.Join(seen, "+")
}

// private reports whether a bound endpoint cannot be reached from outside
// the topology: inproc lives in one process, and ipc paths in the runtime
// directory are the ones `bind: auto` chose.
func private(t *spec.Topology, ep string) bool {
	if strings.HasPrefix(ep, "inproc://") {
		return true
	}
	if t.RuntimeDir != "" && strings.HasPrefix(ep, "ipc://") {
		p := strings.TrimPrefix(ep, "ipc://")
		rel, err := filepath.Rel(t.RuntimeDir, p)
		return err == nil && !strings.HasPrefix(rel, "..")
	}
	return false
}

// flowOf gives the direction of data between a connecting socket (role a)
// and the socket it connects to (role b): true from the connector's point of
// view when forward is connector -> binder.
func flowOf(a, b spec.Role) (f flow, connectorFirst bool) {
	switch {
	case a == spec.RoleOut && b != spec.RoleOut:
		return flowForward, true
	case a == spec.RoleIn && b != spec.RoleIn:
		return flowForward, false
	case a == spec.RoleInOut && b == spec.RoleIn:
		return flowForward, true
	case a == spec.RoleInOut && b == spec.RoleOut:
		return flowForward, false
	case a == spec.RoleInOut && b == spec.RoleInOut:
		return flowBoth, true
	}
	return flowNone, true
}

func arrow(f flow) string {
	switch f {
	case flowBoth:
		return "↔"
	case flowNone:
		return "–"
	}
	return "→"
}

type sockRef struct {
	node *spec.Node
	sock *spec.Socket
}

func build(t *spec.Topology) model {
	m := model{}
	if t == nil {
		return m
	}
	m.name = t.Name
	m.hosts = t.Hosts

	// The first instance of each node stands for all its replicas: they
	// share sockets, handler and peers, and differ only in identities and
	// auto endpoints.
	first := map[string]*spec.Node{}
	var bases []string
	for _, n := range t.Nodes {
		if cur, ok := first[n.Base]; !ok {
			bases = append(bases, n.Base)
			first[n.Base] = n
		} else if n.Replica < cur.Replica {
			first[n.Base] = n
		}
	}
	sort.Strings(bases)

	// Every bound endpoint of every instance, to match literal connects
	// against the sockets that bind them.
	bound := map[string]sockRef{}
	for _, n := range t.Nodes {
		for _, s := range n.Sockets {
			for _, ep := range s.Bind {
				if !spec.Meet(ep, ep) {
					continue // an ephemeral port: nobody can name it
				}
				if _, dup := bound[spec.EndpointKey(ep)]; !dup {
					bound[spec.EndpointKey(ep)] = sockRef{first[n.Base], first[n.Base].Socket(s.Name)}
				}
			}
		}
	}
	bindsOf := func(base, sock string) []string {
		var eps []string
		for _, n := range t.Nodes {
			if n.Base != base {
				continue
			}
			if s := n.Socket(sock); s != nil {
				eps = append(eps, s.Bind...)
			}
		}
		return eps
	}

	reached := map[string]bool{} // "base.socket" of bound sockets someone connects to
	syncReached := map[string]bool{}
	seen := map[gedge]bool{}
	add := func(e gedge) {
		if !seen[e] {
			seen[e] = true
			m.edges = append(m.edges, e)
		}
	}
	connectEdge := func(a *spec.Node, as *spec.Socket, b *spec.Node, bs *spec.Socket, eps []string) {
		reached[b.Base+"."+bs.Name] = true
		f, fwd := flowOf(as.Role, bs.Role)
		e := gedge{flow: f, binder: b.Base}
		if fwd {
			e.from, e.to = a.Base, b.Base
			e.label = string(as.Type) + arrow(f) + string(bs.Type)
		} else {
			e.from, e.to = b.Base, a.Base
			e.label = string(bs.Type) + arrow(f) + string(as.Type)
		}
		e.label += " " + transports(eps)
		if as.Curve != nil || bs.Curve != nil {
			e.label += " CURVE"
		}
		add(e)
	}
	externals := map[string]bool{}
	externalEdge := func(n *spec.Node, s *spec.Socket, ep string, nodeBinds bool) {
		externals[ep] = true
		e := gedge{from: n.Base, to: ep, label: string(s.Type) + " " + transport(ep)}
		if s.Curve != nil {
			e.label += " CURVE"
		}
		switch s.Role {
		case spec.RoleIn:
			e.from, e.to = ep, n.Base
		case spec.RoleInOut:
			e.flow = flowBoth
		}
		if nodeBinds {
			e.binder = n.Base
		} else {
			e.binder = ep
		}
		add(e)
	}

	for _, base := range bases {
		n := first[base]
		for _, s := range n.Sockets {
			fromPeers := map[string]bool{}
			for _, p := range s.Peers {
				pb, ps, ok := strings.Cut(p, ".")
				pn := first[pb]
				if !ok || pn == nil || pn.Socket(ps) == nil {
					continue // the loader reported it; nothing to draw
				}
				eps := bindsOf(pb, ps)
				for _, ep := range eps {
					fromPeers[spec.EndpointKey(ep)] = true
				}
				connectEdge(n, s, pn, pn.Socket(ps), eps)
			}
			for _, ep := range s.Connect {
				if fromPeers[spec.EndpointKey(ep)] {
					continue
				}
				if r, ok := bound[spec.EndpointKey(ep)]; ok {
					connectEdge(n, s, r.node, r.sock, []string{ep})
					continue
				}
				externalEdge(n, s, ep, false)
			}
		}
		if n.Sync != nil && n.Sync.ConnectNode != "" && first[n.Sync.ConnectNode] != nil {
			syncReached[n.Sync.ConnectNode] = true
			add(gedge{from: base, to: n.Sync.ConnectNode, label: "sync", sync: true})
		}
	}

	// Bound sockets nobody in the file connects to wait for clients from
	// outside: show where those come in.
	for _, base := range bases {
		n := first[base]
		for _, s := range n.Sockets {
			if reached[base+"."+s.Name] {
				continue
			}
			for _, ep := range s.Bind {
				if !private(t, ep) {
					externalEdge(n, s, ep, true)
				}
			}
		}
		if n.Sync != nil && n.Sync.Expect > 0 && !syncReached[base] && !private(t, n.Sync.Bind) {
			externals[n.Sync.Bind] = true
			add(gedge{from: n.Sync.Bind, to: base, label: "sync", sync: true, binder: base})
		}
	}

	for _, base := range bases {
		n := first[base]
		label := n.Handler.Label()
		if n.Replicas > 1 {
			label += " ×" + strconv.Itoa(n.Replicas)
		}
		m.nodes = append(m.nodes, gnode{
			id:      base,
			lines:   []string{base, label},
			shape:   shapeOf(n),
			process: n.Run == spec.RunProcess,
			host:    n.Host,
		})
	}
	for ep := range externals {
		m.externals = append(m.externals, ep)
	}
	sort.Strings(m.externals)
	return m
}

// groups are the model's nodes by host, hosts in name order, each with its
// cluster label ("edge 10.0.0.1"); one unnamed group without hosts.
func (m model) groups() (labels []string, nodes [][]gnode) {
	if len(m.hosts) == 0 {
		return []string{""}, [][]gnode{m.nodes}
	}
	for _, h := range m.hosts {
		var ns []gnode
		for _, n := range m.nodes {
			if n.host == h.Name {
				ns = append(ns, n)
			}
		}
		if len(ns) > 0 {
			labels = append(labels, h.Name+" "+h.Address)
			nodes = append(nodes, ns)
		}
	}
	return labels, nodes
}
