package spec

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// wire is the second pass: node.socket references checked and turned into
// endpoints, auto binds chosen now that every peer's run mode is known.
func (r *resolver) wire() {
	nodeNames := sortedKeys(r.files)
	r.connectors = map[string][]*inst{}
	syncConnectors := map[string][]*inst{}
	for _, in := range r.insts {
		if in.sync != nil && in.sync.connectNode != "" {
			syncConnectors[in.sync.connectNode] = append(syncConnectors[in.sync.connectNode], in)
		}
		for _, is := range in.socks {
			for i := range is.conns {
				if c := &is.conns[i]; c.ref {
					c.ok = r.checkRef(c, nodeNames)
					key := c.node + "." + c.socket
					if l := r.connectors[key]; c.ok && (len(l) == 0 || l[len(l)-1] != in) {
						r.connectors[key] = append(l, in)
					}
				}
			}
		}
	}
	r.assignPorts(syncConnectors)
	for _, in := range r.insts {
		for _, is := range in.socks {
			is.s.Bind = nil
			for i := range is.binds {
				b := &is.binds[i]
				if b.auto {
					b.ep = r.autoEndpoint(in, is.s.Name, false, r.connectors[in.n.Base+"."+is.s.Name], b.pos)
				}
				if b.ep != "" {
					is.s.Bind = append(is.s.Bind, b.ep)
				}
			}
		}
		if in.sync != nil && in.sync.bindAuto {
			in.n.Sync.Bind = r.autoEndpoint(in, "sync", true, syncConnectors[in.n.Base], in.sync.bindPos)
		}
	}
	for _, in := range r.insts {
		for _, is := range in.socks {
			is.s.Connect = nil
			for _, c := range is.conns {
				switch {
				case !c.ok:
				case !c.ref:
					is.s.Connect = append(is.s.Connect, c.ep)
				default:
					is.s.Connect = append(is.s.Connect, r.refEndpoints(in, c)...)
				}
			}
		}
		if in.sync != nil && in.sync.connectNode != "" {
			r.syncConnect(in, nodeNames)
		}
	}
}

// checkRef reports a reference to a node or socket that does not exist or
// binds nothing.
func (r *resolver) checkRef(c *iconn, nodeNames []string) bool {
	fn, ok := r.files[c.node]
	if !ok {
		r.errorf(c.pos, didYouMean(c.node, nodeNames), "unknown node %q", c.node)
		return false
	}
	var fs *FileSocket
	var names []string
	for _, s := range fn.Sockets {
		names = append(names, s.Name)
		if s.Name == c.socket {
			fs = s
		}
	}
	if fs == nil {
		sort.Strings(names)
		r.errorf(c.pos, didYouMean(c.socket, names), "node %q has no socket %q", c.node, c.socket)
		return false
	}
	if fs.Bind == nil {
		r.errorf(c.pos, "connect to a socket that binds, or give it bind: auto", "cannot connect to %q: it binds nothing", c.node+"."+c.socket)
		return false
	}
	return true
}

// autoEndpoint picks the endpoint of `bind: auto`: inproc when the binding
// instance and every instance that connects to it share ztopo's ZeroMQ
// context (they all run as goroutines), else an ipc path in the runtime
// directory; a tcp port from `ports` when a connector is on another host.
func (r *resolver) autoEndpoint(in *inst, sock string, sync bool, connectors []*inst, pos Pos) string {
	if ep, cross := r.autoTCP(in, sock, sync); cross {
		return ep
	}
	shared := in.n.Run == RunGoroutine
	for _, c := range connectors {
		if c.n.Run != RunGoroutine {
			shared = false
		}
	}
	if shared {
		return fmt.Sprintf("inproc://%s/%s/%s", r.topo.Name, in.n.Name, sock)
	}
	path := filepath.Join(r.topo.RuntimeDir, in.n.Name+"."+sock+".sock")
	ep := "ipc://" + path
	if len(path) > maxIPCPath {
		r.errorf(pos, "use a shorter runtime directory (XDG_RUNTIME_DIR) or shorter names",
			"bind: auto needs ipc path %q, %d bytes, longer than a unix socket takes (%d)", path, len(path), maxIPCPath)
		return ""
	}
	return ep
}

