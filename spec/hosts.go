package spec

import (
	"fmt"
	"hash/fnv"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Placement: the file's `hosts` name the machines of a deployment, every
// node sits on one (`host`, directly or from `defaults`), and `ports` is
// where a `bind: auto` that other hosts connect to takes its tcp port.
//
// Every host resolves the whole file the same way: what differs between
// `ztopo up --host edge` and `--host core` is only which instances run.
// A reference to a node on another host connects to that host's address
// (a wildcard bind, tcp://*:P, is reached at tcp://ADDRESS:P); a cross-host
// `bind: auto` binds tcp://*:PORT, PORT a function of the file alone (a
// hash of the instance and socket names into `ports`, the next free port
// on a collision), so that an edit elsewhere in the file rarely moves it.
// Without a share (LoadOptions.Host ""), every node runs on this machine:
// references are reached at loopback, cross-host auto binds at
// tcp://127.0.0.1:PORT — the same ports, so a laptop rehearses the
// deployment's wiring.

// FileHost is one entry of `hosts` as written.
type FileHost struct {
	Name    string
	Pos     Pos // the host's key
	Address *Value
	typos   typos
}

// FilePorts is the `ports` block as written.
type FilePorts struct {
	Pos  Pos
	From *Value
	To   *Value
}

var hostKeys = []string{"address"}

func (d *decoder) host(e Entry) *FileHost {
	h := &FileHost{Name: e.Key, Pos: e.KeyPos}
	if !nameRE.MatchString(e.Key) {
		d.errorf(e.KeyPos, "", "bad host name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", e.Key)
	}
	where := fmt.Sprintf("host %q", e.Key)
	if !d.isMap(e.Value, where) {
		if e.Value.Shape == ShapeNull {
			d.errorf(e.KeyPos, "write "+e.Key+": {address: 10.0.0.1}", "%s needs an address", where)
		}
		return h
	}
	h.typos = d.values(e.Value, where, hostKeys, map[string]**Value{"address": &h.Address}, nil)
	if h.Address == nil && !h.typos.any("address") {
		d.errorf(e.KeyPos, "", "%s needs an address: how peers on other hosts reach it", where)
	}
	return h
}

func (d *decoder) ports(v *Value) *FilePorts {
	p := &FilePorts{Pos: v.Pos}
	t := d.fields(v, "ports", []string{"from", "to"}, func(f Entry) {
		switch f.Key {
		case "from":
			p.From = f.Value
		case "to":
			p.To = f.Value
		}
	})
	for _, k := range []struct {
		key string
		v   *Value
	}{{"from", p.From}, {"to", p.To}} {
		if k.v == nil && !t.any(k.key) {
			d.errorf(v.Pos, "", "ports needs %q: the range is {from: 7000, to: 7999}", k.key)
		}
	}
	return p
}

// hostnameRE is a DNS name: labels of letters, digits and '-', dot-separated.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// placement resolves `hosts` and checks the share asked for.
func (r *resolver) placement(share string) {
	f := r.f
	r.share = share
	if f.Hosts == nil && f.HostsPos == (Pos{}) && r.kubernetes != "" {
		r.podPlacement()
		return
	}
	if f.Hosts == nil && f.HostsPos == (Pos{}) {
		if share != "" {
			r.errorf(f.Pos, "", "host %q asked for, but the topology declares no hosts", share)
		}
		if f.Ports != nil {
			r.warnf(f.Ports.Pos, "", "ports is used only for bind: auto between nodes on different hosts, and the topology declares no hosts")
		}
		return
	}
	r.hosts = map[string]string{}
	sc := r.fileScope()
	byAddr := map[string]string{}
	for _, fh := range f.Hosts {
		if _, dup := r.hosts[fh.Name]; dup {
			continue // a duplicate key, reported by the YAML reader
		}
		addr := ""
		if fh.Address != nil {
			if a, ok := r.str(sc, fh.Address, fmt.Sprintf("address of host %q", fh.Name)); ok {
				addr = strings.TrimSpace(a)
				if bad := badAddress(addr); bad != "" {
					r.errorf(fh.Address.Pos, "", "bad address %q for host %q: %s", a, fh.Name, bad)
				} else if other, dup := byAddr[strings.ToLower(addr)]; dup {
					r.errorf(fh.Address.Pos, "", "hosts %q and %q have the same address %q", other, fh.Name, addr)
				} else {
					byAddr[strings.ToLower(addr)] = fh.Name
				}
			}
		}
		if r.kubernetes != "" {
			addr = PodAddress(fh.Name, 0, fh.Name, r.kubernetes)
		}
		r.hosts[fh.Name] = addr
		r.hostNames = append(r.hostNames, fh.Name)
		r.topo.Hosts = append(r.topo.Hosts, Host{Name: fh.Name, Address: addr})
	}
	sort.Strings(r.hostNames)
	sort.Slice(r.topo.Hosts, func(i, j int) bool { return r.topo.Hosts[i].Name < r.topo.Hosts[j].Name })
	if len(f.Hosts) == 0 {
		r.errorf(f.HostsPos, "", "hosts is empty: name at least one host, or remove it")
	}
	if share != "" {
		if _, ok := r.hosts[share]; !ok {
			hint := didYouMean(share, r.hostNames)
			if hint == "" && len(r.hostNames) > 0 {
				hint = "hosts: " + strings.Join(r.hostNames, ", ")
			}
			r.errorf(f.HostsPos, hint, "unknown host %q: the topology has no such host", share)
		}
		r.topo.Share = share
	}
}

// badAddress says what is wrong with a host's address, or "".
func badAddress(a string) string {
	switch {
	case a == "":
		return "it is empty"
	case strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]"):
		if ip := net.ParseIP(a[1 : len(a)-1]); ip == nil || ip.To4() != nil {
			return "want an IPv6 address inside brackets"
		}
		return ""
	case net.ParseIP(a) != nil:
		if ip := net.ParseIP(a); ip.IsUnspecified() {
			return "a wildcard address reaches no machine: give the address peers connect to"
		}
		return ""
	case strings.Contains(a, "://"):
		return "want an address or a DNS name, not an endpoint"
	case !hostnameRE.MatchString(a):
		return "want an IP address or a DNS name"
	}
	return ""
}

