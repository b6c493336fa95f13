// Package builtin holds the builtin handlers of SPEC §1. Each registers its
// config schema (spec.BuiltinHandlers) and its factory (handler.Builtins) in
// one call, so a program that validates or runs topologies imports this
// package, blank if need be. The builtins:
//
//	forward   each message from an in socket, unchanged, to the out sockets;
//	          config: delay (simulated work per message). Without a delay,
//	          between one PULL/SUB and one PUSH/PUB socket, the node runs it
//	          as libzmq's proxy (handler.Passthrough)
//	echo      each request answered with the same frames; on in sockets it
//	          forwards like forward; config: delay
//	upper     like echo/forward with the ASCII letters of the last frame
//	          upper-cased; config: delay
//	log       logs every message (frames shown %q, binary-safe) at info and
//	          passes it on like forward
//	count     a sink: counts messages and sends nothing on (a REP or REQ
//	          worker answers one empty frame); completes at `expect` messages
//	          or at a message whose last frame equals `until` (that message
//	          is not counted); logs "received N messages in D (R msg/s)",
//	          D measured from the first message (the clock is read at the
//	          first, every 64th and the last message); without expect or until it
//	          never completes and logs the line when stopped
//	generate  a Runner: sends `count` messages (absent: forever) to every
//	          out and inout socket, then the `end` payload if set, then
//	          completes. The body is `payload` (text) or `size` bytes of 'x';
//	          default payload "hello". With `topics`, each message is
//	          [topic, body], topics taken round robin, and `end` is sent as
//	          [topic, end] once per topic (what zguide subscribers filtering
//	          by topic wait for); without topics `end` is one frame. `interval`
//	          pauses between messages. On a REQ socket it is a client: each
//	          request waits for its reply before the next is sent.
//	proxy     zmq_proxy_steerable between `frontend` and `backend`, with an
//	          optional `capture` socket: queue (ROUTER/DEALER), forwarder
//	          (XSUB/XPUB) or streamer (PULL/PUSH), by the types given. The
//	          node's control socket is the proxy's: TERMINATE stops it.
//	          Messages pass inside libzmq, so its socket counters stay at 0.
//	replay    a Runner: sends the messages of a capture file (ztopo tap
//	          --record) from its out sockets at the recorded pace times
//	          `speed` (or `max`), once or in a `loop`, then completes.
//	lbbroker  the zguide load-balancing broker between ROUTER `frontend`
//	          (clients) and ROUTER `backend` (workers announcing READY).
//
// delay is simulated work: the handler sleeps, stoppably, before answering.
package builtin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// register adds a builtin in one call to both registries: its schema to
// spec's, which the resolver checks `handler: NAME` and its config against,
// and its factory to handler.Builtins, which the engine builds it with. Each
// builtin calls it in an init next to its factory, so that adding one
// touches this package only.
func register(s spec.HandlerSchema, f handler.Factory) {
	spec.RegisterBuiltin(s)
	handler.Builtins.Register(s.Name, f)
}

// config reads a handler's config: values come typed from spec (int,
// string, time.Duration, []string), and every key must be used, so a key
// the handler does not know is an error even when the config was built by
// hand rather than by spec.
type config struct {
	name string
	m    map[string]any
	used map[string]bool
	errs []string
}

func newConfig(name string, m map[string]any) *config {
	return &config{name: name, m: m, used: map[string]bool{}}
}

func (c *config) has(key string) bool {
	_, ok := c.m[key]
	return ok
}

func (c *config) get(key string) (any, bool) {
	v, ok := c.m[key]
	if ok {
		c.used[key] = true
	}
	return v, ok
}

func (c *config) bad(key string, want string, v any) {
	c.errs = append(c.errs, fmt.Sprintf("%s: want %s, got %T", key, want, v))
}

func (c *config) int(key string, def int) int {
	v, ok := c.get(key)
	if !ok {
		return def
	}
	switch n := v.(type) {
	case int:
		if n < 0 {
			c.errs = append(c.errs, fmt.Sprintf("%s: must not be negative, got %d", key, n))
		}
		return n
	case int64:
		return int(n)
	}
	c.bad(key, "an integer", v)
	return def
}

// typed is key's value when it is a T, def when key is absent; a value of
// another type is reported as not want.
func typed[T any](c *config, key, want string, def T) T {
	v, ok := c.get(key)
	if !ok {
		return def
	}
	if x, ok := v.(T); ok {
		return x
	}
	c.bad(key, want, v)
	return def
}

func (c *config) string(key, def string) string { return typed(c, key, "a string", def) }

func (c *config) bool(key string) bool { return typed(c, key, "true or false", false) }

func (c *config) duration(key string) time.Duration {
	v, ok := c.get(key)
	if !ok {
		return 0
	}
	switch d := v.(type) {
	case time.Duration:
		return d
	case int:
		return time.Duration(d) * time.Millisecond
	}
	c.bad(key, "a duration", v)
	return 0
}

func (c *config) strings(key string) []string {
	v, ok := c.get(key)
	if !ok {
		return nil
	}
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				c.bad(key, "a list of strings", v)
				return nil
			}
			out[i] = s
		}
		return out
	}
	c.bad(key, "a list of strings", v)
	return nil
}

// err reports bad values and unknown keys.
func (c *config) err() error {
	var unknown []string
	for k := range c.m {
		if !c.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		c.errs = append(c.errs, fmt.Sprintf("unknown config key %q", k))
	}
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", c.name, strings.Join(c.errs, "; "))
}

// logger is the node's logger, or one that discards when the builtin is
// built without one (tests, a handler made by hand).
func logger(env handler.Env) hclog.Logger {
	if env.Logger == nil {
		return hclog.NewNullLogger()
	}
	return env.Logger
}

// sleep pauses d, returning early with ctx's error when the node stops.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// unpaced is how many messages a source sends without a pause before it
// looks whether the node stops: sends that never block never look at the
// control socket.
const unpaced = 1024

// stopped is ctx's error at every unpaced-th of a source's unpaced sends
// (i counts them from 0), nil at the others.
func stopped(ctx context.Context, i int) error {
	if i%unpaced != unpaced-1 {
		return nil
	}
	return ctx.Err()
}
