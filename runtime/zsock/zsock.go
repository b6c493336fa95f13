// Package zsock turns resolved socket specs into pebbe/zmq4 sockets: options
// set by their libzmq names, identities, subscriptions, binds (retried while
// the address is still held by a previous instance) and connects; routing
// envelopes split off and restored by socket type; and per-socket counters.
//
// Ownership: a Socket is not safe for concurrent use. Whoever opens it (a
// node's goroutine) uses it and closes it; only its Stats may be read from
// other goroutines. Every socket gets a bounded linger right after creation
// (0 unless the spec's `linger` option says otherwise), so that terminating
// the process's single context never hangs on unsent messages.
//
// Envelopes, by type, for reactive nodes:
//
//	ROUTER, STREAM  the first frame (the peer's identity), then any frames up to
//	                and including the first empty frame
//	DEALER, REQ     frames up to and including the first empty frame, if any
//	                (REQ only acts as a server in the lbbroker worker role)
//	others          none
//
// Who calls pebbe/zmq4 (the real rule; STYLE's "only zsock" is the aim, not
// the fact): every socket that carries topology traffic is opened here, from
// its spec, so the options, the bounded linger and the bind rules have one
// home. Other packages call pebbe only on sockets that are theirs alone and
// that set their own bounded linger on creation: node (the inproc control
// socket that stops a node, the sync barrier's REQ/REP, and send/receive/poll
// on the sockets zsock opened for it), control (the control socket's REP and
// the client's REQ, each on a private context), the proxy builtin (hands the
// zsock sockets to zmq_proxy_steerable), pluginhost and the plugin SDK (the
// plugin protocol's ROUTER and DEALER), and internal/zbatch (drives the libzmq
// handles of sockets it is given, on their owner's goroutine). The engine
// only owns the context.
package zsock

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/spec"
)

// DefaultLinger is the linger of a socket whose spec sets none: unsent
// messages are dropped at close. Draining is done by the engine (it stops
// producers first and waits for the pipeline to go quiet), not by linger.
const DefaultLinger = 0

// bindRetryFor bounds how long Open retries a bind that fails with
// EADDRINUSE: a node that restarts rebinds the port its previous instance
// just closed, and libzmq releases listeners asynchronously in its I/O thread.
const bindRetryFor = 2 * time.Second

// NewContext returns the process's ZeroMQ context: one I/O thread (the
// machine-sized default, and what a hand-written program gets) and room for
// many sockets, since every node instance, control channel and monitor is one.
func NewContext() (*zmq4.Context, error) {
	ctx, err := zmq4.NewContext()
	if err != nil {
		return nil, fmt.Errorf("zeromq context: %w", err)
	}
	if err := ctx.SetMaxSockets(65536); err != nil {
		// Not fatal: the default (1023) still runs most topologies.
		_ = err
	}
	if err := ctx.SetIoThreads(1); err != nil {
		_ = ctx.Term()
		return nil, fmt.Errorf("zeromq context: io threads: %w", err)
	}
	return ctx, nil
}

// Stats are a socket's counters, updated by the owning goroutine and read
// atomically by anyone (status, metrics). One Stats may outlive many sockets:
// a node instance keeps counting across restarts.
type Stats struct {
	msgsIn, msgsOut, bytesIn, bytesOut, sendErrors atomic.Uint64
	authFailures                                   atomic.Uint64 // CURVE handshakes refused
	peers                                          atomic.Int64  // connections accepted and not gone (peermon.go)
	peersKnown                                     atomic.Bool
	peersLost                                      atomic.Int64 // accepted connections that ended (peermon.go)
	peersWatched                                   atomic.Bool  // a peer monitor was ever attached

	// taps attached (tap.go); nil while none is: the data path then makes
	// no copy.
	taps atomic.Pointer[tapSet]
}

// StatsSnapshot is a point-in-time copy of Stats.
type StatsSnapshot struct {
	MsgsIn, MsgsOut, BytesIn, BytesOut, SendErrors uint64
	AuthFailures                                   uint64 // CURVE handshakes refused, by the ZAP handler or before it
}

// Snapshot reads the counters.
func (st *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		MsgsIn:       st.msgsIn.Load(),
		MsgsOut:      st.msgsOut.Load(),
		BytesIn:      st.bytesIn.Load(),
		BytesOut:     st.bytesOut.Load(),
		SendErrors:   st.sendErrors.Load(),
		AuthFailures: st.authFailures.Load(),
	}
}

