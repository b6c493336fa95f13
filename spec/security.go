package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ztopo/ztopo/internal/curvecert"
)

// CURVE: the `security` block and each socket's `curve`. The key files are
// read here, at validation, so that a missing key, a key name misspelt or a
// secret others can read is an error with a position before anything runs;
// the resolved model keeps public keys and the path of each secret, never a
// secret.

var curveKeys = []string{"allow", "client", "server", "server_key"}

// security is the resolver's view of the `security` block.
type security struct {
	dir     string // absolute keys directory; "" without one
	shown   string // the directory as written, for messages
	dirOK   bool
	pos     Pos // security.keys, or the block
	require bool
	keys    map[string]*keyInfo
}

// keyInfo caches what was read of one key name.
type keyInfo struct {
	pub, secFile string
	pubErr       error // reading NAME.key
	secRead      bool
	secErr       error // reading NAME.key_secret
	secPub       string
}

// icurve is a socket's curve map as written.
type icurve struct {
	pos          Pos
	server       bool
	key          string
	keyPos       Pos
	allow        []string
	allowPos     []Pos
	allowSet     bool
	allowAny     bool
	allowListPos Pos
	serverKey    string
	serverKeyPos Pos
	ok           bool // a role and a key name were given
}

func (r *resolver) security() {
	fs := r.f.Security
	r.sec = &security{keys: map[string]*keyInfo{}}
	if fs == nil {
		return
	}
	sc := r.fileScope()
	r.topo.Security = &Security{}
	r.sec.pos = fs.Pos
	if fs.Keys != nil {
		r.sec.pos = fs.Keys.Pos
		if d, ok := r.str(sc, fs.Keys, "security.keys"); ok {
			r.sec.shown = filepath.Clean(d)
			r.sec.dir = r.relPath(d)
			r.topo.Security.KeysDir = r.sec.dir
			if fi, err := os.Stat(r.sec.dir); err != nil {
				r.errorf(fs.Keys.Pos, "create it with ztopo keys gen NAME --dir "+r.sec.shown, "cannot read keys directory %s: %v", r.sec.shown, unwrapPathError(err))
			} else if !fi.IsDir() {
				r.errorf(fs.Keys.Pos, "", "keys directory %s is not a directory", r.sec.shown)
			} else {
				r.sec.dirOK = true
			}
		}
	}
	if fs.Require != nil {
		if s, ok := r.str(sc, fs.Require, "security.require"); ok {
			if s == "curve" {
				r.sec.require = true
				r.topo.Security.RequireCurve = true
			} else {
				r.errorf(fs.Require.Pos, didYouMean(s, []string{"curve"}), "unknown security.require %q: the only requirement is curve", s)
			}
		}
	}
}

// curve reads a socket's curve map.
func (r *resolver) curve(sc scope, full string, v *Value) *icurve {
	c := &icurve{pos: v.Pos}
	f := r.pick(v, fmt.Sprintf("curve of socket %q", full), curveKeys...)
	server, client, allow, serverKey := f["server"], f["client"], f["allow"], f["server_key"]
	role := server
	switch {
	case server != nil && client != nil:
		r.errorf(client.Pos, "", "curve of socket %q has both server and client: a socket is one or the other", full)
		return c
	case server == nil && client == nil:
		r.errorf(v.Pos, "", "curve of socket %q needs server: KEY (it binds) or client: KEY (it connects)", full)
		return c
	case client != nil:
		role = client
	}
	c.server = server != nil
	if name, ok := r.str(sc, role, "curve key"); ok {
		if !curvecert.ValidName(name) {
			r.errorf(role.Pos, "", "bad key name %q: use letters, digits, '.', '-' and '_'", name)
		} else {
			c.key, c.keyPos, c.ok = name, role.Pos, true
		}
	}
	if allow != nil {
		if !c.server {
			r.errorf(allow.Pos, "", "allow is for a CURVE server; socket %q is a client", full)
		} else if names, pos, ok := r.strList(sc, allow, "allow", false); ok {
			c.allowSet, c.allowListPos = true, allow.Pos
			for i, n := range names {
				if n == "*" {
					c.allowAny = true
					if len(names) > 1 {
						r.errorf(pos[i], "", `allow "*" lets in any client: it cannot be combined with names`)
					}
					continue
				}
				if !curvecert.ValidName(n) {
					r.errorf(pos[i], "", "bad key name %q: use letters, digits, '.', '-' and '_'", n)
					continue
				}
				c.allow, c.allowPos = append(c.allow, n), append(c.allowPos, pos[i])
			}
		}
	}
	if serverKey != nil {
		if c.server {
			r.errorf(serverKey.Pos, "", "server_key is for a CURVE client; socket %q is a server", full)
		} else if name, ok := r.str(sc, serverKey, "server_key"); ok {
			if !curvecert.ValidName(name) {
				r.errorf(serverKey.Pos, "", "bad key name %q: use letters, digits, '.', '-' and '_'", name)
			} else {
				c.serverKey, c.serverKeyPos = name, serverKey.Pos
			}
		}
	}
	return c
}

