package spec

import (
	"fmt"
	"sort"
	"sync"
)

// ValueKind is the type of a handler config value.
type ValueKind int

const (
	KindInt      ValueKind = iota + 1 // Go int; written 42
	KindString                        // Go string; any scalar, taken as text
	KindBool                          // Go bool; true or false
	KindDuration                      // Go time.Duration; "250ms", "5s", "1m", or an integer of milliseconds
	KindStrings                       // Go []string; a list of scalars
	KindFloat                         // Go float64; 1.5 or 2
)

func (k ValueKind) String() string {
	switch k {
	case KindInt:
		return "an integer"
	case KindString:
		return "a string"
	case KindBool:
		return "true or false"
	case KindDuration:
		return "a duration"
	case KindStrings:
		return "a list of strings"
	case KindFloat:
		return "a number"
	}
	return "unknown kind"
}

// ConfigKey is one key a handler's config accepts. Integer and duration
// values of builtin handlers must not be negative.
type ConfigKey struct {
	Name string
	Kind ValueKind
	Doc  string
}

// HandlerSchema describes a builtin handler: what its config accepts and
// which sockets it drives by name. The package that implements a builtin
// registers its schema together with its factory (see RegisterBuiltin).
type HandlerSchema struct {
	Name        string
	Keys        []ConfigKey // sorted by Name
	NeedSockets []string    // socket names the handler requires, sorted
	// SocketTypes constrains the type of some needed sockets.
	SocketTypes map[string]SocketType
	// Reactive: the handler answers messages one at a time, so its node
	// may be a worker of a reliable broker (WorkerKeys).
	Reactive bool
	// Relay: the handler's only effect is what it sends on, so a message
	// that reaches it matters only if what it sends reaches a node that
	// still does something with it (the engine's drain at shutdown). A
	// reactive relay sends one message for each it receives: what it
	// received and did not send, it held (counted when it crashes).
	Relay bool
	// Opaque: its messages pass inside libzmq, unseen by ztopo, so its
	// sockets cannot be tapped and their counters stay at 0.
	Opaque bool
	// ExpectIn and ExpectOut name the config keys, if any, holding how many
	// messages the handler receives, or sends, before it completes.
	ExpectIn, ExpectOut string
	// Source: the handler sends on its own from the start, not in answer
	// to messages, so on a PUB or XPUB socket the resolver warns of what
	// subscribers lose: the first messages, when the node has no sync, and
	// all beyond the send high-water mark, when ExpectOut messages are
	// sent as fast as they go (Pace unset).
	Source bool
	// Pace names the config key, if any, of a source's pause between
	// messages.
	Pace string
	// WorkerProtocol is, by socket, the protocol a DEALER connected to it
	// must speak as a worker: the broker's backend or frontend.
	WorkerProtocol map[string]WorkerProtocol
	// Broker: the handler is the centre of a pattern, between a frontend
	// and a backend; spec/graph draws it so.
	Broker bool
	// Check, if set, judges what Keys cannot: keys that exclude each
	// other, a value from a set of words, a file to read. The resolver
	// calls it for each node instance whose config is a map, after it
	// checked and converted the keys.
	Check func(*ConfigCheck)
	Doc   string
}

// Key returns the config key named name.
func (h HandlerSchema) Key(name string) (ConfigKey, bool) {
	for _, k := range h.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return ConfigKey{}, false
}

// builtins holds the registered schemas of the builtin handlers by name.
var builtins = struct {
	sync.RWMutex
	m map[string]HandlerSchema
}{m: map[string]HandlerSchema{}}

// RegisterBuiltin adds the schema of a builtin handler, which the resolver
// then accepts as `handler: NAME` and checks the config of. This package
// knows no builtin by itself: runtime/handler/builtin registers each one in
// its init, with its factory in the same call, so a program that validates
// or runs topologies imports that package. It panics on an empty or
// duplicate name, a programming error found at start-up.
func RegisterBuiltin(h HandlerSchema) {
	if h.Name == "" {
		panic("spec: RegisterBuiltin with an empty name")
	}
	builtins.Lock()
	defer builtins.Unlock()
	if _, dup := builtins.m[h.Name]; dup {
		panic(fmt.Sprintf("spec: duplicate registration of builtin %q", h.Name))
	}
	builtins.m[h.Name] = h
}