// Socket is an open socket built from a spec.
type Socket struct {
	Spec  *spec.Socket
	Z     *zmq4.Socket
	Stats *Stats
	// Bound lists the endpoints actually bound (a `tcp://127.0.0.1:*` bind
	// shows its port here), in spec order.
	Bound []string

	linger time.Duration
	env    envKind

	frames *zbatch.Frames // fast-path buffers, from the first use on

	mon     *zmq4.Socket        // handshake monitor receiver, when watching
	pending map[string]struct{} // connect endpoints without a handshake yet

	// Guard is a CURVE server socket's ZAP domain and allow list; nil for
	// other sockets.
	Guard *Guard
	// authMon counts a CURVE server's handshakes refused before ZAP.
	authMon *authMonitor
	// peerMon counts the connections accepted on its binds.
	peerMon *peerMonitor
	// seesSubs: a PUB opened as an XPUB (Options.SeeSubscriptions).
	seesSubs bool
}

// Options tune Open.
type Options struct {
	// Stats to count into; nil: a fresh one.
	Stats *Stats
	// Allow is a CURVE server's live allow list, kept by the socket's
	// owner across sockets; nil: the spec's, fixed.
	Allow *Allow
	// WatchHandshakes attaches a socket monitor before connecting so that
	// Pending and WaitHandshake can tell when every tcp/ipc connect has
	// completed its ZMTP handshake (the sync barrier needs it).
	WatchHandshakes bool
	// Node names the instance in the ZAP domain and the log of refused
	// CURVE handshakes; Logger gets those lines (nil: dropped).
	Node   string
	Logger hclog.Logger
	// WatchPeers counts the connections accepted on the socket's tcp and
	// ipc binds into Stats (Stats.Peers), when it has such a bind and no
	// other monitor.
	WatchPeers bool
	// SeeSubscriptions opens a PUB as an XPUB, which sends exactly as a
	// PUB does and also hands its owner the subscriptions that reach it,
	// so that the owner can wait for them (TakeSubscriptions) instead of
	// guessing how long they take: a sync barrier's publisher does. The
	// owner reads them only while it waits; what comes later (one
	// notification per topic gained or lost, not per subscriber) stays
	// queued in libzmq until the socket closes. Other types ignore it.
	SeeSubscriptions bool
	// NoBindRetry makes a bind on an address in use fail at once: when no
	// previous instance of the node can be holding it (the first start of
	// a topology), another program has it, and waiting will not help.
	NoBindRetry bool
}

// Open creates the socket described by s in ctx and binds and connects it.
// On error nothing is left open, and the error names the socket and, for
// bind and connect failures, the endpoint.
func Open(ctx *zmq4.Context, s *spec.Socket) (*Socket, error) {
	return OpenWith(ctx, s, Options{})
}

var monSeq atomic.Uint64

