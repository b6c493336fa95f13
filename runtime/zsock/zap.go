package zsock

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/curvecert"
	"github.com/ztopo/ztopo/spec"
)

// CURVE and ztopo's own ZAP handler (ZeroMQ RFC 27).
//
// A CURVE server socket whose context has no ZAP handler accepts every
// client that knows the server's public key. pebbe/zmq4's AuthStart serves
// only the default context, and ztopo never uses that one (the engine and
// each process node make their own), so ztopo runs a handler of its own: one
// goroutine per context on a REP socket bound at inproc://zeromq.zap.01,
// started by the first CURVE server socket of the context before that socket
// binds, and ended by the context's termination (ETERM). Each CURVE server
// socket has its own ZAP domain, whose allow list the handler checks; a
// request for an unknown domain, another mechanism than CURVE or a key not
// allowed is refused (400). If the handler cannot be started, the socket is
// not opened: fail closed.

const zapEndpoint = "inproc://zeromq.zap.01"

// zapPoll is how often the handler looks up from an idle socket; it ends on
// the context's termination, which wakes the poll at once.
const zapPoll = 500 * time.Millisecond

// denyLogEvery bounds the log of refused handshakes: one line per socket and
// interval, telling how many were left out.
const denyLogEvery = time.Second

var (
	zapMu  sync.Mutex
	zapsBy = map[*zmq4.Context]*zapHandler{}
	zapSeq atomic.Uint64
)

type zapHandler struct {
	mu      sync.Mutex
	domains map[string]*Guard
	ready   chan error
}