// addressHost is an address as the host part of a tcp endpoint: an IPv6
// address in brackets.
func addressHost(a string) string {
	if ip := net.ParseIP(a); ip != nil && ip.To4() == nil {
		return "[" + a + "]"
	}
	return a
}

// nodeHost resolves a node's `host` (or the defaults'); replica is the
// instance's, for pod placement.
func (r *resolver) nodeHost(sc scope, fn *FileNode, def *Value, replica int) string {
	if r.podHosts {
		return r.podHost(fn, replica)
	}
	v := firstNonNil(fn.Host, def)
	if r.hosts == nil {
		if v != nil {
			r.errorf(v.Pos, "declare it under hosts: with its address", "host %q, but the topology declares no hosts", v.Text)
		}
		return ""
	}
	if v == nil {
		if !fn.typos.any("host") {
			r.errorf(fn.Pos, "add host: NAME to the node, or to defaults", "node %q needs a host: the topology places its nodes on hosts (%s)", fn.Name, strings.Join(r.hostNames, ", "))
		}
		return ""
	}
	h, ok := r.str(sc, v, "host")
	if !ok {
		return ""
	}
	if _, known := r.hosts[h]; !known {
		hint := didYouMean(h, r.hostNames)
		if hint == "" {
			hint = "hosts: " + strings.Join(r.hostNames, ", ")
		}
		r.errorf(v.Pos, hint, "unknown host %q", h)
		return ""
	}
	return h
}

// crossHost reports whether two instances sit on different hosts.
func (r *resolver) crossHost(a, b *inst) bool {
	return r.hosts != nil && a.n.Host != "" && b.n.Host != "" && a.n.Host != b.n.Host
}

// crosses reports whether any of connectors sits on another host than in.
func (r *resolver) crosses(in *inst, connectors []*inst) bool {
	for _, c := range connectors {
		if r.crossHost(in, c) {
			return true
		}
	}
	return false
}

// autoPortKey names one cross-host auto bind: the instance and the socket
// (or its sync bind, which no socket name can be mistaken for).
func autoPortKey(in *inst, sock string, sync bool) string {
	if sync {
		return in.n.Name + "/sync"
	}
	return in.n.Name + "." + sock
}