// OpenWith is Open with options.
func OpenWith(ctx *zmq4.Context, s *spec.Socket, o Options) (sock *Socket, err error) {
	t, ok := zmqTypes[s.Type]
	if !ok {
		return nil, fmt.Errorf("socket %q: unknown type %q", s.Name, s.Type)
	}
	zt := t
	if t == zmq4.PUB && o.SeeSubscriptions {
		zt = zmq4.XPUB
	}
	z, err := ctx.NewSocket(zt)
	if err != nil {
		return nil, fmt.Errorf("socket %q: create %s: %w", s.Name, s.Type, err)
	}
	sock = &Socket{Spec: s, Z: z, Stats: o.Stats, linger: DefaultLinger, env: envelopeOf(t), seesSubs: zt != t}
	if sock.Stats == nil {
		sock.Stats = &Stats{}
	}
	defer func() {
		if err != nil {
			sock.CloseLinger(0)
			sock = nil
		}
	}()
	// Linger first: whatever fails below, the close must not block.
	if err := z.SetLinger(DefaultLinger); err != nil {
		return sock, fmt.Errorf("socket %q: linger: %w", s.Name, err)
	}
	for _, opt := range s.Options {
		if err := SetOption(z, opt.Name, opt.Value); err != nil {
			return sock, fmt.Errorf("socket %q: %w", s.Name, err)
		}
		if opt.Name == "linger" {
			l, _ := asInt(opt.Value)
			if d, ok := opt.Value.(time.Duration); ok {
				l = int(d / time.Millisecond)
			}
			sock.linger = time.Duration(l) * time.Millisecond
			if l < 0 {
				sock.linger = -1
			}
		}
	}
	if s.Curve != nil {
		// Before any bind or connect: libzmq takes a socket's security
		// options when it binds or connects.
		if err := sock.setupCurve(ctx, s.Curve, o); err != nil {
			return sock, fmt.Errorf("socket %q: curve: %w", s.Name, err)
		}
		// libzmq keeps one monitor per socket: a socket whose connects
		// are watched for the sync barrier (a CURVE server that also
		// connects, and syncs) has that one, and its refusals before
		// ZAP go uncounted.
		if s.Curve.Server && !o.WatchHandshakes {
			if err := sock.watchAuth(ctx); err != nil {
				return sock, fmt.Errorf("socket %q: curve: handshake monitor: %w", s.Name, err)
			}
		}
	}
	if needsIPv6(s) {
		if err := z.SetIpv6(true); err != nil {
			return sock, fmt.Errorf("socket %q: ipv6: %w", s.Name, err)
		}
	}
	if s.Identity != "" {
		if err := z.SetIdentity(s.Identity); err != nil {
			return sock, fmt.Errorf("socket %q: identity %q: %w", s.Name, s.Identity, err)
		}
	}
	for _, sub := range s.Subscribe {
		switch t {
		case zmq4.SUB:
			err = z.SetSubscribe(sub)
		case zmq4.XSUB:
			// XSUB subscribes by sending; libzmq stores it and replays it
			// to every peer that connects later.
			_, err = z.SendBytes(append([]byte{1}, sub...), zmq4.DONTWAIT)
		default:
			err = fmt.Errorf("subscribe on a %s socket", s.Type)
		}
		if err != nil {
			return sock, fmt.Errorf("socket %q: subscribe %q: %w", s.Name, sub, err)
		}
	}
	if o.WatchPeers && !o.WatchHandshakes && sock.authMon == nil && bindsOutward(s) {
		if err := sock.watchPeers(ctx); err != nil {
			return sock, fmt.Errorf("socket %q: peer monitor: %w", s.Name, err)
		}
	}
	for _, ep := range s.Bind {
		retryFor := bindRetryFor
		if o.NoBindRetry {
			retryFor = 0
		}
		if err := bindRetry(z, ep, retryFor); err != nil {
			return sock, fmt.Errorf("socket %q: bind %s: %w", s.Name, ep, err)
		}
		last, _ := z.GetLastEndpoint()
		if last == "" {
			last = ep
		}
		sock.Bound = append(sock.Bound, last)
	}
	if o.WatchHandshakes {
		if err := sock.watch(ctx); err != nil {
			return sock, fmt.Errorf("socket %q: monitor: %w", s.Name, err)
		}
	}
	for _, ep := range s.Connect {
		if err := z.Connect(ep); err != nil {
			return sock, fmt.Errorf("socket %q: connect %s: %w", s.Name, ep, err)
		}
		if sock.mon != nil && (strings.HasPrefix(ep, "tcp://") || strings.HasPrefix(ep, "ipc://")) {
			sock.pending[ep] = struct{}{}
		}
	}
	if sock.mon != nil && len(sock.pending) == 0 {
		sock.stopWatching()
	}
	return sock, nil
}

// bindsOutward reports whether s binds on tcp or ipc: where a peer from
// outside the process may connect.
func bindsOutward(s *spec.Socket) bool {
	for _, ep := range s.Bind {
		if strings.HasPrefix(ep, "tcp://") || strings.HasPrefix(ep, "ipc://") {
			return true
		}
	}
	return false
}

// BindRetry binds z to ep, retrying EADDRINUSE briefly as Open does: the
// socket that held the endpoint may still be closing.
func BindRetry(z *zmq4.Socket, ep string) error { return bindRetry(z, ep, bindRetryFor) }

// needsIPv6 reports whether a socket binds or connects a tcp endpoint with
// an IPv6 address (`tcp://[::]:5555`, `tcp://[::1]:5555`): libzmq refuses
// those ("no such device") unless ZMQ_IPV6 is set. It is set for such
// sockets unless the file sets the `ipv6` option itself. An IPv6 socket
// still serves IPv4 peers (a dual-stack listener on [::]).
func needsIPv6(s *spec.Socket) bool {
	for _, o := range s.Options {
		if o.Name == "ipv6" {
			return false
		}
	}
	for _, ep := range append(append([]string(nil), s.Bind...), s.Connect...) {
		if strings.HasPrefix(ep, "tcp://") && strings.Contains(ep, "[") {
			return true
		}
	}
	return false
}