// key looks a key name up in the keys directory, reporting at pos what is
// wrong with it: an unknown name (with a suggestion), an unreadable
// certificate, and, when secret is set (the socket's own key), a missing
// secret certificate or one that others may read.
func (r *resolver) key(name string, pos Pos, secret bool) (pub, secFile string, ok bool) {
	s := r.sec
	if !s.dirOK {
		return "", "", false // reported: no keys directory, or unreadable
	}
	ki := s.keys[name]
	if ki == nil {
		ki = &keyInfo{secFile: curvecert.SecretPath(s.dir, name)}
		ki.pub, ki.pubErr = curvecert.ReadPublic(curvecert.PublicPath(s.dir, name))
		s.keys[name] = ki
	}
	shownPub := filepath.Join(s.shown, name+curvecert.PublicSuffix)
	shownSec := filepath.Join(s.shown, name+curvecert.SecretSuffix)
	if ki.pubErr != nil {
		if errors.Is(ki.pubErr, fs.ErrNotExist) {
			hint := didYouMean(name, curvecert.Names(s.dir))
			if hint == "" {
				hint = fmt.Sprintf("create it with ztopo keys gen %s --dir %s", name, s.shown)
			}
			r.errorf(pos, hint, "unknown key %q: there is no %s", name, shownPub)
		} else {
			r.errorf(pos, "", "cannot read key %q from %s: %v", name, shownPub, ki.pubErr)
		}
		return "", "", false
	}
	if !secret {
		return ki.pub, "", true
	}
	if !ki.secRead {
		ki.secRead = true
		var c curvecert.Cert
		c, ki.secErr = curvecert.ReadSecret(ki.secFile)
		ki.secPub = c.Public
	}
	switch {
	case errors.Is(ki.secErr, fs.ErrNotExist):
		r.errorf(pos, "a socket that uses a key needs its secret; others only need the public NAME.key", "key %q has no secret certificate %s", name, shownSec)
		return "", "", false
	case ki.secErr != nil:
		r.errorf(pos, "", "cannot use secret key %s: %v", shownSec, ki.secErr)
		return "", "", false
	case ki.secPub != ki.pub:
		r.errorf(pos, "", "key %q: %s and %s hold different public keys", name, shownPub, shownSec)
		return "", "", false
	}
	return ki.pub, ki.secFile, true
}

