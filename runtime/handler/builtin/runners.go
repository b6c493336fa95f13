package builtin

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// repeatChunk is how many messages generate hands libzmq in one call when
// they are all alike: between chunks it looks whether the node stops.
const repeatChunk = 1024

// DefaultPayload is what generate sends without payload or size.
const DefaultPayload = "hello"

// Generate sends Count messages (Forever: no limit), then End, then completes.
type Generate struct {
	Count    int
	Forever  bool
	Body     []byte
	Topics   [][]byte
	Interval time.Duration
	End      []byte
	HasEnd   bool
	Logger   hclog.Logger

	sent, replies int
}

var (
	_ handler.Runner    = (*Generate)(nil)
	_ handler.Completer = (*Generate)(nil)
)

// Completes reports whether a count was given.
func (g *Generate) Completes() bool { return !g.Forever }

// Produces says that generate originates its messages (handler.Producer).
func (g *Generate) Produces() bool { return true }

// Sent is how many messages (not counting end) were sent to each socket.
func (g *Generate) Sent() int { return g.sent }

func (g *Generate) Run(ctx context.Context, s handler.Sockets) error {
	var outs, clients []string
	for _, name := range s.Names() {
		sp := s.Spec(name)
		role := sp.EffectiveRole()
		switch {
		case sp.Type == spec.REQ && role == spec.RoleInOut:
			clients = append(clients, name)
		case role == spec.RoleOut || role == spec.RoleInOut:
			outs = append(outs, name)
		}
	}
	if len(outs)+len(clients) == 0 {
		return fmt.Errorf("generate: no socket to send on: %w", handler.ErrFatal)
	}
	frames := [][]byte{g.Body}
	if len(g.Topics) > 0 {
		frames = [][]byte{nil, g.Body}
	}
	send := func(fs [][]byte) error {
		for _, name := range outs {
			if err := s.Send(name, fs); err != nil {
				return err
			}
		}
		for _, name := range clients {
			if err := s.Send(name, fs); err != nil {
				return err
			}
			if _, err := s.Recv(name); err != nil {
				return err
			}
			g.replies++
		}
		return nil
	}
	var tick *time.Ticker
	if g.Interval > 0 {
		tick = time.NewTicker(g.Interval)
		defer tick.Stop()
	}
	start := time.Now()
	// Without an interval, topics or replies to wait for, the messages are
	// all alike: they go out in chunks, in a few calls into libzmq.
	if rep, ok := s.(handler.Repeater); ok && tick == nil && len(g.Topics) == 0 && len(clients) == 0 {
		for g.Forever || g.sent < g.Count {
			k := repeatChunk
			if !g.Forever {
				k = min(k, g.Count-g.sent)
			}
			for _, name := range outs {
				if err := rep.SendRepeat(name, frames, k); err != nil {
					return err
				}
			}
			g.sent += k
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	for i := g.sent; g.Forever || i < g.Count; i++ {
		if len(g.Topics) > 0 {
			frames[0] = g.Topics[i%len(g.Topics)]
		}
		if err := send(frames); err != nil {
			return err
		}
		g.sent++
		if tick != nil && (g.Forever || i+1 < g.Count) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		} else if err := stopped(ctx, i); err != nil {
			return err
		}
	}
	if g.HasEnd {
		if len(g.Topics) == 0 {
			if err := send([][]byte{g.End}); err != nil {
				return err
			}
		}
		for _, t := range g.Topics {
			if err := send([][]byte{t, g.End}); err != nil {
				return err
			}
		}
	}
	d := time.Since(start)
	if len(clients) > 0 {
		g.Logger.Info("generated requests", "count", g.sent, "replies", g.replies, "elapsed", d)
	} else {
		g.Logger.Info("generated messages", "count", g.sent, "elapsed", d)
	}
	return nil
}

func init() {
	register(spec.HandlerSchema{
		Name:      "generate",
		ExpectOut: "count",
		Source:    true,
		Pace:      "interval",
		Doc:       "sends count messages (forever without count), then the optional end payload, then completes",
		Keys: []spec.ConfigKey{
			{Name: "count", Kind: spec.KindInt, Doc: "how many messages; absent: forever"},
			{Name: "end", Kind: spec.KindString, Doc: "a final payload sent after count messages (e.g. a sink's until)"},
			{Name: "interval", Kind: spec.KindDuration, Doc: "pause between messages"},
			{Name: "payload", Kind: spec.KindString, Doc: "the message text (exclusive with size)"},
			{Name: "size", Kind: spec.KindInt, Doc: "message size in bytes (exclusive with payload)"},
			{Name: "topics", Kind: spec.KindStrings, Doc: "topic frames, round robin: each message is sent as topic + body"},
		},
		Check: func(c *spec.ConfigCheck) {
			if p, s := c.Written.Get("payload"), c.Written.Get("size"); p != nil && s != nil {
				c.Errorf(s.Pos, "", "generate takes payload or size, not both")
			}
		},
	}, newGenerate)
}

func newGenerate(cfg map[string]any, env handler.Env) (any, error) {
	c := newConfig("generate", cfg)
	g := &Generate{Logger: logger(env)}
	if c.has("count") {
		g.Count = c.int("count", 0)
	} else {
		g.Forever = true
	}
	switch {
	case c.has("payload") && c.has("size"):
		c.get("payload")
		c.get("size")
		c.errs = append(c.errs, "payload and size are exclusive")
	case c.has("size"):
		g.Body = bytes.Repeat([]byte{'x'}, c.int("size", 0))
	default:
		g.Body = []byte(c.string("payload", DefaultPayload))
	}
	for _, t := range c.strings("topics") {
		g.Topics = append(g.Topics, []byte(t))
	}
	g.Interval = c.duration("interval")
	if c.has("end") {
		g.End, g.HasEnd = []byte(c.string("end", "")), true
	}
	return g, c.err()
}

// Proxy runs libzmq's steerable proxy on the node's sockets.
type Proxy struct{}

var _ handler.Runner = (*Proxy)(nil)

func (p *Proxy) Run(ctx context.Context, s handler.Sockets) error {
	front, _ := s.Raw("frontend").(*zmq4.Socket)
	back, _ := s.Raw("backend").(*zmq4.Socket)
	if front == nil || back == nil {
		return fmt.Errorf("proxy: needs sockets named frontend and backend: %w", handler.ErrFatal)
	}
	capture, _ := s.Raw("capture").(*zmq4.Socket)
	c, ok := s.(handler.Controlled)
	if !ok {
		return fmt.Errorf("proxy: the node gives no control socket: %w", handler.ErrFatal)
	}
	ctl, _ := c.Control().(*zmq4.Socket)
	// A streamer (the backend only sends) runs zbatch's proxy, which moves
	// bursts between polls; request-reply and pub-sub brokers, where
	// messages go both ways one at a time, keep libzmq's, whose latency
	// the benchmarks measured.
	proxy := zmq4.ProxySteerable
	if bt := s.Spec("backend").Type; bt == spec.PUSH || bt == spec.PUB {
		proxy = zbatch.Proxy
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		captureName := ""
		if capture != nil {
			captureName = "capture"
		}
		done := c.Proxying("frontend", "backend", captureName)
		// pebbe retries EINTR itself; any error here is real.
		err := proxy(front, back, capture, ctl)
		done()
		if err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
		// TERMINATE arrived. When the node is neither stopping nor swapping
		// it was a stale wake-up: proxy on.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func init() {
	register(spec.HandlerSchema{
		Name:        "proxy",
		Broker:      true,
		Relay:       true,
		Opaque:      true,
		Doc:         "zmq_proxy between frontend and backend, optional capture; steerable so it stops cleanly",
		NeedSockets: []string{"backend", "frontend"},
	}, newProxy)
}

func newProxy(cfg map[string]any, _ handler.Env) (any, error) {
	return &Proxy{}, newConfig("proxy", cfg).err()
}

// LBBroker is the zguide load-balancing broker.
type LBBroker struct {
	Logger hclog.Logger

	workers [][]byte // identities of idle workers, oldest first
}

var (
	_ handler.Runner    = (*LBBroker)(nil)
	_ handler.Inheritor = (*LBBroker)(nil)
)

// Inherit takes over the idle workers of the broker it replaces in a
// handler swap: REQ workers announce READY once, and would otherwise wait
// for a request that never comes.
func (b *LBBroker) Inherit(prev any) {
	if p, ok := prev.(*LBBroker); ok {
		b.workers = append(b.workers[:0], p.workers...)
	}
}

// Idle is the number of workers waiting for a request.
func (b *LBBroker) Idle() int { return len(b.workers) }

var ready = []byte("READY")

// The load-balancing brokers (lbbroker, ppqueue) share their loop: how
// they wait and how a request goes to a worker; what a worker says, and
// when it is idle, is theirs.

// lbBroker is a load-balancing broker's own part of the loop it runs with
// runLB.
type lbBroker interface {
	// Idle is the number of workers waiting for a request.
	Idle() int
	// fromWorker handles one message read from the backend.
	fromWorker(s handler.Sockets, m [][]byte) error
	// takeWorker takes the oldest idle worker off the queue and appends to
	// addr the frames a request is sent behind.
	takeWorker(addr [][]byte) [][]byte
}

var (
	backendOnly = []string{"backend"}
	bothSides   = []string{"backend", "frontend"}
)

// brokerWaiter is the Waiter a broker named kind reads its sockets with;
// the broker needs the sockets named.
func brokerWaiter(s handler.Sockets, kind string, names ...string) (handler.Waiter, error) {
	w, ok := s.(handler.Waiter)
	if !ok {
		return nil, fmt.Errorf("%s: the node's sockets cannot wait: %w", kind, handler.ErrFatal)
	}
	for _, name := range names {
		if s.Spec(name) != nil {
			continue
		}
		if len(names) == 1 {
			return nil, fmt.Errorf("%s: needs a socket named %s: %w", kind, name, handler.ErrFatal)
		}
		return nil, fmt.Errorf("%s: needs sockets named %s: %w", kind, strings.Join(names, " and "), handler.ErrFatal)
	}
	return w, nil
}

// runLB runs the load-balancing broker b, named kind. Each turn waits up
// to wait() (nil: for ever) for the backend and, while workers are idle,
// the frontend: clients are only heard while a worker can take their
// request. A worker's message goes to b, a client's request ([client, "",
// request...]) to the worker b takes; then after, if any, has its turn
// before the loop looks whether the node stops.
func runLB(ctx context.Context, s handler.Sockets, kind string, b lbBroker, wait func() time.Duration, after func(handler.Waiter) error) error {
	w, err := brokerWaiter(s, kind, "frontend", "backend")
	if err != nil {
		return err
	}
	var addr [][]byte
	for {
		timeout := time.Duration(-1)
		if wait != nil {
			timeout = wait()
		}
		names := backendOnly
		if b.Idle() > 0 {
			names = bothSides
		}
		readyNames, err := w.Wait(names, timeout)
		if err != nil {
			return err
		}
		for _, name := range readyNames {
			switch name {
			case "backend":
				m, err := s.Recv("backend")
				if err != nil {
					return err
				}
				if err := b.fromWorker(s, m); err != nil {
					return err
				}
			case "frontend":
				if b.Idle() == 0 {
					continue
				}
				addr = b.takeWorker(addr[:0])
				m, err := s.Recv("frontend")
				if err != nil {
					return err
				}
				out := make([][]byte, 0, len(addr)+len(m))
				out = append(append(out, addr...), m...)
				if err := s.Send("backend", out); err != nil {
					return err
				}
			}
		}
		if after != nil {
			if err := after(w); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// takeOldest removes the first of a broker's idle workers and returns it;
// its slot is cleared so that the queue's array does not keep it.
func takeOldest[W any](workers *[]W) W {
	w := (*workers)[0]
	var zero W
	(*workers)[0] = zero
	*workers = (*workers)[1:]
	return w
}

func (b *LBBroker) Run(ctx context.Context, s handler.Sockets) error {
	return runLB(ctx, s, "lbbroker", b, nil, nil)
}

// fromWorker: [worker, "", READY] or [worker, "", client, "", reply...].
func (b *LBBroker) fromWorker(s handler.Sockets, m [][]byte) error {
	if len(m) < 3 || len(m[1]) != 0 {
		b.Logger.Warn("malformed message from a worker", "frames", fmt.Sprintf("%q", m))
		return nil
	}
	b.workers = append(b.workers, m[0])
	if len(m) == 3 && bytes.Equal(m[2], ready) {
		return nil
	}
	return s.Send("frontend", m[2:])
}

// takeWorker: the oldest idle worker takes a request as [worker, "",
// client, "", request...].
func (b *LBBroker) takeWorker(addr [][]byte) [][]byte {
	return append(addr, takeOldest(&b.workers), nil)
}

func init() {
	register(spec.HandlerSchema{
		Name:        "lbbroker",
		Broker:      true,
		Relay:       true,
		Doc:         "the zguide load-balancing broker: ROUTER frontend for clients, ROUTER backend for READY workers",
		NeedSockets: []string{"backend", "frontend"},
		SocketTypes: map[string]spec.SocketType{"backend": spec.ROUTER, "frontend": spec.ROUTER},
	}, newLBBroker)
}

func newLBBroker(cfg map[string]any, env handler.Env) (any, error) {
	return &LBBroker{Logger: logger(env)}, newConfig("lbbroker", cfg).err()
}