func bindRetry(z *zmq4.Socket, ep string, retryFor time.Duration) error {
	deadline := time.Now().Add(retryFor)
	wait := 10 * time.Millisecond
	for {
		err := z.Bind(ep)
		if err == nil || zmq4.AsErrno(err) != zmq4.EADDRINUSE || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		if wait *= 2; wait > 250*time.Millisecond {
			wait = 250 * time.Millisecond
		}
	}
}

// watch attaches a handshake monitor. The receiving PAIR connects before the
// socket connects anywhere: libzmq drops events nobody is connected for.
func (s *Socket) watch(ctx *zmq4.Context) error {
	mon, err := s.monitorPair(ctx, "mon", zmq4.EVENT_HANDSHAKE_SUCCEEDED)
	if err != nil {
		return err
	}
	s.mon = mon
	s.pending = map[string]struct{}{}
	return nil
}

// monitorPair is MonitorPair on the socket.
func (s *Socket) monitorPair(ctx *zmq4.Context, kind string, events zmq4.Event) (*zmq4.Socket, error) {
	return MonitorPair(ctx, s.Z, kind, events)
}

// MonitorPair attaches a monitor for events to z and returns the PAIR that
// receives them, connected to inproc://ztopo/KIND/N; on error the monitor
// is detached again. End it with StopMonitor, never by closing the PAIR.
func MonitorPair(ctx *zmq4.Context, z *zmq4.Socket, kind string, events zmq4.Event) (*zmq4.Socket, error) {
	addr := fmt.Sprintf("inproc://ztopo/%s/%d", kind, monSeq.Add(1))
	if err := z.Monitor(addr, events); err != nil {
		return nil, err
	}
	mon, err := ctx.NewSocket(zmq4.PAIR)
	if err != nil {
		_ = z.Monitor("", 0)
		return nil, err
	}
	_ = mon.SetLinger(0)
	if err := mon.Connect(addr); err != nil {
		_ = mon.Close()
		_ = z.Monitor("", 0)
		return nil, err
	}
	return mon, nil
}

// StopMonitor detaches z's monitor, then closes mon, the PAIR MonitorPair
// returned; it comes before z is closed. libzmq's I/O thread sends each
// event on the monitor with a blocking send, also while z's connections
// wind down after its close: with mon closed first, that send waits for a
// reader for ever, and with it the I/O thread, so that every tcp and ipc
// socket of the context stops moving messages (seen: a plugin host whose
// swap had failed never read its running plugin's answers again).
func StopMonitor(z, mon *zmq4.Socket) {
	_ = z.Monitor("", 0)
	_ = mon.Close()
}

// Monitor returns the socket receiving handshake events while some connect
// is pending (to poll alongside others), or nil.
func (s *Socket) Monitor() *zmq4.Socket { return s.mon }

// Pending lists tcp/ipc connect endpoints that have not completed a handshake.
func (s *Socket) Pending() []string {
	out := make([]string, 0, len(s.pending))
	for ep := range s.pending {
		out = append(out, ep)
	}
	return out
}

// ReadMonitor consumes the events waiting on Monitor (without blocking) and
// reports whether every connect has now completed its handshake; the monitor
// is then detached.
func (s *Socket) ReadMonitor() (done bool, err error) {
	if s.mon == nil {
		return true, nil
	}
	for {
		ev, addr, _, err := s.mon.RecvEvent(zmq4.DONTWAIT)
		if err != nil {
			if IsAgain(err) {
				break
			}
			return false, err
		}
		if ev == zmq4.EVENT_HANDSHAKE_SUCCEEDED {
			delete(s.pending, addr)
		}
	}
	if len(s.pending) == 0 {
		s.stopWatching()
		return true, nil
	}
	return false, nil
}

// Unwatch detaches the handshake monitor, if any; a node does so once its
// sync barrier is passed.
func (s *Socket) Unwatch() { s.stopWatching() }

// stopWatching detaches the monitor before its receiver closes: a monitor
// left attached at context termination crashes libzmq (pebbe's warning).
func (s *Socket) stopWatching() {
	if s.mon == nil {
		return
	}
	StopMonitor(s.Z, s.mon)
	s.mon = nil
}

