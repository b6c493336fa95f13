package spec

import (
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Topology is a resolved topology: variables interpolated, defaults merged,
// replicas expanded, `node.socket` references and `bind: auto` turned into
// concrete endpoints, relative paths made absolute. Only this model is run
// and diffed; two equal Nodes (reflect.DeepEqual, Pos fields excluded — see
// Node.Equal) mean "nothing changed" for reload.
type Topology struct {
	Version int
	Name    string
	NamePos Pos    // where the file sets name: a reload that changes it is rejected there
	File    string // absolute path of the topology file
	Dir     string // directory of File: relative paths were resolved against it
	// RuntimeDir is the private directory (mode 0700) holding ipc endpoints
	// chosen by `bind: auto`, and the control socket.
	RuntimeDir string
	// Nodes are node instances sorted by Base, then Replica (so worker.2
	// comes before worker.10); a node with replicas: 3 appears as name.0,
	// name.1, name.2, and a node without replicas under its plain name.
	// When Share names a host, only the instances placed on it.
	Nodes []*Node
	// Hosts are the machines of the file's `hosts`, sorted by name; nil
	// when the file has none.
	Hosts []Host
	// Share is the host whose share of the file this Topology runs
	// (LoadOptions.Host); "" runs every node on this machine.
	Share string
	// Security is the file's security block; nil without one.
	Security *Security
}

// Host is one machine of a deployment.
type Host struct {
	Name    string
	Address string // how peers on other hosts reach it: an IP address or a DNS name
}

// Security is a resolved `security` block.
type Security struct {
	KeysDir      string // absolute directory of the key certificates
	RequireCurve bool   // require: curve — every tcp socket uses CURVE
}

// Curve is a socket's CURVE role with its key material. It never holds a
// secret key, only the path of the certificate that does: the runtime reads
// it when it opens the socket, and nothing that prints a Topology (status,
// graph, logs, the process node's environment) can show it.
type Curve struct {
	Server     bool   // a CURVE server (it binds); else a client (it connects)
	Key        string // the name of this socket's key pair
	Public     string // its public key, Z85
	SecretFile string // absolute path of NAME.key_secret
	// Server: the client keys allowed, sorted by name; AllowAny (allow:
	// ["*"]) lets in any client that completes the handshake.
	Allow    []CurveKey
	AllowAny bool
	// Client: the server's key (name and Z85 public key).
	ServerName string
	ServerKey  string
}

// CurveKey is a named public key.
type CurveKey struct {
	Name   string
	Public string // Z85
}

// Node returns the instance named name, or nil.
func (t *Topology) Node(name string) *Node {
	return byName(t.Nodes, name, func(n *Node) string { return n.Name })
}

// byName is the element of list whose name (nameOf) is name, or nil.
func byName[T any](list []*T, name string, nameOf func(*T) string) *T {
	if i := slices.IndexFunc(list, func(x *T) bool { return nameOf(x) == name }); i >= 0 {
		return list[i]
	}
	return nil
}

// RunMode says where a node instance runs.
type RunMode string

const (
	RunGoroutine RunMode = "goroutine" // shares the process's ZeroMQ context
	RunProcess   RunMode = "process"   // a child process of ztopo
)

// HandlerKind tells which kind of handler a node runs.
type HandlerKind string

const (
	HandlerBuiltin HandlerKind = "builtin" // Handler.Name is a registered builtin
	HandlerExec    HandlerKind = "exec"    // Handler.Argv is a long-lived child (lines codec)
	HandlerPlugin  HandlerKind = "plugin"  // Handler.Path speaks the ZeroMQ plugin protocol
	HandlerWasm    HandlerKind = "wasm"    // Handler.Path is a WebAssembly module (ztopo-wasm/1)
	HandlerCommand HandlerKind = "command" // the node is an external program owning its sockets (Handler.Argv)
)

// HandlerRef names what a node does.
type HandlerRef struct {
	Kind  HandlerKind
	Name  string   // builtin name
	Argv  []string // exec and command: argv, argv[0] made absolute when it was a relative path
	Path  string   // plugin: absolute path of the executable; wasm: of the module
	Codec string   // exec: "lines" (the only codec of format version 1)
}

// Builtin returns the schema of a builtin handler; false for the other
// kinds and for a name no package registered.
func (h HandlerRef) Builtin() (HandlerSchema, bool) {
	if h.Kind != HandlerBuiltin {
		return HandlerSchema{}, false
	}
	return builtinHandler(h.Name)
}

// Label describes what a node runs in a few words: the builtin name,
// "exec sed", "plugin upper-v2", or a command's program and script names.
func (h HandlerRef) Label() string {
	switch h.Kind {
	case HandlerBuiltin:
		return h.Name
	case HandlerExec:
		return strings.TrimSpace("exec " + shortArgv(h.Argv))
	case HandlerPlugin:
		return "plugin " + filepath.Base(h.Path)
	case HandlerWasm:
		return "wasm " + filepath.Base(h.Path)
	case HandlerCommand:
		return shortArgv(h.Argv)
	}
	return string(h.Kind)
}

// shortArgv keeps the program's base name and, when the next argument is
// not a flag, that argument's base name: "python3 upper_worker.py" tells
// more than "python3" and is shorter than the absolute paths.
func shortArgv(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	s := filepath.Base(argv[0])
	if len(argv) > 1 && argv[1] != "" && !strings.HasPrefix(argv[1], "-") {
		s += " " + filepath.Base(argv[1])
	}
	return s
}

// Node is one resolved node instance.
type Node struct {
	Name     string // instance name: "sink", or "worker.2" for a replica
	Base     string // node name as written: "worker"
	Replica  int    // 0-based replica index (0 for a node without replicas)
	Replicas int    // replicas of Base (1 when not replicated)
	Pos      Pos    // position of the node's key in the file
	Host     string // the host it is placed on (its own host, or defaults'); "" without hosts

	Handler HandlerRef
	// Config is the handler's config, checked against the handler's schema,
	// with values already of the schema's Go types (int, string, bool,
	// time.Duration, []string, float64). Never nil.
	Config  map[string]any
	Run     RunMode // always RunProcess for HandlerCommand
	Restart Restart
	Sockets []*Socket // sorted by Name
	Sync    *Sync     // nil without a start barrier
	// Env is the node's `env`, interpolated: variables its child process
	// gets on top of ztopo's own environment (command and run: process
	// nodes only); nil without one.
	Env map[string]string
	// Vars are the file's vars with their values (the environment and env
	// files override them, as for ${VAR}), for a command node only: its
	// program gets each as ZTOPO_VAR_<NAME>. nil for other nodes, or a file
	// without vars.
	Vars map[string]string
	// Worker is the reliable worker protocol the node's reactive handler
	// speaks on a DEALER socket (ppqueue, mdbroker, or a foreign broker);
	// nil when it speaks none.
	Worker *Worker
}

// VarEnvPrefix prefixes the file's vars in a command's environment:
// ZTOPO_VAR_WORKERS. Prefixed rather than plain so that a var never
// changes what a program reads for its own settings by accident (vars
// named PORT, DEBUG, LANG or PATH are common); `env: {PORT: ${PORT}}`
// passes one plainly.
const VarEnvPrefix = "ZTOPO_VAR_"

// ChildEnv is what the node's child process gets from the file on top of
// ztopo's environment and the ZTOPO_* variables of every child: for a
// command, ZTOPO_VAR_<NAME> for each of the file's vars; then its `env`.
// nil when there is nothing.
func (n *Node) ChildEnv() map[string]string {
	if len(n.Env) == 0 && len(n.Vars) == 0 {
		return nil
	}
	out := make(map[string]string, len(n.Env)+len(n.Vars))
	for k, v := range n.Vars {
		out[VarEnvPrefix+k] = v
	}
	for k, v := range n.Env {
		out[k] = v
	}
	return out
}

// Socket returns the socket named name, or nil.
func (n *Node) Socket(name string) *Socket {
	return byName(n.Sockets, name, func(s *Socket) string { return s.Name })
}

// RestartPolicy is when a node instance is restarted after it ends.
type RestartPolicy string

const (
	RestartNo        RestartPolicy = "no"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartAlways    RestartPolicy = "always"
)

// Restart is a resolved restart policy. Short forms (`restart: always`)
// resolve to the long form with documented defaults:
// max_restarts 5, within 1m, backoff_min 100ms, backoff_max 5s.
type Restart struct {
	Policy      RestartPolicy
	MaxRestarts int           // at most this many restarts in Within; then the node is failed
	Within      time.Duration // the sliding window for MaxRestarts
	BackoffMin  time.Duration // first delay; doubles per restart up to BackoffMax
	BackoffMax  time.Duration
}

// SocketType is a ZeroMQ socket type, upper case (PUSH, PULL, ...):
// ParseSocketType normalises what the file says once, and nothing after the
// resolver compares types in any other case.
type SocketType string

const (
	PAIR   SocketType = "PAIR"
	PUB    SocketType = "PUB"
	SUB    SocketType = "SUB"
	REQ    SocketType = "REQ"
	REP    SocketType = "REP"
	DEALER SocketType = "DEALER"
	ROUTER SocketType = "ROUTER"
	PULL   SocketType = "PULL"
	PUSH   SocketType = "PUSH"
	XPUB   SocketType = "XPUB"
	XSUB   SocketType = "XSUB"
	STREAM SocketType = "STREAM"
)

// Role is the direction of a socket for the node's handler.
type Role string

const (
	RoleIn    Role = "in"    // messages come in and go to the node's out sockets
	RoleOut   Role = "out"   // the node's results go out here
	RoleInOut Role = "inout" // requests come in; the reply goes back on the same socket
)

// Socket is one resolved socket of a node instance.
type Socket struct {
	Name string
	Type SocketType
	Role Role // the default by type unless the file set one
	// Bind and Connect are concrete endpoints (inproc://, ipc://, tcp://,
	// pgm://, epgm://). A `node.socket` connect became that socket's bind
	// endpoints (wildcard tcp hosts turned into 127.0.0.1); `bind: auto`
	// became an inproc:// or ipc:// endpoint.
	Bind    []string
	Connect []string
	// Peers are the "node.socket" references this socket connects to, as
	// written (base node names, not instances), in file order; for graphs.
	Peers     []string
	Subscribe []string // SUB/XSUB only; nil means no subscription
	// Identity is the routing id (the identity field, or options.routing_id
	// or its alias options.identity); empty means libzmq picks one. Inside a
	// node, ${REPLICA} (the replica index, 0 for a node without replicas)
	// and ${NODE} (the instance name, "worker.2") give each replica its own:
	// `identity: worker-${REPLICA}`. They work the same in endpoints, sync
	// and config strings, and are already replaced here.
	Identity string
	Options  []Option // sorted by Name
	// Reliable is set on a sending socket with `delivery: at-least-once`;
	// nil means at most once, what ZeroMQ gives.
	Reliable *Reliable
	// Acks is set on a socket that receives from at-least-once senders:
	// it reads their delivery header and acknowledges what it handled.
	Acks bool
	// Curve is the socket's CURVE security; nil: none (the NULL mechanism).
	Curve *Curve
	Pos   Pos
}

// Reliable is an at-least-once sending socket (docs/reliability.md): every
// message carries an id and stays with the sender until a receiver
// acknowledges it, and is sent again after AckTimeout without one.
type Reliable struct {
	AckTimeout time.Duration // default DefaultAckTimeout
	// AckBind is the endpoint the sender's acknowledgements come in on
	// (inproc or ipc, as `bind: auto` picks for the sender and its
	// receivers); each message names it, so a receiver knows where to
	// acknowledge without a list of its senders (which a reload that adds
	// or removes sender replicas would change).
	AckBind string
}

// EffectiveRole is the socket's role: Role, which the resolver always sets,
// or for a Socket built by hand without one, the default by type.
func (s *Socket) EffectiveRole() Role {
	if s.Role != "" {
		return s.Role
	}
	return DefaultRole(s.Type)
}

// Option is a socket option by its libzmq name without ZMQ_, lower case.
// Value is an int (durations in milliseconds, booleans as 0/1) or a string
// (for byte-valued options).
type Option struct {
	Name  string
	Value any
}

// Sync is a node's start barrier.
type Sync struct {
	// Expect > 0: the node binds a REP at Bind and its handler starts only
	// after Expect peers have sent a request (each gets an empty reply).
	Expect int
	Bind   string // resolved endpoint
	// Connect: the node, once its sockets are connected and subscribed,
	// sends one request to this resolved endpoint (the other node's
	// Sync.Bind) and waits for the reply before its handler starts.
	Connect     string
	ConnectNode string // the node named in the file, for messages and graphs
}