// checkSecurity resolves every socket's CURVE keys now that the links are
// known (a server's implicit allow list, a client's server key), and
// reports the socket and transport mistakes of security.
func (r *resolver) checkSecurity(links []link) {
	clientsOf := map[*isock][]link{} // server socket -> links to it by reference
	serversOf := map[*isock][]link{} // socket -> its links to sockets of the file
	for _, l := range links {
		if l.fs == nil || l.ts == nil {
			continue
		}
		serversOf[l.fs] = append(serversOf[l.fs], l)
		if l.byRef {
			clientsOf[l.ts] = append(clientsOf[l.ts], l)
		}
	}
	for _, in := range r.insts {
		for _, is := range in.socks {
			full := qual(in, is.s.Name)
			c := is.curve
			if c == nil {
				r.checkPlain(in, is, full, serversOf[is])
				continue
			}
			if r.sec.dir == "" {
				r.errorf(c.pos, "add security: {keys: DIR} naming the directory of the key certificates", "curve on socket %q needs security.keys", full)
				continue
			}
			r.checkCurveTransport(is, full)
			if !c.ok {
				continue
			}
			// A share needs the secrets of its own nodes only: a host (or
			// a pod) holds no other host's secret keys.
			mine := r.share == "" || in.n.Host == r.share
			pub, secFile, ok := r.key(c.key, c.keyPos, mine)
			cv := &Curve{Server: c.server, Key: c.key, Public: pub, SecretFile: secFile}
			if c.server {
				r.serverCurve(is, full, cv, clientsOf[is])
			} else {
				r.clientCurve(is, full, cv, serversOf[is])
			}
			if ok {
				is.s.Curve = cv
			}
		}
		if r.sec.require && in.n.Sync != nil && in.sync != nil {
			for _, ep := range []string{in.n.Sync.Bind, in.n.Sync.Connect} {
				if strings.HasPrefix(ep, "tcp://") {
					pos := in.sync.bindPos
					if ep == in.n.Sync.Connect {
						pos = in.sync.connectPos
					}
					r.errorf(pos, "use bind: auto or an ipc:// endpoint for sync", "security.require is curve, but the sync barrier of %q uses tcp without it", in.n.Base)
				}
			}
		}
	}
}

func (r *resolver) serverCurve(is *isock, full string, cv *Curve, clients []link) {
	c := is.curve
	if len(is.conns) > 0 {
		r.errorf(c.keyPos, "bind the server; let clients connect", "CURVE server socket %q connects: a CURVE server binds", full)
		return
	}
	seen := map[string]bool{}
	add := func(name, pub string) {
		if !seen[name] {
			seen[name] = true
			cv.Allow = append(cv.Allow, CurveKey{Name: name, Public: pub})
		}
	}
	switch {
	case c.allowAny:
		cv.AllowAny = true
	case c.allowSet:
		for i, name := range c.allow {
			if pub, _, ok := r.key(name, c.allowPos[i], false); ok {
				add(name, pub)
			}
		}
		if len(c.allow) == 0 {
			r.warnf(c.allowListPos, `name the client keys, or write allow: ["*"] for any client with a key`, "CURVE server socket %q allows no client", full)
		}
	default:
		for _, l := range clients {
			if cc := l.fs.curve; cc != nil && cc.ok && !cc.server {
				if pub, _, ok := r.key(cc.key, cc.keyPos, false); ok {
					add(cc.key, pub)
				}
			}
		}
		if len(clients) == 0 {
			r.warnf(c.keyPos, `name the client keys in allow, or write allow: ["*"] for any client with a key`, "CURVE server socket %q allows no client: nothing connects to it by reference and it has no allow list", full)
		}
	}
	sort.Slice(cv.Allow, func(i, j int) bool { return cv.Allow[i].Name < cv.Allow[j].Name })
	if c.allowSet && !c.allowAny {
		for _, l := range clients {
			if cc := l.fs.curve; cc != nil && cc.ok && !cc.server && !seen[cc.key] {
				r.warnf(l.pos, fmt.Sprintf("add %q to its allow list", cc.key), "CURVE server %q does not allow key %q of socket %q: it will be refused", qual(l.to, l.ts.s.Name), cc.key, qual(l.from, l.fs.s.Name))
			}
		}
	}
}