// SeesSubscriptions reports whether the socket is a PUB opened with
// Options.SeeSubscriptions.
func (s *Socket) SeesSubscriptions() bool { return s.seesSubs }

// TakeSubscriptions reads, without waiting, the subscription messages that
// reached a socket opened with Options.SeeSubscriptions, and returns how
// many there were.
func (s *Socket) TakeSubscriptions() (int, error) {
	if !s.seesSubs {
		return 0, nil
	}
	n := 0
	for {
		if _, err := s.Z.RecvBytes(zmq4.DONTWAIT); err != nil {
			if IsAgain(err) {
				return n, nil
			}
			if IsInterrupted(err) {
				continue
			}
			return n, err
		}
		n++
	}
}

// Linger is the socket's configured linger (DefaultLinger unless the spec's
// options set one).
func (s *Socket) Linger() time.Duration { return s.linger }

// Close closes the socket with its configured linger.
func (s *Socket) Close() error { return s.CloseLinger(s.linger) }

// CloseLinger closes the socket with linger d: a node that completed closes
// its sockets with a drain linger so that its last messages still reach
// their peers after it has gone.
func (s *Socket) CloseLinger(d time.Duration) error {
	if s == nil || s.Z == nil {
		return nil
	}
	s.stopWatching()
	s.stopAuthMonitor()
	s.stopPeerMonitor()
	s.Guard.Close()
	if d < 0 {
		d = -1
	}
	_ = s.Z.SetLinger(d)
	err := s.Z.Close()
	s.Z = nil
	return err
}

// Recv receives one multipart message, counting it. With zmq4.DONTWAIT it
// returns an error satisfying IsAgain when nothing is waiting.
func (s *Socket) Recv(flags zmq4.Flag) ([][]byte, error) {
	return s.RecvInto(nil, flags)
}

// RecvInto is Recv appending the frames to dst[:0], so that a caller that
// is done with the previous message before the next can reuse one slice
// (a message of one frame then allocates only its frame). The frames
// themselves are always new.
func (s *Socket) RecvInto(dst [][]byte, flags zmq4.Flag) ([][]byte, error) {
	first, more, err := s.recvFrame(flags)
	if err != nil {
		return nil, err
	}
	n := len(first)
	msg := append(dst[:0], first)
	for more {
		// The rest of a multipart message is already here: ZeroMQ delivers
		// messages atomically, so a blocking read cannot wait.
		var b []byte
		b, more, err = s.recvFrame(0)
		for IsInterrupted(err) {
			b, more, err = s.recvFrame(0)
		}
		if err != nil {
			return nil, err
		}
		n += len(b)
		msg = append(msg, b)
	}
	s.Stats.msgsIn.Add(1)
	s.Stats.bytesIn.Add(uint64(n))
	if ts := s.Stats.taps.Load(); ts != nil {
		env, body := s.SplitEnvelope(msg)
		ts.copy(false, env, body)
	}
	return msg, nil
}

// Send sends frames as one multipart message, counting it; the flags apply
// to the first frame (a message accepted at its first frame is accepted
// whole). An empty message sends nothing.
func (s *Socket) Send(frames [][]byte, flags zmq4.Flag) error {
	return s.SendEnvelope(nil, frames, flags)
}

// SendEnvelope sends env followed by body as one message: a reply with the
// routing envelope restored, without building a joined slice.
func (s *Socket) SendEnvelope(env, body [][]byte, flags zmq4.Flag) error {
	total := len(env) + len(body)
	if total == 0 {
		return nil
	}
	z := s.Z
	n, i := 0, 0
	for _, part := range [2][][]byte{env, body} {
		for _, f := range part {
			i++
			fl := flags
			if i > 1 {
				fl &^= zmq4.DONTWAIT
			}
			if i < total {
				fl |= zmq4.SNDMORE
			}
			if _, err := z.SendBytes(f, fl); err != nil {
				if i > 1 || !IsAgain(err) {
					s.Stats.sendErrors.Add(1)
				}
				return err
			}
			n += len(f)
		}
	}
	s.Stats.msgsOut.Add(1)
	s.Stats.bytesOut.Add(uint64(n))
	if ts := s.Stats.taps.Load(); ts != nil {
		ts.copy(true, env, body)
	}
	return nil
}

