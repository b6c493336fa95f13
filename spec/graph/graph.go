// Package graph draws the wiring of a resolved topology as Graphviz DOT or as
// a Mermaid flowchart.
//
// Both formats show the same picture: one graph node per topology node (the
// replicas of a node share one graph node, labelled ×N), one edge per
// connection between sockets drawn in the direction data flows (by socket
// role: out -> in, both ways for request-reply), labelled with the socket
// names and types ("out PUSH→PULL in") and then the node that binds with
// every endpoint it binds, each replica's ("worker binds tcp://127.0.0.1:6500
// :6510"). Endpoints that nobody in the file binds or connects to appear as
// external endpoint nodes (one per socket, listing its replicas'
// endpoints), so that the clients and servers living outside the topology
// are visible. Start barriers (sync) are dotted edges. An edge where either
// socket uses CURVE says so in its label ("out PUSH→PULL in CURVE"); keys
// never show. Output is deterministic: nodes in name order, edges in node,
// socket and file order.
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
	shapeBroker  = "broker" // spec.HandlerSchema.Broker (proxy, lbbroker, ...): the centre of a pattern
	shapeExec    = "exec"
	shapePlugin  = "plugin"
	shapeWasm    = "wasm" // a module sandboxed inside the node's process
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
	label    string   // lines joined by "\n"
	lines    []string // the label's lines
	binder   string   // id of the end that binds, or "" (sync edges)
	sync     bool
}

type model struct {
	name      string
	hosts     []spec.Host // the file's hosts: nodes are drawn grouped by them
	nodes     []gnode
	externals []string // endpoint lists (one endpoint or more, "\n"-separated), sorted
	edges     []gedge
}

func shapeOf(n *spec.Node) string {
	switch n.Handler.Kind {
	case spec.HandlerExec:
		return shapeExec
	case spec.HandlerPlugin:
		return shapePlugin
	case spec.HandlerWasm:
		return shapeWasm
	case spec.HandlerCommand:
		return shapeCommand
	}
	if b, _ := n.Handler.Builtin(); b.Broker {
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

// maxPerLine is how many endpoints an edge label puts on one line before it
// wraps, so that a node with many replicas gets a block, not a banner.
const maxPerLine = 4

// endpointLines renders the endpoints of an edge for its label, every one
// of them (each replica's, in order): a tcp endpoint whose scheme and host
// are those of the one before it is shortened to ":PORT"
// ("tcp://127.0.0.1:6500 :6510"); ipc paths that `bind: auto` chose in the
// runtime directory, which differ between machines and say nothing a
// reader needs, read "ipc (auto)".
func endpointLines(t *spec.Topology, eps []string) []string {
	var items []string
	seen := map[string]bool{}
	prevPrefix := ""
	for _, ep := range eps {
		item := ep
		if strings.HasPrefix(ep, "ipc://") && private(t, ep) {
			item = "ipc (auto)"
		}
		if seen[item] {
			continue
		}
		seen[item] = true
		prefix := ""
		if strings.HasPrefix(ep, "tcp://") {
			if i := strings.LastIndex(ep, ":"); i > len("tcp://") {
				prefix = ep[:i]
			}
		}
		if prefix != "" && prefix == prevPrefix && len(items) > 0 {
			item = ep[len(prefix):]
		}
		prevPrefix = prefix
		items = append(items, item)
	}
	var lines []string
	for len(items) > 0 {
		k := min(maxPerLine, len(items))
		lines = append(lines, strings.Join(items[:k], " "))
		items = items[k:]
	}
	return lines
}

// appendNew appends to list the strings of add it does not hold yet.
func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, l := range list {
			dup = dup || l == a
		}
		if !dup {
			list = append(list, a)
		}
	}
	return list
}

