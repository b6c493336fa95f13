package spec

import "sort"

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
// which sockets it drives by name. The runtime's registry must hold the same
// names (a test there checks it).
type HandlerSchema struct {
	Name        string
	Keys        []ConfigKey // sorted by Name
	NeedSockets []string    // socket names the handler requires, sorted
	// SocketTypes constrains the type of some needed sockets.
	SocketTypes map[string]SocketType
	Doc         string
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

// BuiltinHandlers returns the schemas of the builtin handlers, sorted by name.
func BuiltinHandlers() []HandlerSchema {
	hs := []HandlerSchema{
		{
			Name: "count",
			Doc:  "counts messages; completes at expect messages or when the last frame equals until; logs the rate",
			Keys: []ConfigKey{
				{Name: "dedupe", Kind: KindBool, Doc: "count distinct messages of at-least-once edges; copies sent again are reported as duplicates"},
				{Name: "expect", Kind: KindInt, Doc: "complete after this many messages"},
				{Name: "until", Kind: KindString, Doc: "complete when a message's last frame equals this text"},
			},
		},
		{Name: "echo", Doc: "answers each request with the same frames; on in sockets, forwards like forward", Keys: []ConfigKey{{Name: "delay", Kind: KindDuration, Doc: "simulated work: a pause before each message is answered or passed on"}}},
		{Name: "forward", Doc: "sends each message from an in socket, unchanged, to the out sockets", Keys: []ConfigKey{{Name: "delay", Kind: KindDuration, Doc: "simulated work: a pause before each message is answered or passed on"}}},
		{
			Name: "generate",
			Doc:  "sends count messages (forever without count), then the optional end payload, then completes",
			Keys: []ConfigKey{
				{Name: "count", Kind: KindInt, Doc: "how many messages; absent: forever"},
				{Name: "end", Kind: KindString, Doc: "a final payload sent after count messages (e.g. a sink's until)"},
				{Name: "interval", Kind: KindDuration, Doc: "pause between messages"},
				{Name: "payload", Kind: KindString, Doc: "the message text (exclusive with size)"},
				{Name: "size", Kind: KindInt, Doc: "message size in bytes (exclusive with payload)"},
				{Name: "topics", Kind: KindStrings, Doc: "topic frames, round robin: each message is sent as topic + body"},
			},
		},
		{
			Name:        "lbbroker",
			Doc:         "the zguide load-balancing broker: ROUTER frontend for clients, ROUTER backend for READY workers",
			NeedSockets: []string{"backend", "frontend"},
			SocketTypes: map[string]SocketType{"backend": ROUTER, "frontend": ROUTER},
		},
		{Name: "log", Doc: "logs every message, frames shown binary-safe"},
		{
			Name:        "mdbroker",
			Doc:         "a Majordomo (MDP 0.1) broker: MDPC01 clients and MDPW01 workers on one ROUTER frontend, service routing, heartbeats, mmi.service",
			NeedSockets: []string{"frontend"},
			SocketTypes: map[string]SocketType{"frontend": ROUTER},
			Keys: []ConfigKey{
				{Name: "heartbeat", Kind: KindDuration, Doc: "interval of heartbeats to idle workers (2.5s, the zguide's)"},
				{Name: "liveness", Kind: KindInt, Doc: "heartbeats a worker may miss before it is expired (3)"},
			},
		},
		{
			Name:        "ppqueue",
			Doc:         "the Paranoid Pirate queue: ROUTER frontend for clients, ROUTER backend for workers that send \\x01 when ready and heartbeat with \\x02",
			NeedSockets: []string{"backend", "frontend"},
			SocketTypes: map[string]SocketType{"backend": ROUTER, "frontend": ROUTER},
			Keys: []ConfigKey{
				{Name: "heartbeat", Kind: KindDuration, Doc: "interval of heartbeats to idle workers (1s, the zguide's)"},
				{Name: "liveness", Kind: KindInt, Doc: "heartbeats a worker may miss before it is evicted (3)"},
			},
		},
		{
			Name:        "proxy",
			Doc:         "zmq_proxy between frontend and backend, optional capture; steerable so it stops cleanly",
			NeedSockets: []string{"backend", "frontend"},
		},
		{
			Name: "replay",
			Doc:  "sends the messages of a capture file (ztopo tap --record) from its out sockets at the recorded pace or max, optionally looping, then completes",
			Keys: []ConfigKey{
				{Name: "direction", Kind: KindString, Doc: "which messages of the capture: in (the tapped socket received them), out (it sent them) or any (the default)"},
				{Name: "file", Kind: KindString, Doc: "the capture file (required), relative to the topology file"},
				{Name: "loop", Kind: KindBool, Doc: "start again from the first message after the last, until stopped"},
				{Name: "speed", Kind: KindString, Doc: "1 (the default) is the recorded pace, 2 twice as fast; max: as fast as the peers take them"},
			},
		},
		{Name: "upper", Doc: "like echo/forward, with the ASCII letters of the last frame upper-cased", Keys: []ConfigKey{{Name: "delay", Kind: KindDuration, Doc: "simulated work: a pause before each message is answered or passed on"}}},
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs
}

// builtinHandler returns the schema named name.
func builtinHandler(name string) (HandlerSchema, bool) {
	for _, h := range BuiltinHandlers() {
		if h.Name == name {
			return h, true
		}
	}
	return HandlerSchema{}, false
}

func builtinNames() []string {
	var names []string
	for _, h := range BuiltinHandlers() {
		names = append(names, h.Name)
	}
	return names
}

// pluginSchema is what `handler: {plugin: ...}` accepts in config: the host
// reads these; the plugin itself gets no config in format version 1.
var pluginSchema = HandlerSchema{
	Name: "plugin",
	Keys: []ConfigKey{
		{Name: "inflight", Kind: KindInt, Doc: "requests held by the plugin at once"},
		{Name: "max_message", Kind: KindInt, Doc: "largest message the plugin may send, in bytes (default 67108864)"},
		{Name: "timeout", Kind: KindDuration, Doc: "how long one request may take before it is reported lost"},
	},
}

// execSchema is what `handler: {exec: [...]}` accepts in config: the host
// reads these; the child gets no config.
var execSchema = HandlerSchema{
	Name: "exec",
	Keys: []ConfigKey{
		{Name: "drop", Kind: KindString, Doc: "the output line that drops its message (a filter); default: none"},
		{Name: "max_line", Kind: KindInt, Doc: "longest output line in bytes; a longer one restarts the child (default 1048576)"},
		{Name: "timeout", Kind: KindDuration, Doc: "a child holding messages that answers none for this long is restarted (default 10s)"},
	},
}

// wasmSchema is what `handler: {wasm: ...}` accepts in config: the
// module's limits and what of the host it may see (nothing by default).
var wasmSchema = HandlerSchema{
	Name: "wasm",
	Keys: []ConfigKey{
		{Name: "clock", Kind: KindBool, Doc: "the real clocks and sleep (default: a fixed clock)"},
		{Name: "dirs", Kind: KindStrings, Doc: "HOST:GUEST directories the module may read (HOST relative to the file)"},
		{Name: "env", Kind: KindStrings, Doc: "KEY=value environment variables for the module"},
		{Name: "memory", Kind: KindString, Doc: "memory limit, e.g. 64MiB (the default)"},
		{Name: "random", Kind: KindBool, Doc: "the system's random source (default: a fixed one)"},
		{Name: "timeout", Kind: KindDuration, Doc: "how long one message may run before it fails (default 1s)"},
	},
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