// CountSendError counts a message the caller gave up on (a send that would
// have blocked past a deadline).
func (s *Socket) CountSendError() { s.Stats.sendErrors.Add(1) }

type envKind uint8

const (
	envNone   envKind = iota
	envRouter         // identity frame, then up to and including the first empty frame
	envDealer         // up to and including the first empty frame, if any
)

func envelopeOf(t zmq4.Type) envKind {
	switch t {
	case zmq4.ROUTER, zmq4.STREAM:
		return envRouter
	case zmq4.DEALER, zmq4.REQ:
		return envDealer
	}
	return envNone
}

// SplitEnvelope splits a received message into its routing envelope and the
// body a handler sees; both share frames' backing array.
func (s *Socket) SplitEnvelope(frames [][]byte) (env, body [][]byte) {
	return splitEnvelope(s.env, frames)
}

func splitEnvelope(k envKind, frames [][]byte) (env, body [][]byte) {
	start := 0
	switch k {
	case envNone:
		return nil, frames
	case envRouter:
		if len(frames) == 0 {
			return nil, frames
		}
		start = 1
	}
	for i := start; i < len(frames); i++ {
		if len(frames[i]) == 0 {
			return frames[: i+1 : i+1], frames[i+1:]
		}
	}
	return frames[:start:start], frames[start:]
}

// HasEnvelope reports whether the socket type carries routing envelopes.
func (s *Socket) HasEnvelope() bool { return s.env != envNone }

// IsAgain reports whether err means "would block" (EAGAIN): nothing to
// receive, or no room to send, right now.
func IsAgain(err error) bool {
	return err != nil && zmq4.AsErrno(err) == zmq4.Errno(syscall.EAGAIN)
}

// IsAddrInUse reports whether err, or an error it wraps, is a bind on an
// address in use (EADDRINUSE).
func IsAddrInUse(err error) bool {
	var eno zmq4.Errno
	if errors.As(err, &eno) && eno == zmq4.EADDRINUSE {
		return true
	}
	var sno syscall.Errno
	return errors.As(err, &sno) && zmq4.Errno(sno) == zmq4.EADDRINUSE
}

// IsTerm reports whether err means the context was terminated.
func IsTerm(err error) bool {
	return err != nil && zmq4.AsErrno(err) == zmq4.ETERM
}

// IsInterrupted reports whether err is EINTR (a signal arrived during a
// blocking call); callers retry.
func IsInterrupted(err error) bool {
	return err != nil && zmq4.AsErrno(err) == zmq4.Errno(syscall.EINTR)
}

var zmqTypes = map[spec.SocketType]zmq4.Type{
	spec.PAIR:   zmq4.PAIR,
	spec.PUB:    zmq4.PUB,
	spec.SUB:    zmq4.SUB,
	spec.REQ:    zmq4.REQ,
	spec.REP:    zmq4.REP,
	spec.DEALER: zmq4.DEALER,
	spec.ROUTER: zmq4.ROUTER,
	spec.PULL:   zmq4.PULL,
	spec.PUSH:   zmq4.PUSH,
	spec.XPUB:   zmq4.XPUB,
	spec.XSUB:   zmq4.XSUB,
	spec.STREAM: zmq4.STREAM,
}

// Type returns the pebbe/zmq4 type of a spec socket type.
func Type(t spec.SocketType) (zmq4.Type, bool) {
	z, ok := zmqTypes[t]
	return z, ok
}

// AddProxied counts messages that libzmq's proxy moved through the socket
// (its STATISTICS): the proxy receives and sends them without this
// package's Recv and Send.
func (st *Stats) AddProxied(msgsIn, bytesIn, msgsOut, bytesOut uint64) {
	st.msgsIn.Add(msgsIn)
	st.bytesIn.Add(bytesIn)
	st.msgsOut.Add(msgsOut)
	st.bytesOut.Add(bytesOut)
}

// Library describes the linked libzmq, for `ztopo version`.
type Library struct {
	Version         string // "4.3.4"
	Curve, IPC, PGM bool   // capabilities
}

// LinkedLibrary reports the version and capabilities of the libzmq in use.
func LinkedLibrary() Library {
	major, minor, patch := zmq4.Version()
	return Library{
		Version: fmt.Sprintf("%d.%d.%d", major, minor, patch),
		Curve:   zmq4.HasCurve(),
		IPC:     zmq4.HasIpc(),
		PGM:     zmq4.HasPgm(),
	}
}
