package builtin

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// Forward passes each message on unchanged: to the out sockets from an in
// socket, back to the sender from an inout one (which makes it echo).
type Forward struct {
	Delay time.Duration
}

var _ handler.Handler = (*Forward)(nil)

// Handle returns the message after the configured delay.
func (f *Forward) Handle(ctx context.Context, m handler.Msg) ([][]byte, error) {
	if err := sleep(ctx, f.Delay); err != nil {
		return nil, err
	}
	return m.Frames, nil
}

// delayKey is the config of echo, forward and upper.
var delayKey = spec.ConfigKey{Name: "delay", Kind: spec.KindDuration, Doc: "simulated work: a pause before each message is answered or passed on"}

// registerDelayed registers a reactive relay whose only config is delayKey
// (echo, forward, upper); build makes it with the delay.
func registerDelayed(s spec.HandlerSchema, build func(delay time.Duration) any) {
	s.Reactive, s.Relay, s.Keys = true, true, []spec.ConfigKey{delayKey}
	register(s, func(cfg map[string]any, _ handler.Env) (any, error) {
		c := newConfig(s.Name, cfg)
		h := build(c.duration("delay"))
		return h, c.err()
	})
}

func newForward(delay time.Duration) any { return &Forward{Delay: delay} }

func init() {
	registerDelayed(spec.HandlerSchema{
		Name: "forward",
		Doc:  "sends each message from an in socket, unchanged, to the out sockets",
	}, newForward)
	// echo and forward behave alike: the node sends the result back on
	// inout sockets and on to out sockets for in sockets.
	registerDelayed(spec.HandlerSchema{
		Name: "echo",
		Doc:  "answers each request with the same frames; on in sockets, forwards like forward",
	}, newForward)
}

// Upper upper-cases the ASCII letters of a message's last frame.
type Upper struct {
	Delay time.Duration
}

var _ handler.Handler = (*Upper)(nil)

// Handle upper-cases in place: the frames are the handler's to change.
func (u *Upper) Handle(ctx context.Context, m handler.Msg) ([][]byte, error) {
	if err := sleep(ctx, u.Delay); err != nil {
		return nil, err
	}
	if len(m.Frames) > 0 {
		last := m.Frames[len(m.Frames)-1]
		for i, b := range last {
			if 'a' <= b && b <= 'z' {
				last[i] = b - 'a' + 'A'
			}
		}
	}
	return m.Frames, nil
}

func init() {
	registerDelayed(spec.HandlerSchema{
		Name: "upper",
		Doc:  "like echo/forward, with the ASCII letters of the last frame upper-cased",
	}, func(delay time.Duration) any { return &Upper{Delay: delay} })
}

// Log logs every message and passes it on.
type Log struct {
	Logger hclog.Logger
}

var _ handler.Handler = (*Log)(nil)

// Handle logs the frames quoted, so binary frames stay readable.
func (l *Log) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	l.Logger.Info("message", "socket", m.Socket, "frames", fmt.Sprintf("%q", m.Frames))
	return m.Frames, nil
}

func init() {
	register(spec.HandlerSchema{Name: "log", Reactive: true, Doc: "logs every message, frames shown binary-safe"}, newLog)
}

func newLog(cfg map[string]any, env handler.Env) (any, error) {
	c := newConfig("log", cfg)
	return &Log{Logger: logger(env)}, c.err()
}

// Count counts messages and completes at Expect or at Until.
type Count struct {
	Expect   int    // 0: no limit
	Until    string // "": none
	HasUntil bool
	// Dedupe counts distinct messages of at-least-once edges (by
	// handler.Msg.ID): a copy sent again is counted as a duplicate only.
	Dedupe bool
	Logger hclog.Logger

	seen map[string]struct{}
	dups int

	n        int
	first    time.Time
	last     time.Time
	reported bool
}

var (
	_ handler.Handler   = (*Count)(nil)
	_ handler.Completer = (*Count)(nil)
	_ handler.Closer    = (*Count)(nil)
)

// Completes reports whether the count has a limit.
func (c *Count) Completes() bool { return c.Expect > 0 || c.HasUntil }

// N is how many messages were counted.
func (c *Count) N() int { return c.n }