// refEndpoints are the endpoints a reference of in connects to: every bind
// of the named socket on every replica, in replica order, as reached from
// in (see reach).
func (r *resolver) refEndpoints(in *inst, c iconn) []string {
	var out []string
	for _, t := range r.byBase[c.node] {
		ts := t.sock(c.socket)
		if ts == nil {
			continue
		}
		for _, b := range ts.binds {
			if b.ep == "" {
				continue
			}
			if e, err := ParseEndpoint(b.ep, true); err == nil && e.Port == "*" {
				r.errorf(c.pos, "bind a fixed port to connect by reference", "cannot connect to %q: it binds an ephemeral port (%s)", c.node+"."+c.socket, b.ep)
				continue
			}
			if r.connects++; r.connects > maxConnects {
				if !r.tooBig {
					r.errorf(c.pos, "", "topology too large: more than %d connections", maxConnects)
					r.tooBig = true
				}
				return nil
			}
			out = append(out, r.reach(in, t, b.ep))
		}
	}
	return out
}

// syncConnect points an instance's sync at the node it signals.
func (r *resolver) syncConnect(in *inst, nodeNames []string) {
	name, pos := in.sync.connectNode, in.sync.connectPos
	targets, ok := r.byBase[name]
	switch {
	case !ok:
		r.errorf(pos, didYouMean(name, nodeNames), "sync connects to unknown node %q", name)
	case name == in.n.Base:
		r.errorf(pos, "", "node %q cannot sync with itself", name)
	case len(targets) > 1 || r.files[name].Replicas != nil:
		r.errorf(pos, "", "sync connects to %q, which has replicas: sync with a node that runs once", name)
	case targets[0].n.Sync == nil || targets[0].n.Sync.Expect < 1:
		r.errorf(pos, fmt.Sprintf("give %q sync: {expect: N}", name), "sync connects to %q, which has no sync bind to answer it", name)
	case targets[0].n.Sync.Bind == "":
		// its bind was invalid, and reported
	default:
		in.n.Sync.Connect = r.reach(in, targets[0], targets[0].n.Sync.Bind)
	}
}

// ---- whole-topology checks ----

// link is one connection between two instances' sockets, known from a
// reference or from a literal connect matching a bind in the file.
type link struct {
	from   *inst
	fs     *isock
	to     *inst
	ts     *isock // nil for a sync link
	ep     string // the bound endpoint
	pos    Pos    // the connect
	byRef  bool
	toSync bool
}

func (r *resolver) validate() {
	binders := r.checkBinds()
	links := r.links(binders)
	r.checkLinks(links)
	r.immediateAcross(links)
	r.resolveDelivery(links)
	r.checkPairs(links)
	r.checkSyncBarriers(links)
	for _, in := range r.insts {
		r.checkNode(in)
		r.resolveWorker(in)
	}
	r.checkSecurity(links)
}

type binder struct {
	in   *inst
	sock string
	ep   string
	pos  Pos
	is   *isock // nil for a sync bind
}