// Guard is a CURVE server socket's entry in its context's ZAP handler: its
// domain and allow list. SetAllow may be called from any goroutine.
type Guard struct {
	Domain       string
	node, socket string
	stats        *Stats
	log          hclog.Logger
	allow        *Allow
	h            *zapHandler

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

type allowList struct {
	any  bool
	keys map[string]string // raw 32-byte public key -> key name
}

func newAllowList(c *spec.Curve) (*allowList, error) {
	a := &allowList{any: c.AllowAny, keys: map[string]string{}}
	for _, k := range c.Allow {
		raw, err := curvecert.Decode(k.Public)
		if err != nil {
			return nil, fmt.Errorf("allowed key %q: %w", k.Name, err)
		}
		a.keys[string(raw)] = k.Name
	}
	return a, nil
}

// Allow is a CURVE server socket's allow list as the ZAP handler reads it,
// at every handshake: its owner (a node instance, across the sockets its
// restarts open) replaces it on reload without touching the socket. Set
// may be called from any goroutine.
type Allow struct {
	p atomic.Pointer[allowList]
}

// NewAllow is the allow list of a CURVE server c.
func NewAllow(c *spec.Curve) (*Allow, error) {
	a := &Allow{}
	if err := a.Set(c); err != nil {
		return nil, err
	}
	return a, nil
}

// Set replaces the list with c's: it applies to the next handshake.
// Connections already let in stay.
func (a *Allow) Set(c *spec.Curve) error {
	l, err := newAllowList(c)
	if err != nil {
		return err
	}
	a.p.Store(l)
	return nil
}

func (a *Allow) load() *allowList { return a.p.Load() }

// SetAllow replaces the allow list: it applies to the next handshake.
func (g *Guard) SetAllow(c *spec.Curve) error { return g.allow.Set(c) }

// Allows reports whether a client with the Z85 public key pub would be let
// in now.
func (g *Guard) Allows(pub string) bool {
	raw, err := curvecert.Decode(pub)
	if err != nil {
		return false
	}
	a := g.allow.load()
	_, ok := a.keys[string(raw)]
	return a.any || ok
}

// Close removes the domain: later handshakes for it are refused.
func (g *Guard) Close() {
	if g == nil || g.h == nil {
		return
	}
	g.h.mu.Lock()
	if g.h.domains[g.Domain] == g {
		delete(g.h.domains, g.Domain)
	}
	g.h.mu.Unlock()
}

// guard registers a CURVE server socket with the ZAP handler of ctx,
// starting the handler if it is not running yet.
func guard(ctx *zmq4.Context, node, socket string, c *spec.Curve, allow *Allow, stats *Stats, log hclog.Logger) (*Guard, error) {
	if allow == nil {
		a, err := NewAllow(c)
		if err != nil {
			return nil, err
		}
		allow = a
	}
	h, err := zapFor(ctx)
	if err != nil {
		return nil, fmt.Errorf("ZAP handler: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	g := &Guard{
		Domain: fmt.Sprintf("ztopo/%s/%s/%d", node, socket, zapSeq.Add(1)),
		node:   node, socket: socket, stats: stats, log: log, h: h, allow: allow,
	}
	h.mu.Lock()
	h.domains[g.Domain] = g
	h.mu.Unlock()
	return g, nil
}

// zapFor returns the running handler of ctx, starting it if needed, and
// only once its socket is bound.
func zapFor(ctx *zmq4.Context) (*zapHandler, error) {
	zapMu.Lock()
	defer zapMu.Unlock()
	if h := zapsBy[ctx]; h != nil {
		return h, nil
	}
	h := &zapHandler{domains: map[string]*Guard{}, ready: make(chan error, 1)}
	go h.run(ctx)
	if err := <-h.ready; err != nil {
		return nil, err
	}
	zapsBy[ctx] = h
	return h, nil
}

// run owns the handler's REP socket: it binds it, says so on ready, and
// answers requests until the context terminates.
func (h *zapHandler) run(ctx *zmq4.Context) {
	rep, err := ctx.NewSocket(zmq4.REP)
	if err != nil {
		h.ready <- err
		return
	}
	defer rep.Close()
	if err := rep.SetLinger(0); err != nil {
		h.ready <- err
		return
	}
	if err := rep.Bind(zapEndpoint); err != nil {
		h.ready <- fmt.Errorf("bind %s: %w", zapEndpoint, err)
		return
	}
	h.ready <- nil
	defer func() {
		zapMu.Lock()
		if zapsBy[ctx] == h {
			delete(zapsBy, ctx)
		}
		zapMu.Unlock()
	}()
	poller := zmq4.NewPoller()
	poller.Add(rep, zmq4.POLLIN)
	for {
		polled, err := poller.Poll(zapPoll)
		if err != nil {
			if zmq4.AsErrno(err) == zmq4.ETERM || errors.Is(err, zmq4.ErrorContextClosed) {
				return
			}
			continue // EINTR
		}
		if len(polled) == 0 {
			continue
		}
		req, err := rep.RecvMessageBytes(zmq4.DONTWAIT)
		if err != nil {
			if zmq4.AsErrno(err) == zmq4.ETERM {
				return
			}
			continue
		}
		if _, err := rep.SendMessage(h.answer(req)); err != nil && zmq4.AsErrno(err) == zmq4.ETERM {
			return
		}
	}
}

// answer is the reply to one ZAP request: version, request id, status
// code, status text, user id (the client's key name), metadata.
func (h *zapHandler) answer(req [][]byte) [][]byte {
	if len(req) < 6 || string(req[0]) != "1.0" {
		id := []byte{}
		if len(req) > 1 {
			id = req[1]
		}
		return [][]byte{[]byte("1.0"), id, []byte("500"), []byte("malformed ZAP request"), {}, {}}
	}
	id, domain, address, mechanism := req[1], string(req[2]), string(req[3]), string(req[5])
	reply := func(code, text, user string) [][]byte {
		return [][]byte{[]byte("1.0"), id, []byte(code), []byte(text), []byte(user), {}}
	}
	h.mu.Lock()
	g := h.domains[domain]
	h.mu.Unlock()
	if g == nil {
		return reply("400", "unknown domain", "")
	}
	if mechanism != "CURVE" || len(req) < 7 || len(req[6]) != 32 {
		g.denied(address, "", "mechanism "+mechanism)
		return reply("400", "CURVE required", "")
	}
	key := req[6]
	a := g.allow.load()
	if name, ok := a.keys[string(key)]; ok {
		return reply("200", "OK", name)
	}
	if a.any {
		return reply("200", "OK", "")
	}
	pub, _ := curvecert.Z85Encode(key)
	g.denied(address, pub, "key not allowed")
	return reply("400", "key not allowed", "")
}

// denied counts a refused handshake and logs it, at most once per
// denyLogEvery per socket.
func (g *Guard) denied(address, key, why string) {
	g.count()
	g.logDenied(address, key, why)
}

// count counts a refused handshake.
func (g *Guard) count() {
	if g != nil && g.stats != nil {
		g.stats.authFailures.Add(1)
	}
}

// logDenied logs a refused handshake, at most once per denyLogEvery per
// socket, saying how many were left out since.
func (g *Guard) logDenied(address, key, why string) {
	if g == nil {
		return
	}
	g.logMu.Lock()
	defer g.logMu.Unlock()
	now := time.Now()
	if now.Sub(g.lastLog) < denyLogEvery {
		g.suppressed++
		return
	}
	args := []any{"socket", g.socket, "peer", address, "reason", why} // the logger names the node
	if key != "" {
		args = append(args, "key", key)
	}
	if g.suppressed > 0 {
		args = append(args, "more_denied", g.suppressed)
	}
	g.log.Warn("refused a CURVE handshake", args...)
	g.lastLog, g.suppressed = now, 0
}

// setupCurve makes z a CURVE server or client with c's keys, before it
// binds or connects. The secret is read here, from its file, checked again
// (mode, and that it is still the pair validation saw), set and forgotten.
func (s *Socket) setupCurve(ctx *zmq4.Context, c *spec.Curve, o Options) error {
	cert, err := curvecert.ReadSecret(c.SecretFile)
	if err != nil {
		return fmt.Errorf("key %q (%s): %w", c.Key, c.SecretFile, err)
	}
	if cert.Public != c.Public {
		return fmt.Errorf("key %q (%s) changed since the topology was loaded: reload it", c.Key, c.SecretFile)
	}
	secret, err := curvecert.Decode(cert.Secret)
	if err != nil {
		return fmt.Errorf("key %q: bad secret key", c.Key)
	}
	public, err := curvecert.Decode(c.Public)
	if err != nil {
		return fmt.Errorf("key %q: bad public key", c.Key)
	}
	if c.Server {
		g, err := guard(ctx, o.Node, s.Spec.Name, c, o.Allow, s.Stats, o.Logger)
		if err != nil {
			return err
		}
		s.Guard = g
		if err := s.Z.SetZapDomain(g.Domain); err != nil {
			return fmt.Errorf("zap domain: %w", err)
		}
		if err := s.Z.SetCurveServer(1); err != nil {
			return fmt.Errorf("curve server: %w", err)
		}
		if err := s.Z.SetCurveSecretkey(string(secret)); err != nil {
			return fmt.Errorf("curve secret key: %w", err)
		}
		return nil
	}
	server, err := curvecert.Decode(c.ServerKey)
	if err != nil {
		return fmt.Errorf("server key %q: %w", c.ServerName, err)
	}
	if err := s.Z.SetCurveServerkey(string(server)); err != nil {
		return fmt.Errorf("curve server key: %w", err)
	}
	if err := s.Z.SetCurvePublickey(string(public)); err != nil {
		return fmt.Errorf("curve public key: %w", err)
	}
	if err := s.Z.SetCurveSecretkey(string(secret)); err != nil {
		return fmt.Errorf("curve secret key: %w", err)
	}
	return nil
}