// stampEvery is how often (in messages) Count reads the clock between the
// first message and the last: time.Now per message was 6 % of a sink's CPU.
// A count stopped before it completed reports D up to the last stamp, at
// most stampEvery-1 messages short of its last message.
const stampEvery = 64

// Handle counts one message; it sends nothing on.
func (c *Count) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	if c.HasUntil && len(m.Frames) > 0 && string(m.Frames[len(m.Frames)-1]) == c.Until {
		now := time.Now()
		if c.first.IsZero() {
			c.first = now
		}
		c.last = now
		c.report()
		return nil, handler.ErrDone
	}
	if c.Dedupe && m.ID != nil {
		if c.seen == nil {
			c.seen = map[string]struct{}{}
		}
		if _, dup := c.seen[string(m.ID)]; dup {
			c.dups++
			return nil, nil
		}
		c.seen[string(m.ID)] = struct{}{}
	}
	c.n++
	if c.Expect > 0 && c.n >= c.Expect {
		now := time.Now()
		if c.n == 1 {
			c.first = now
		}
		c.last = now
		c.report()
		return nil, handler.ErrDone
	}
	if c.n == 1 || c.n%stampEvery == 0 {
		c.last = time.Now()
		if c.n == 1 {
			c.first = c.last
		}
	}
	return nil, nil
}

// Discarding lets the node count messages without receiving them into Go
// (handler.Discarder) when nothing but their number matters: no until, no
// dedupe.
func (c *Count) Discarding() (ok bool, limit int) {
	if c.HasUntil || c.Dedupe {
		return false, 0
	}
	if c.Expect > 0 {
		return true, c.Expect - c.n
	}
	return true, 0
}

// Discarded counts n messages the node took for it.
func (c *Count) Discarded(n int, first, last time.Time) (done bool) {
	if c.n == 0 {
		c.first = first
	}
	c.n += n
	c.last = last
	if c.Expect > 0 && c.n >= c.Expect {
		c.report()
		return true
	}
	return false
}

// Close reports the count of a node stopped before it completed.
func (c *Count) Close(context.Context) error {
	if !c.reported && c.n > 0 {
		c.report()
	}
	return nil
}

func (c *Count) report() {
	c.reported = true
	d := c.last.Sub(c.first)
	rate := 0.0
	if d > 0 {
		rate = float64(c.n) / d.Seconds()
	}
	d = d.Round(time.Microsecond)
	if c.Dedupe {
		c.Logger.Info(fmt.Sprintf("received %d messages in %v (%.0f msg/s), %d duplicates", c.n, d, rate, c.dups),
			"count", c.n, "elapsed", d, "rate", int64(rate), "duplicates", c.dups)
		return
	}
	c.Logger.Info(fmt.Sprintf("received %d messages in %v (%.0f msg/s)", c.n, d, rate),
		"count", c.n, "elapsed", d, "rate", int64(rate))
}

// Duplicates is how many copies of messages already counted came (Dedupe).
func (c *Count) Duplicates() int { return c.dups }

func init() {
	register(spec.HandlerSchema{
		Name:     "count",
		Reactive: true,
		ExpectIn: "expect",
		Doc:      "counts messages; completes at expect messages or when the last frame equals until; logs the rate",
		Keys: []spec.ConfigKey{
			{Name: "dedupe", Kind: spec.KindBool, Doc: "count distinct messages of at-least-once edges; copies sent again are reported as duplicates"},
			{Name: "expect", Kind: spec.KindInt, Doc: "complete after this many messages"},
			{Name: "until", Kind: spec.KindString, Doc: "complete when a message's last frame equals this text"},
		},
	}, newCount)
}

func newCount(cfg map[string]any, env handler.Env) (any, error) {
	c := newConfig("count", cfg)
	k := &Count{Expect: c.int("expect", 0), Dedupe: c.bool("dedupe"), Logger: logger(env)}
	if c.has("until") {
		k.Until, k.HasUntil = c.string("until", ""), true
	}
	return k, c.err()
}

// Passthrough lets the node run a forward without a delay, between one
// receiving and one sending socket, as libzmq's own proxy (handler.Passthrough).
func (f *Forward) Passthrough() bool { return f.Delay == 0 }