// checkBinds reports endpoints bound more than once and returns who binds
// what, keyed by EndpointKey.
func (r *resolver) checkBinds() map[string][]binder {
	m := map[string][]binder{}
	var keys []string
	add := func(b binder) {
		if ephemeral(b.ep) {
			return // every ephemeral bind gets its own port
		}
		k := r.bindKey(b.in, b.ep)
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
		m[k] = append(m[k], b)
	}
	for _, in := range r.insts {
		for _, is := range in.socks {
			for _, b := range is.binds {
				if b.ep != "" {
					add(binder{in: in, sock: is.s.Name, ep: b.ep, pos: b.pos, is: is})
				}
			}
		}
		if in.n.Sync != nil && in.n.Sync.Bind != "" {
			add(binder{in: in, sock: "sync", ep: in.n.Sync.Bind, pos: in.sync.bindPos})
		}
	}
	for _, k := range keys {
		bs := m[k]
		for _, b := range bs[1:] {
			first := bs[0]
			hint := ""
			if first.in.n.Base == b.in.n.Base && first.in != b.in {
				hint = "every replica binds it: put ${REPLICA} in the endpoint, or use bind: auto"
			}
			if b.in.n.Host != "" {
				r.errorf(b.pos, hint, "endpoint %q is already bound on host %q by socket %q of %q", b.ep, b.in.n.Host, first.sock, first.in.n.Name)
			} else {
				r.errorf(b.pos, hint, "endpoint %q is already bound by socket %q of %q", b.ep, first.sock, first.in.n.Name)
			}
		}
	}
	r.checkWildcardPorts(m, keys)
	if r.hosts != nil && r.share == "" {
		r.checkOneMachine(m, keys)
	}
	return m
}

// checkWildcardPorts reports a tcp bind on a port that a wildcard bind of
// the same host (`*`, `0.0.0.0`, `[::]`) takes on every address already:
// tcp://*:5555 and tcp://10.0.0.1:5555 cannot both bind one machine.
func (r *resolver) checkWildcardPorts(m map[string][]binder, keys []string) {
	wild := map[string]binder{} // host + port -> the first wildcard bind
	var tcp []binder
	for _, k := range keys {
		b := m[k][0]
		e, err := ParseEndpoint(b.ep, true)
		if err != nil || e.Transport != "tcp" {
			continue
		}
		tcp = append(tcp, b)
		hp := b.in.n.Host + "\x00" + e.Port
		if _, ok := wild[hp]; !ok && (e.Host == "*" || e.Host == "0.0.0.0" || e.Host == "[::]") {
			wild[hp] = b
		}
	}
	for _, b := range tcp {
		e, _ := ParseEndpoint(b.ep, true)
		w, ok := wild[b.in.n.Host+"\x00"+e.Port]
		if !ok || r.bindKey(w.in, w.ep) == r.bindKey(b.in, b.ep) {
			continue
		}
		where := "this machine"
		if b.in.n.Host != "" {
			where = fmt.Sprintf("host %q", b.in.n.Host)
		}
		r.errorf(b.pos, "", "endpoint %q uses port %s, which %q binds on every address of %s (%s)", b.ep, e.Port, qual(w.in, w.sock), where, w.ep)
	}
}

// checkOneMachine warns of binds that are fine on their own hosts but
// clash when every node runs on this machine (ztopo up without --host).
func (r *resolver) checkOneMachine(m map[string][]binder, keys []string) {
	seen := map[string]binder{}
	for _, k := range keys {
		b := m[k][0]
		ek := EndpointKey(b.ep)
		if first, ok := seen[ek]; ok {
			r.warnf(b.pos, "give them different ports to run the whole file here, or run each host with --host",
				"endpoint %q is bound on host %q and on host %q (by %q): they clash when every node runs on one machine", b.ep, b.in.n.Host, first.in.n.Host, first.in.n.Name)
			continue
		}
		seen[ek] = b
	}
}