// assignPorts picks the tcp port of every `bind: auto` that a node on
// another host connects to: a hash of its key into `ports`, the next free
// port on a collision (keys taken in sorted order), never a port that a
// literal tcp bind of the file uses.
func (r *resolver) assignPorts(syncConnectors map[string][]*inst) {
	if r.hosts == nil {
		return
	}
	type need struct {
		key  string
		base string
		pos  Pos
	}
	var needs []need
	taken := map[int]bool{}
	for _, in := range r.insts {
		for _, is := range in.socks {
			for _, b := range is.binds {
				if b.auto {
					if r.crosses(in, r.connectors[in.n.Base+"."+is.s.Name]) {
						needs = append(needs, need{autoPortKey(in, is.s.Name, false), in.n.Base + "." + is.s.Name, b.pos})
					}
					continue
				}
				if e, err := ParseEndpoint(b.ep, true); err == nil && e.Transport == "tcp" {
					if p, err := strconv.Atoi(e.Port); err == nil {
						taken[p] = true
					}
				}
			}
		}
		if in.sync == nil {
			continue
		}
		if in.sync.bindAuto && r.crosses(in, syncConnectors[in.n.Base]) {
			needs = append(needs, need{autoPortKey(in, "", true), in.n.Base + " sync", in.sync.bindPos})
		} else if in.n.Sync != nil && in.n.Sync.Bind != "" {
			if e, err := ParseEndpoint(in.n.Sync.Bind, true); err == nil && e.Transport == "tcp" {
				if p, err := strconv.Atoi(e.Port); err == nil {
					taken[p] = true
				}
			}
		}
	}
	if len(needs) == 0 {
		return
	}
	r.autoPorts = map[string]int{}
	r.autoLoopback = map[string]bool{}
	for _, n := range needs {
		r.autoPorts[n.key] = 0 // no port (yet): no endpoint, rather than an inproc one that cannot cross
	}
	from, to, ok := r.portRange()
	if !ok {
		if r.f.Ports == nil {
			for _, n := range needs {
				r.errorf(n.pos, "add ports: {from: 7000, to: 7999} (a range every host may bind)",
					"bind: auto of %q is reached from another host and needs a tcp port, but the topology has no ports", n.base)
			}
		}
		return
	}
	free := 0
	for p := from; p <= to; p++ {
		if !taken[p] {
			free++
		}
	}
	if free < len(needs) {
		r.errorf(r.f.Ports.Pos, fmt.Sprintf("widen the range to at least %d ports", to-from+1+len(needs)-free),
			"ports %d-%d has %d free ports, but %d bind: auto endpoints are reached from other hosts", from, to, free, len(needs))
		return
	}
	sort.Slice(needs, func(i, j int) bool { return needs[i].key < needs[j].key })
	size := to - from + 1
	for _, n := range needs {
		h := fnv.New32a()
		h.Write([]byte(r.topo.Name + "/" + n.key))
		p := from + int(h.Sum32()%uint32(size))
		for taken[p] {
			if p++; p > to {
				p = from
			}
		}
		taken[p] = true
		r.autoPorts[n.key] = p
	}
}

// portRange reads `ports`.
func (r *resolver) portRange() (from, to int, ok bool) {
	p := r.f.Ports
	if p == nil && r.kubernetes != "" {
		return defaultPodPorts.from, defaultPodPorts.to, true
	}
	if p == nil || p.From == nil || p.To == nil {
		return 0, 0, false
	}
	sc := r.fileScope()
	f, okf := r.integer(sc, p.From, "ports from")
	t, okt := r.integer(sc, p.To, "ports to")
	if !okf || !okt {
		return 0, 0, false
	}
	bad := false
	for _, x := range []struct {
		n int
		v *Value
		k string
	}{{f, p.From, "from"}, {t, p.To, "to"}} {
		if x.n < 1 || x.n > 65535 {
			r.errorf(x.v.Pos, "", "ports %s must be a port from 1 to 65535, got %d", x.k, x.n)
			bad = true
		}
	}
	if !bad && f > t {
		r.errorf(p.To.Pos, "", "ports to (%d) is below ports from (%d)", t, f)
		bad = true
	}
	return f, t, !bad
}

// autoTCP is the endpoint of a cross-host `bind: auto`: cross is false
// for a bind: auto that does not cross hosts; ep is "" when it crosses but
// has no port (reported).
func (r *resolver) autoTCP(in *inst, sock string, sync bool) (ep string, cross bool) {
	p, ok := r.autoPorts[autoPortKey(in, sock, sync)]
	switch {
	case !ok:
		return "", false
	case p == 0:
		return "", true
	case r.share == "":
		// Loopback on purpose: the whole file on one machine.
		ep = fmt.Sprintf("tcp://127.0.0.1:%d", p)
		r.autoLoopback[ep] = true
		return ep, true
	}
	return fmt.Sprintf("tcp://*:%d", p), true
}

// reach is the endpoint from connects to in order to reach to's bind at
// ep: on one machine, its local side (ConnectSide); from another host, a
// wildcard tcp bind at to's host address. Other endpoints stay as they
// are, and checkLinks reports those that cannot cross hosts.
func (r *resolver) reach(from, to *inst, ep string) string {
	if r.share == "" || !r.crossHost(from, to) {
		return ConnectSide(ep)
	}
	e, err := ParseEndpoint(ep, true)
	if err != nil || e.Transport != "tcp" {
		return ep
	}
	switch e.Host {
	case "*", "0.0.0.0", "[::]":
		if a := r.hosts[to.n.Host]; a != "" {
			return "tcp://" + addressHost(a) + ":" + e.Port
		}
	}
	return ep
}