func build(t *spec.Topology) model {
	m := model{}
	if t == nil {
		return m
	}
	m.name = t.Name
	m.hosts = t.Hosts

	// The first instance of each node stands for all its replicas in the
	// node box: they share sockets, handler and peers. Their endpoints may
	// differ (${REPLICA} in a port, bind: auto): the edges list every
	// replica's.
	first := map[string]*spec.Node{}
	instances := map[string][]*spec.Node{}
	var bases []string
	for _, n := range t.Nodes {
		if cur, ok := first[n.Base]; !ok {
			bases = append(bases, n.Base)
			first[n.Base] = n
		} else if n.Replica < cur.Replica {
			first[n.Base] = n
		}
		instances[n.Base] = append(instances[n.Base], n)
	}
	sort.Strings(bases)
	for _, base := range bases {
		ns := instances[base]
		sort.SliceStable(ns, func(i, j int) bool { return ns[i].Replica < ns[j].Replica })
	}

	// Every bound endpoint of every instance, to match literal connects
	// against the sockets that bind them.
	bound := map[string]sockRef{}
	boundAs := map[string]string{} // the endpoint as the binder wrote it
	for _, n := range t.Nodes {
		for _, s := range n.Sockets {
			for _, ep := range s.Bind {
				if !spec.Meet(ep, ep) {
					continue // an ephemeral port: nobody can name it
				}
				if _, dup := bound[spec.EndpointKey(ep)]; !dup {
					bound[spec.EndpointKey(ep)] = sockRef{first[n.Base], first[n.Base].Socket(s.Name)}
					boundAs[spec.EndpointKey(ep)] = ep
				}
			}
		}
	}
	// endpointsOf is a socket's endpoints (of) over all replicas, replica
	// by replica, without repeats; bindsOf and connectsOf its two kinds.
	endpointsOf := func(base, sock string, of func(*spec.Socket) []string) []string {
		var eps []string
		for _, n := range instances[base] {
			if s := n.Socket(sock); s != nil {
				eps = appendNew(eps, of(s)...)
			}
		}
		return eps
	}
	bindsOf := func(base, sock string) []string {
		return endpointsOf(base, sock, func(s *spec.Socket) []string { return s.Bind })
	}
	connectsOf := func(base, sock string) []string {
		return endpointsOf(base, sock, func(s *spec.Socket) []string { return s.Connect })
	}

	reached := map[string]bool{} // "base.socket" of bound sockets someone connects to
	syncReached := map[string]bool{}
	seen := map[string]bool{}
	add := func(e gedge) {
		k := e.from + "\x00" + e.to + "\x00" + e.label
		if !seen[k] {
			seen[k] = true
			m.edges = append(m.edges, e)
		}
	}
	curve := func(ss ...*spec.Socket) string {
		for _, s := range ss {
			if s.Curve != nil {
				return " CURVE"
			}
		}
		return ""
	}
	// An edge between two sockets of the file reads, in the direction of
	// the arrow, "out PUSH→PULL in" (socket names outside, types inside),
	// then which node binds and where.
	connectEdge := func(a *spec.Node, as *spec.Socket, b *spec.Node, bs *spec.Socket, eps []string) {
		reached[b.Base+"."+bs.Name] = true
		f, fwd := flowOf(as.Role, bs.Role)
		e := gedge{flow: f, binder: b.Base}
		var first string
		if fwd {
			e.from, e.to = a.Base, b.Base
			first = as.Name + " " + string(as.Type) + arrow(f) + string(bs.Type) + " " + bs.Name
		} else {
			e.from, e.to = b.Base, a.Base
			first = bs.Name + " " + string(bs.Type) + arrow(f) + string(as.Type) + " " + as.Name
		}
		first += curve(as, bs)
		eps = endpointLines(t, eps)
		if len(eps) > 0 {
			eps[0] = b.Base + " binds " + eps[0]
		}
		e.lines = append([]string{first}, eps...)
		e.label = strings.Join(e.lines, "\n")
		add(e)
	}
	// An edge to endpoints outside the file: one endpoint node holds every
	// replica's endpoints of the socket, so N replicas binding N ports are
	// one node listing them.
	externals := map[string]bool{}
	externalEdge := func(n *spec.Node, s *spec.Socket, eps []string, nodeBinds bool) {
		ext := strings.Join(endpointLines(t, eps), "\n")
		externals[ext] = true
		e := gedge{from: n.Base, to: ext}
		verb := " (connect)"
		if nodeBinds {
			verb = " (bind)"
		}
		e.lines = []string{s.Name + " " + string(s.Type) + verb + curve(s)}
		e.label = e.lines[0]
		switch s.Role {
		case spec.RoleIn:
			e.from, e.to = ext, n.Base
		case spec.RoleInOut:
			e.flow = flowBoth
		}
		if nodeBinds {
			e.binder = n.Base
		} else {
			e.binder = ext
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
			// Literal connects, of every replica: those that meet a bind
			// of the file are edges to its node (one per socket, listing
			// the endpoints), the others go outside.
			var matched []sockRef
			matchedEps := map[sockRef][]string{}
			var outside []string
			for _, ep := range connectsOf(base, s.Name) {
				if fromPeers[spec.EndpointKey(ep)] {
					continue
				}
				if r, ok := bound[spec.EndpointKey(ep)]; ok {
					if _, dup := matchedEps[r]; !dup {
						matched = append(matched, r)
					}
					matchedEps[r] = appendNew(matchedEps[r], boundAs[spec.EndpointKey(ep)])
					continue
				}
				outside = append(outside, ep)
			}
			for _, r := range matched {
				connectEdge(n, s, r.node, r.sock, matchedEps[r])
			}
			if len(outside) > 0 {
				externalEdge(n, s, outside, false)
			}
		}
		if n.Sync != nil && n.Sync.ConnectNode != "" && first[n.Sync.ConnectNode] != nil {
			syncReached[n.Sync.ConnectNode] = true
			add(gedge{from: base, to: n.Sync.ConnectNode, label: "sync", lines: []string{"sync"}, sync: true})
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
			var public []string
			for _, ep := range bindsOf(base, s.Name) {
				if !private(t, ep) {
					public = append(public, ep)
				}
			}
			if len(public) > 0 {
				externalEdge(n, s, public, true)
			}
		}
		if n.Sync != nil && n.Sync.Expect > 0 && !syncReached[base] && !private(t, n.Sync.Bind) {
			var eps []string
			for _, in := range instances[base] {
				if in.Sync != nil {
					eps = appendNew(eps, in.Sync.Bind)
				}
			}
			ext := strings.Join(endpointLines(t, eps), "\n")
			externals[ext] = true
			add(gedge{from: ext, to: base, label: "sync (bind)", lines: []string{"sync (bind)"}, sync: true, binder: base})
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