// links lists every connection the file makes between its own sockets.
func (r *resolver) links(binders map[string][]binder) []link {
	var out []link
	for _, in := range r.insts {
		for _, is := range in.socks {
			for _, c := range is.conns {
				if !c.ok {
					continue
				}
				if c.ref {
					for _, t := range r.byBase[c.node] {
						ts := t.sock(c.socket)
						if ts == nil {
							continue
						}
						for _, b := range ts.binds {
							if b.ep != "" {
								out = append(out, link{from: in, fs: is, to: t, ts: ts, ep: b.ep, pos: c.pos, byRef: true})
							}
						}
					}
					continue
				}
				// Only the first binder owns the endpoint (the others are
				// errors already), which also keeps this linear.
				for _, k := range r.connectKeys(in, c.ep) {
					if bs := binders[k]; len(bs) > 0 && bs[0].is != is {
						b := bs[0]
						out = append(out, link{from: in, fs: is, to: b.in, ts: b.is, ep: b.ep, pos: c.pos, toSync: b.is == nil})
						break
					}
				}
			}
		}
		if in.n.Sync != nil && in.n.Sync.Connect != "" {
			for _, t := range r.byBase[in.sync.connectNode] {
				if t.n.Sync != nil && t.n.Sync.Bind != "" {
					out = append(out, link{from: in, to: t, ep: t.n.Sync.Bind, pos: in.sync.connectPos, toSync: true})
				}
			}
		}
	}
	return out
}

func qual(in *inst, sock string) string { return in.n.Base + "." + sock }

func (r *resolver) checkLinks(links []link) {
	for _, l := range links {
		// A command's own literal inproc connect is reported once, by
		// checkTransport, at the same position.
		ownCommand := l.from.n.Handler.Kind == HandlerCommand && !l.byRef && !l.toSync
		crossed := r.checkCrossHost(l)
		if strings.HasPrefix(l.ep, "inproc://") && !ownCommand && !crossed {
			for _, end := range []*inst{l.to, l.from} {
				if end.n.Run != RunGoroutine {
					what := "runs as a process"
					if end.n.Handler.Kind == HandlerCommand {
						what = "is a command (its own process)"
					}
					r.errorf(l.pos, "use bind: auto, ipc:// or tcp://",
						"inproc endpoint %q links %q and %q, but %q %s: inproc only works between goroutine nodes", l.ep, l.from.n.Base, l.to.n.Base, end.n.Base, what)
					break
				}
			}
		}
		if l.fs == nil || l.ts == nil {
			continue // sync: a REQ/REP pair ztopo makes itself
		}
		ft, tt := l.fs.s.Type, l.ts.s.Type
		if ft == "" || tt == "" {
			continue // unknown type, reported
		}
		if ft == STREAM || tt == STREAM {
			r.errorf(l.pos, "", "cannot wire %s socket %q to %s socket %q: a STREAM socket talks raw TCP to non-ZeroMQ peers", ft, qual(l.from, l.fs.s.Name), tt, qual(l.to, l.ts.s.Name))
			continue
		}
		if !contains(typeNames(compatible[ft]), string(tt)) {
			r.errorf(l.pos, fmt.Sprintf("%s talks to %s", ft, strings.Join(typeNames(compatible[ft]), " or ")),
				"incompatible sockets: %s socket %q connects to %s socket %q", ft, qual(l.from, l.fs.s.Name), tt, qual(l.to, l.ts.s.Name))
		}
	}
}