// BuiltinHandlers returns the schemas of the registered builtin handlers,
// sorted by name.
func BuiltinHandlers() []HandlerSchema {
	builtins.RLock()
	defer builtins.RUnlock()
	hs := make([]HandlerSchema, 0, len(builtins.m))
	for _, h := range builtins.m {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs
}

// builtinHandler returns the schema named name.
func builtinHandler(name string) (HandlerSchema, bool) {
	builtins.RLock()
	defer builtins.RUnlock()
	h, ok := builtins.m[name]
	return h, ok
}

func builtinNames() []string {
	var names []string
	for _, h := range BuiltinHandlers() {
		names = append(names, h.Name)
	}
	return names
}

// noBuiltins is the hint for a program that registered no builtin.
const noBuiltins = "this program registered no builtin handlers: it must import github.com/ztopo/ztopo/runtime/handler/builtin"

// hostSchemas are what the config of `handler: {exec: [...]}`, `{plugin:
// ...}` and `{wasm: ...}` accepts: the host reads these keys; the child,
// plugin or module itself gets no config (format version 1). Wasm's say
// what of the host the module may see (nothing by default).
var hostSchemas = map[HandlerKind]HandlerSchema{
	HandlerExec: {Name: "exec", Keys: []ConfigKey{
		{Name: "drop", Kind: KindString, Doc: "the output line that drops its message (a filter); default: none"},
		{Name: "max_line", Kind: KindInt, Doc: "longest output line in bytes; a longer one restarts the child (default 1048576)"},
		{Name: "timeout", Kind: KindDuration, Doc: "a child holding messages that answers none for this long is restarted (default 10s)"},
	}},
	HandlerPlugin: {Name: "plugin", Keys: []ConfigKey{
		{Name: "inflight", Kind: KindInt, Doc: "requests held by the plugin at once"},
		{Name: "max_message", Kind: KindInt, Doc: "largest message the plugin may send, in bytes (default 67108864)"},
		{Name: "timeout", Kind: KindDuration, Doc: "how long one request may take before it is reported lost"},
	}},
	HandlerWasm: {Name: "wasm", Keys: []ConfigKey{
		{Name: "clock", Kind: KindBool, Doc: "the real clocks and sleep (default: a fixed clock)"},
		{Name: "dirs", Kind: KindStrings, Doc: "HOST:GUEST directories the module may read (HOST relative to the file)"},
		{Name: "env", Kind: KindStrings, Doc: "KEY=value environment variables for the module"},
		{Name: "memory", Kind: KindString, Doc: "memory limit, e.g. 64MiB (the default)"},
		{Name: "random", Kind: KindBool, Doc: "the system's random source (default: a fixed one)"},
		{Name: "timeout", Kind: KindDuration, Doc: "how long one message may run before it fails (default 1s)"},
	}},
}

// OptionKind is how a socket option's value is written and stored in
// Option.Value.
type OptionKind int

const (
	OptInt      OptionKind = iota + 1 // int
	OptDuration                       // int milliseconds; written 250ms, 5s or a plain integer of ms
	OptBool                           // int 0 or 1; written true/false (or 1/0)
	OptBytes                          // string
)

func (k OptionKind) String() string {
	switch k {
	case OptInt:
		return "an integer"
	case OptDuration:
		return "a duration"
	case OptBool:
		return "true or false"
	case OptBytes:
		return "a string"
	}
	return "unknown kind"
}

// socketOptions are the options known by name. "identity" is an alias of
// routing_id; both end up in Socket.Identity, never in Socket.Options.
var socketOptions = map[string]OptionKind{
	"affinity":            OptInt,
	"backlog":             OptInt,
	"conflate":            OptBool,
	"connect_timeout":     OptDuration,
	"handshake_ivl":       OptDuration,
	"heartbeat_ivl":       OptDuration,
	"heartbeat_timeout":   OptDuration,
	"heartbeat_ttl":       OptDuration,
	"identity":            OptBytes,
	"immediate":           OptBool,
	"invert_matching":     OptBool,
	"ipv6":                OptBool,
	"linger":              OptDuration,
	"maxmsgsize":          OptInt,
	"multicast_hops":      OptInt,
	"probe_router":        OptBool,
	"rate":                OptInt,
	"rcvbuf":              OptInt,
	"rcvhwm":              OptInt,
	"rcvtimeo":            OptDuration,
	"reconnect_ivl":       OptDuration,
	"reconnect_ivl_max":   OptDuration,
	"recovery_ivl":        OptDuration,
	"req_correlate":       OptBool,
	"req_relaxed":         OptBool,
	"router_handover":     OptBool,
	"router_mandatory":    OptBool,
	"routing_id":          OptBytes,
	"sndbuf":              OptInt,
	"sndhwm":              OptInt,
	"sndtimeo":            OptDuration,
	"tcp_keepalive":       OptInt,
	"tcp_keepalive_cnt":   OptInt,
	"tcp_keepalive_idle":  OptInt,
	"tcp_keepalive_intvl": OptInt,
	"tos":                 OptInt,
	"xpub_nodrop":         OptBool,
	"xpub_verbose":        OptBool,
	"xpub_welcome_msg":    OptBytes,
}

// wideOptions take 64-bit values in libzmq; the others are C ints.
var wideOptions = map[string]bool{"affinity": true, "maxmsgsize": true}

// SocketOptions returns the socket options known by name (libzmq's names
// without ZMQ_, lower case) and their kinds. The map is a fresh copy.
func SocketOptions() map[string]OptionKind {
	m := make(map[string]OptionKind, len(socketOptions))
	for k, v := range socketOptions {
		m[k] = v
	}
	return m
}

// compatible lists, for each socket type, the types it may talk to (the
// ZMTP compatibility table). libzmq refuses a mismatch over tcp and ipc at
// handshake time but not over inproc, and then only in a log nobody sees.
var compatible = map[SocketType][]SocketType{
	REQ:    {REP, ROUTER},
	REP:    {REQ, DEALER},
	DEALER: {REP, DEALER, ROUTER},
	ROUTER: {REQ, DEALER, ROUTER},
	PUB:    {SUB, XSUB},
	XPUB:   {SUB, XSUB},
	SUB:    {PUB, XPUB},
	XSUB:   {PUB, XPUB},
	PUSH:   {PULL},
	PULL:   {PUSH},
	PAIR:   {PAIR},
	STREAM: nil, // raw TCP peers only
}

// DefaultRole is the role of a socket type when the file sets none (PULL,
// SUB, XSUB: in; PUSH, PUB, XPUB: out; the rest inout). The resolver sets
// Socket.Role from it once; nothing else decides a default role.
func DefaultRole(t SocketType) Role {
	switch t {
	case PULL, SUB, XSUB:
		return RoleIn
	case PUSH, PUB, XPUB:
		return RoleOut
	}
	return RoleInOut
}