func (r *resolver) clientCurve(is *isock, full string, cv *Curve, servers []link) {
	c := is.curve
	if len(is.binds) > 0 {
		r.errorf(c.keyPos, "let the server bind; connect the client", "CURVE client socket %q binds: a CURVE client connects", full)
		return
	}
	names := map[string]bool{}
	for _, l := range servers {
		sc := l.ts.curve
		switch {
		case sc == nil || !sc.server:
			if l.byRef {
				r.errorf(l.pos, fmt.Sprintf("give %q curve: {server: KEY}", qual(l.to, l.ts.s.Name)), "CURVE client %q connects to %q, which is not a CURVE server", full, qual(l.to, l.ts.s.Name))
			}
		case sc.ok:
			if !names[sc.key] {
				names[sc.key] = true
				if len(names) == 1 {
					cv.ServerName = sc.key
				} else {
					r.errorf(l.pos, "give the servers one key, or use one socket per server", "CURVE client %q connects to servers with different keys (%q and %q): a socket has one server key", full, cv.ServerName, sc.key)
				}
			}
		}
	}
	literal := false
	for _, cn := range is.conns {
		if !cn.ref {
			literal = true
		}
	}
	switch {
	case c.serverKey != "" && cv.ServerName != "" && c.serverKey != cv.ServerName:
		r.errorf(c.serverKeyPos, "", "server_key %q of socket %q differs from key %q of the server it connects to", c.serverKey, full, cv.ServerName)
	case c.serverKey != "":
		cv.ServerName = c.serverKey
		if pub, _, ok := r.key(c.serverKey, c.serverKeyPos, false); ok {
			cv.ServerKey = pub
		}
		return
	case literal && cv.ServerName == "":
		r.errorf(c.keyPos, "name the server's public key: server_key: NAME", "CURVE client socket %q connects to a literal endpoint: it needs server_key", full)
	}
	if cv.ServerName != "" {
		if pub, _, ok := r.key(cv.ServerName, c.keyPos, false); ok {
			cv.ServerKey = pub
		}
	}
}

// checkCurveTransport reports CURVE where it cannot work or does nothing.
func (r *resolver) checkCurveTransport(is *isock, full string) {
	c := is.curve
	if is.s.Type == STREAM {
		r.errorf(c.pos, "", "STREAM socket %q cannot use curve: it talks raw TCP", full)
		return
	}
	for _, ep := range append(append([]string(nil), is.s.Bind...), is.s.Connect...) {
		switch scheme, _, _ := strings.Cut(ep, "://"); scheme {
		case "inproc":
			r.warnf(c.pos, "inproc never leaves the process; use ipc:// or tcp:// if the traffic must be authenticated", "curve on socket %q does nothing for its inproc endpoint %s: inproc skips the security handshake", full, ep)
		case "pgm", "epgm":
			r.errorf(c.pos, "", "socket %q cannot use curve over %s: PGM has no security handshake", full, scheme)
		}
	}
}

// checkPlain reports a socket without curve where curve is needed or
// would be wise.
func (r *resolver) checkPlain(in *inst, is *isock, full string, servers []link) {
	for _, l := range servers {
		if sc := l.ts.curve; sc != nil && sc.server && l.byRef {
			r.errorf(l.pos, "give it curve: {client: KEY}", "socket %q connects to CURVE server %q without curve: the server refuses it", full, qual(l.to, l.ts.s.Name))
		}
	}
	tcp := false
	for _, ep := range append(append([]string(nil), is.s.Bind...), is.s.Connect...) {
		if strings.HasPrefix(ep, "tcp://") {
			tcp = true
		}
	}
	if r.sec.require && tcp {
		r.errorf(is.fs.Pos, "give it curve: {server: KEY} or {client: KEY}", "security.require is curve, but socket %q uses tcp without curve", full)
		return
	}
	for _, b := range is.binds {
		if e, err := ParseEndpoint(b.ep, true); err == nil && e.Transport == "tcp" && !loopback(e.Host) {
			r.warnf(b.pos, "give it curve: {server: KEY}, or bind 127.0.0.1", "socket %q binds %s without curve: anyone who can reach it can read and write", full, b.ep)
		}
	}
}

// loopback reports whether a tcp host is this machine only.
func loopback(host string) bool {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}