func typeNames(ts []SocketType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// checkPairs reports PAIR sockets with more than one peer: libzmq lets a
// second peer connect over inproc and then silently drops its messages.
func (r *resolver) checkPairs(links []link) {
	incoming := map[*isock]map[*isock]bool{}
	for _, l := range links {
		if l.ts == nil || l.fs == nil {
			continue
		}
		if incoming[l.ts] == nil {
			incoming[l.ts] = map[*isock]bool{}
		}
		incoming[l.ts][l.fs] = true
	}
	for _, in := range r.insts {
		for _, is := range in.socks {
			if is.s.Type != PAIR {
				continue
			}
			if peers := len(is.s.Connect) + len(incoming[is]); peers > 1 {
				r.errorf(is.fs.Pos, "connect one PAIR to one PAIR; use another pattern for fan-in or fan-out",
					"PAIR socket %q has %d peers; a PAIR talks to exactly one", qual(in, is.s.Name), peers)
			}
		}
	}
}

// checkNode holds the checks that look at one instance alone.
func (r *resolver) checkNode(in *inst) {
	n, fn := in.n, in.fn
	if n.Handler.Kind == HandlerBuiltin {
		if schema, ok := builtinHandler(n.Handler.Name); ok {
			for _, need := range schema.NeedSockets {
				is := in.sock(need)
				if is == nil {
					r.errorf(fn.Handler.Pos, "", "handler %q needs a socket named %q", schema.Name, need)
					continue
				}
				if want, ok := schema.SocketTypes[need]; ok && is.s.Type != "" && is.s.Type != want {
					r.errorf(is.fs.Type.Pos, "", "handler %q needs socket %q to be a %s, got %s", schema.Name, need, want, is.s.Type)
				}
			}
		}
	}
	for _, is := range in.socks {
		s := is.s
		full := qual(in, s.Name)
		if s.Type == SUB && s.Subscribe == nil && n.Handler.Kind != HandlerCommand {
			r.warnf(is.fs.Pos, `add subscribe: [""] to receive everything`, "SUB socket %q subscribes to nothing: it will receive no messages", full)
		}
		if b, _ := n.Handler.Builtin(); (s.Type == PUB || s.Type == XPUB) && b.Source && n.Sync == nil {
			r.warnf(is.fs.Pos, fmt.Sprintf("give %q sync: {expect: N} and its subscribers sync: {connect: %s}", n.Base, n.Base),
				"%s publishes on %s socket %q without sync: subscribers that join late lose the first messages", b.Name, s.Type, full)
		}
		r.checkPubOverrun(in, is)
		for _, b := range is.binds {
			r.checkTransport(in, is, b.ep, b.pos, b.auto)
		}
		for _, c := range is.conns {
			if !c.ref && c.ok {
				r.checkTransport(in, is, c.ep, c.pos, false)
			}
		}
	}
}

// checkTransport reports endpoints a socket cannot use: STREAM speaks only
// tcp; a command's process cannot reach ztopo's inproc.
func (r *resolver) checkTransport(in *inst, is *isock, ep string, pos Pos, auto bool) {
	if ep == "" {
		return
	}
	scheme, _, _ := strings.Cut(ep, "://")
	full := qual(in, is.s.Name)
	if is.s.Type == STREAM && scheme != "tcp" {
		if auto {
			r.errorf(pos, "", "STREAM socket %q needs a tcp endpoint, not bind: auto", full)
		} else {
			r.errorf(pos, "", "STREAM socket %q needs a tcp endpoint, got %q", full, ep)
		}
	}
	if scheme == "inproc" && in.n.Handler.Kind == HandlerCommand {
		r.errorf(pos, "use ipc:// or tcp://", "command node %q cannot use inproc endpoint %q: a command runs in its own process", in.n.Base, ep)
	}
}

func sortSockets(ss []*Socket) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
}

// immediateAcross sets immediate on a PUSH socket that connects to a node
// on another host, unless the file sets it: libzmq then queues messages
// only for peers whose connection is up. Without it, a producer whose
// peer's host is not up yet would queue its messages for that connection
// inside libzmq, where nothing can see them, complete, and its share would
// exit with them; with it, the producer waits for a peer, and what it sent
// is in the kernel's send queues, which a completing share waits to see
// taken (engine awaitSent). The price: messages queued for a peer whose
// connection drops are dropped with it, instead of waiting for it to come
// back (those on the wire are lost either way); `immediate: false` keeps
// libzmq's default.
func (r *resolver) immediateAcross(links []link) {
	if r.share == "" {
		return
	}
	for _, l := range links {
		if l.fs == nil || l.fs.s.Type != PUSH || !r.crossHost(l.from, l.to) {
			continue
		}
		set := false
		for _, o := range l.fs.s.Options {
			set = set || o.Name == "immediate"
		}
		if !set {
			l.fs.s.Options = append(l.fs.s.Options, Option{Name: "immediate", Value: 1})
			sortOptions(l.fs.s.Options)
		}
	}
}

func sortOptions(os []Option) {
	sort.Slice(os, func(i, j int) bool { return os[i].Name < os[j].Name })
}