// bindKey is what two binds that clash on one host have in common.
func (r *resolver) bindKey(in *inst, ep string) string {
	return in.n.Host + "\x00" + EndpointKey(ep)
}

// connectKeys are the bind keys a literal connect from in may reach: a
// listener on in's own host, and, when it names a host's address, that
// host's listeners at the address or a wildcard.
func (r *resolver) connectKeys(in *inst, ep string) []string {
	keys := []string{in.n.Host + "\x00" + EndpointKey(ep)}
	if r.hosts == nil {
		return keys
	}
	e, err := ParseEndpoint(ep, false)
	if err != nil {
		return keys
	}
	if e.Transport == "inproc" || e.Transport == "ipc" {
		// Not reachable from another host; a bind there is what the
		// author meant, and checkCrossHost says why it cannot work.
		for _, name := range r.hostNames {
			if name != in.n.Host {
				keys = append(keys, name+"\x00"+EndpointKey(ep))
			}
		}
		return keys
	}
	if e.Transport != "tcp" {
		return keys
	}
	h := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(e.Host, "["), "]"))
	for _, name := range r.hostNames {
		a := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(r.hosts[name], "["), "]"))
		if a != "" && a == h {
			keys = append(keys, name+"\x00"+EndpointKey("tcp://*:"+e.Port), name+"\x00"+EndpointKey(ep))
		}
	}
	return keys
}

// checkCrossHost reports a link between hosts over an endpoint that cannot
// leave a machine; it returns whether it did.
func (r *resolver) checkCrossHost(l link) bool {
	if !r.crossHost(l.from, l.to) {
		return false
	}
	e, err := ParseEndpoint(l.ep, true)
	if err != nil {
		return false
	}
	where := fmt.Sprintf("%q on host %q and %q on host %q", l.from.n.Base, l.from.n.Host, l.to.n.Base, l.to.n.Host)
	switch e.Transport {
	case "inproc", "ipc":
		r.errorf(l.pos, "use bind: auto (with ports) or a tcp:// endpoint, or place both on one host",
			"%s endpoint %q links %s: only tcp crosses hosts", e.Transport, l.ep, where)
		return true
	case "tcp":
		if isLoopback(e.Host) && !r.autoLoopback[l.ep] {
			r.errorf(l.pos, "bind tcp://*:PORT, or bind: auto (with ports)",
				"endpoint %q is a loopback address: it links %s, which cannot reach it", l.ep, where)
			return true
		}
	}
	return false
}

// isLoopback reports whether a tcp host is this machine's loopback only.
func isLoopback(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// defaultPodPorts are the ports of cross-pod `bind: auto` when the file
// has no `ports`: each pod has an address of its own, so any range works.
var defaultPodPorts = struct{ from, to int }{7000, 7999}

// PodName is the name of the pod that runs replica i of a StatefulSet
// named set: set-i.
func PodName(set string, i int) string { return fmt.Sprintf("%s-%d", set, i) }

// PodAddress is the DNS name of replica i of StatefulSet set, governed by
// the headless Service service, in namespace ns.
func PodAddress(set string, i int, service, ns string) string {
	return fmt.Sprintf("%s.%s.%s.svc.cluster.local", PodName(set, i), service, ns)
}

// podPlacement gives a file without hosts one host per node instance: the
// pod of that replica in the node's StatefulSet. nodeHost adds them as the
// instances are made; podShare checks the share once they all are.
func (r *resolver) podPlacement() {
	r.podHosts = true
	r.hosts = map[string]string{}
}

// podHost is the host of replica i of node fn under pod placement.
func (r *resolver) podHost(fn *FileNode, i int) string {
	h := PodName(fn.Name, i)
	if _, dup := r.hosts[h]; !dup {
		r.hosts[h] = PodAddress(fn.Name, i, fn.Name, r.kubernetes)
		r.hostNames = append(r.hostNames, h)
		r.topo.Hosts = append(r.topo.Hosts, Host{Name: h, Address: r.hosts[h]})
	}
	return h
}

// podShare sorts the pod hosts and checks the share asked for.
func (r *resolver) podShare() {
	if !r.podHosts {
		return
	}
	sort.Strings(r.hostNames)
	sort.Slice(r.topo.Hosts, func(i, j int) bool { return r.topo.Hosts[i].Name < r.topo.Hosts[j].Name })
	if r.share != "" {
		if _, ok := r.hosts[r.share]; !ok {
			r.errorf(r.f.Pos, didYouMean(r.share, r.hostNames), "unknown pod %q: the topology has no such node instance", r.share)
		}
		r.topo.Share = r.share
	}
}
