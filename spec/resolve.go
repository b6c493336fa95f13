package spec

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultRestart is the restart policy of a node whose file says nothing
// (on-failure, 5 restarts within 1m, backoff 100ms doubling up to 5s); what
// the file says is applied over it.
var DefaultRestart = Restart{
	Policy:      RestartOnFailure,
	MaxRestarts: 5,
	Within:      time.Minute,
	BackoffMin:  100 * time.Millisecond,
	BackoffMax:  5 * time.Second,
}

// Limits on what a file may ask for, so that `replicas: 2000000000` or a
// mesh of replicated nodes is refused instead of exhausting memory.
const (
	maxReplicas  = 1000   // per node
	maxInstances = 10_000 // node instances in a topology
	maxConnects  = 100_000
)

var refRE = regexp.MustCompile(`^([a-z0-9][a-z0-9_-]*)\.([a-z0-9][a-z0-9_-]*)$`)

// resolver turns a File into a Topology in two passes: each node instance
// on its own (interpolation, defaults, types), then the wiring between them
// (references, auto endpoints), then the checks that need the whole picture.
type resolver struct {
	f     *File
	env   func(string) (string, bool)
	diags Diags

	vars     map[string]string
	varNames []string
	// fileEnv holds the variables of the env files (.env, --env-file):
	// ${VAR} looks at the process environment, then at them, then at vars.
	fileEnv map[string]EnvFileVar
	dir     string
	topo    *Topology

	insts  []*inst
	byBase map[string][]*inst // replica order
	files  map[string]*FileNode
	// connectors are the instances that reference each "node.socket".
	connectors map[string][]*inst
	connects   int  // connect endpoints made from references so far
	tooBig     bool // a size limit was hit: the rest is not worth checking
	// inputFiles are the files builtins read (ConfigCheck.File), checked
	// with the executables (LoadOptions.CheckExecutables).
	inputFiles []inputFile

	hosts     map[string]string // host name -> address; nil without hosts
	hostNames []string          // sorted
	share     string            // LoadOptions.Host
	// kubernetes is LoadOptions.Kubernetes; podHosts tells that the
	// hosts are the pods of node instances.
	kubernetes string
	podHosts   bool
	// autoPorts: "instance.socket" (or "instance/sync") -> the tcp port of
	// a bind: auto reached from another host; 0 when none could be given.
	autoPorts map[string]int
	// autoLoopback are the loopback endpoints those got without a share.
	autoLoopback map[string]bool
	// expanded counts the bytes ${VAR} expansion produced, bounded by
	// maxExpanded; expandedTooBig is set once the bound is hit.
	expanded       int
	expandedTooBig bool

	sec *security
}

// inst is a node instance with what the second pass needs.
type inst struct {
	n      *Node
	fn     *FileNode
	socks  []*isock // file order
	sync   *isync
	worker *iworker // worker keys of the config, nil without
}

func (in *inst) sock(name string) *isock {
	return byName(in.socks, name, func(s *isock) string { return s.s.Name })
}

type isock struct {
	s     *Socket
	fs    *FileSocket
	binds []ibind
	conns []iconn
	dlv   *idelivery // delivery: at-least-once
	curve *icurve    // nil without curve
}

type ibind struct {
	auto bool
	ep   string // resolved endpoint (auto: filled in by the second pass)
	pos  Pos
}

type iconn struct {
	ref          bool
	node, socket string // ref
	ep           string // literal
	pos          Pos
	ok           bool // a ref that names an existing socket that binds
}

type isync struct {
	bindAuto    bool
	bindPos     Pos
	connectPos  Pos
	connectNode string
}

// Resolve turns a decoded File into a Topology and validates it. Like
// Parse, it returns every problem it finds; the Topology it returns is only
// meaningful when the Diags hold no errors.
func Resolve(f *File, opts LoadOptions) (*Topology, Diags) {
	r := &resolver{
		f:      f,
		env:    opts.env(),
		byBase: map[string][]*inst{},
		files:  map[string]*FileNode{},
	}
	abs, err := filepath.Abs(f.Filename)
	if err != nil {
		abs = f.Filename
	}
	r.dir = filepath.Dir(abs)
	r.topo = &Topology{File: abs, Dir: r.dir}
	var eds Diags
	r.fileEnv, eds = ReadEnvFiles(f.Filename, opts)
	r.diags = append(r.diags, eds...)
	r.header()
	r.kubernetes = opts.Kubernetes
	r.placement(opts.Host)
	r.security()
	r.topo.RuntimeDir = opts.RuntimeDir
	if r.topo.RuntimeDir == "" {
		name := r.topo.Name
		if r.share != "" {
			name += "@" + r.share
		}
		r.topo.RuntimeDir = runtimeDir(name, r.env)
	}
	for _, fn := range f.Nodes {
		if _, dup := r.files[fn.Name]; dup {
			continue // reported by the YAML reader as a duplicate key
		}
		r.files[fn.Name] = fn
		r.node(fn)
	}
	r.podShare()
	if !r.tooBig {
		r.wire()
	}
	if !r.tooBig {
		r.validate()
	}
	if opts.CheckExecutables && !r.tooBig {
		r.checkExecutables()
		r.checkWasm()
		r.checkInputFiles()
	}
	for _, in := range r.insts {
		if r.share == "" || in.n.Host == r.share {
			r.topo.Nodes = append(r.topo.Nodes, in.n)
		}
	}
	sortInstances(r.topo.Nodes)
	return r.topo, tidy(r.diags)
}

func (r *resolver) errorf(p Pos, hint, format string, args ...any) {
	r.diags = append(r.diags, Diag{Pos: p, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (r *resolver) warnf(p Pos, hint, format string, args ...any) {
	r.diags = append(r.diags, Diag{Pos: p, Severity: Warning, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// pick returns the values of map v by key; a key not among keys is an
// error "unknown key K in WHERE", with a did-you-mean from keys.
func (r *resolver) pick(v *Value, where string, keys ...string) map[string]*Value {
	out := make(map[string]*Value, len(keys))
	for _, e := range v.Entries {
		if !slices.Contains(keys, e.Key) {
			r.errorf(e.KeyPos, didYouMean(e.Key, keys), "unknown key %q in %s", e.Key, where)
			continue
		}
		out[e.Key] = e.Value
	}
	return out
}

func (r *resolver) fileScope() scope { return scope{env: r.lookupEnv, vars: r.vars} }

// lookupEnv is what ${VAR} sees before vars: the process environment, then
// the env files (docker compose's precedence).
func (r *resolver) lookupEnv(name string) (string, bool) {
	if v, ok := r.env(name); ok {
		return v, true
	}
	if v, ok := r.fileEnv[name]; ok {
		return v.Value, true
	}
	return "", false
}

// header resolves version, name and vars.
func (r *resolver) header() {
	f := r.f
	r.vars = map[string]string{}
	for _, e := range f.Vars {
		switch {
		case !varNameRE.MatchString(e.Key):
			r.errorf(e.KeyPos, "", "bad variable name %q: use letters, digits and '_', not starting with a digit", e.Key)
		case e.Key == placeholderReplica || e.Key == placeholderNode:
			r.errorf(e.KeyPos, "", "variable name %q is reserved: ztopo sets ${%s} for each node instance", e.Key, e.Key)
		case e.Value.Shape == ShapeList || e.Value.Shape == ShapeMap:
			r.errorf(e.Value.Pos, "", "variable %q must be a scalar, got %s", e.Key, e.Value.Shape)
			r.vars[e.Key] = "" // defined, so its uses do not add "undefined" errors
		default:
			// Values are taken as written: a var is not interpolated,
			// so "$" needs no escaping in it.
			r.vars[e.Key] = e.Value.Text
			r.varNames = append(r.varNames, e.Key)
		}
	}
	sc := r.fileScope()
	if v := f.Version; v != nil {
		if n, ok := r.integer(sc, v, "version"); ok && n != 1 {
			r.errorf(v.Pos, "", "unsupported version %d: this ztopo reads version 1", n)
		}
		r.topo.Version = 1
	}
	if v := f.Name; v != nil {
		if s, ok := r.str(sc, v, "name"); ok {
			if !nameRE.MatchString(s) {
				r.errorf(v.Pos, "", "bad topology name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", s)
			}
			r.topo.Name, r.topo.NamePos = s, v.Pos
		}
	}
}

// expand interpolates a scalar, reporting problems at its position.
func (r *resolver) expand(sc scope, v *Value) (string, bool) {
	if r.expandedTooBig {
		return "", false // reported once, where the limit was crossed
	}
	s, err := sc.interpolate(v.Text, maxExpanded-r.expanded)
	if err != nil {
		var tl *expansionTooLarge
		if errors.As(err, &tl) {
			r.errorf(v.Pos, "a variable is expanded too many times, or is too long", "%v", err)
			r.expandedTooBig, r.tooBig = true, true
			return "", false
		}
		hint := ""
		var uv *undefinedVar
		if errors.As(err, &uv) {
			hint = didYouMean(uv.name, r.varNames)
			if hint == "" {
				hint = fmt.Sprintf("define it in vars or the environment, or write ${%s:-default}", uv.name)
			}
		}
		r.errorf(v.Pos, hint, "%v", err)
		return "", false
	}
	if s != v.Text {
		r.expanded += len(s)
	}
	return s, true
}

// scalar reads a scalar as interpolated text; anything else is reported as
// "WHAT must be WANT, got SHAPE" (want: "a string", "an integer", ...).
func (r *resolver) scalar(sc scope, v *Value, what, want string) (string, bool) {
	if v.Shape != ShapeScalar {
		r.errorf(v.Pos, "", "%s must be %s, got %s", what, want, v.Shape)
		return "", false
	}
	return r.expand(sc, v)
}

// str reads a scalar as text.
func (r *resolver) str(sc scope, v *Value, what string) (string, bool) {
	return r.scalar(sc, v, what, "a string")
}

// integer reads a scalar as a decimal integer (interpolated first, so
// `replicas: ${WORKERS}` works).
func (r *resolver) integer(sc scope, v *Value, what string) (int, bool) {
	s, ok := r.scalar(sc, v, what, "an integer")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		r.errorf(v.Pos, r.origin(v.Text), "%s must be an integer, got %q", what, s)
		return 0, false
	case err != nil && strings.HasPrefix(strings.TrimSpace(s), "-"), err == nil && n < math.MinInt32:
		r.errorf(v.Pos, r.origin(v.Text), "%s is out of range: %s is less than %d", what, s, math.MinInt32)
		return 0, false
	case err != nil, n > math.MaxInt32:
		r.errorf(v.Pos, r.origin(v.Text), "%s is out of range: %s is more than %d", what, s, math.MaxInt32)
		return 0, false
	}
	return n, true
}

// origin says where the ${VAR}s of a scalar took their values, for an
// error about the expanded value: the file shows "${WORKERS}", the value
// "abc" came from the environment. "" when text uses no variable.
func (r *resolver) origin(text string) string {
	var parts []string
	seen := map[string]bool{}
	for _, m := range varRefRE.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if seen[name] || name == placeholderReplica || name == placeholderNode {
			continue
		}
		seen[name] = true
		if val, ok := r.env(name); ok {
			parts = append(parts, fmt.Sprintf("${%s} is %q, from the environment", name, val))
			continue
		}
		if v, ok := r.fileEnv[name]; ok {
			parts = append(parts, fmt.Sprintf("${%s} is %q, from %s:%d", name, v.Value, v.Pos.File, v.Pos.Line))
			continue
		}
		for _, e := range r.f.Vars {
			if e.Key == name {
				parts = append(parts, fmt.Sprintf("${%s} is %q, from vars at line %d", name, r.vars[name], e.KeyPos.Line))
			}
		}
	}
	return strings.Join(parts, "; ")
}

// duration reads a scalar with ParseDuration; negative durations are errors.
func (r *resolver) duration(sc scope, v *Value, what string) (time.Duration, bool) {
	s, ok := r.scalar(sc, v, what, "a duration")
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		r.errorf(v.Pos, r.origin(v.Text), "%s: %v", what, err)
		return 0, false
	}
	if d < 0 {
		r.errorf(v.Pos, "", "%s must not be negative, got %s", what, s)
		return 0, false
	}
	return d, true
}

// strList reads a list of scalars, or (when one is allowed) a single scalar
// as a list of one.
func (r *resolver) strList(sc scope, v *Value, what string, single bool) ([]string, []Pos, bool) {
	var items []*Value
	switch {
	case v.Shape == ShapeList:
		items = v.Items
	case v.Shape == ShapeScalar && single:
		items = []*Value{v}
	default:
		want := "a list of strings"
		if single {
			want = "a string or a list of strings"
		}
		r.errorf(v.Pos, "", "%s must be %s, got %s", what, want, v.Shape)
		return nil, nil, false
	}
	out, pos := make([]string, 0, len(items)), make([]Pos, 0, len(items))
	ok := true
	for _, it := range items {
		s, good := r.scalar(sc, it, what+": each entry", "a string")
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
		pos = append(pos, it.Pos)
	}
	return out, pos, ok
}

// node resolves every instance of a node as written.
func (r *resolver) node(fn *FileNode) {
	count, replicated := 1, fn.Replicas != nil
	if replicated {
		if n, ok := r.integer(r.fileScope(), fn.Replicas, "replicas"); ok {
			switch {
			case n < 1:
				r.errorf(fn.Replicas.Pos, "", "replicas must be at least 1, got %d", n)
			case n > maxReplicas:
				r.errorf(fn.Replicas.Pos, "", "replicas must be at most %d, got %d", maxReplicas, n)
			default:
				count = n
			}
		}
	}
	if r.tooBig {
		return
	}
	if len(r.insts)+count > maxInstances {
		r.errorf(fn.Pos, "", "topology too large: more than %d node instances", maxInstances)
		r.tooBig = true
		return
	}
	for i := 0; i < count; i++ {
		name := fn.Name
		if replicated {
			name = fmt.Sprintf("%s.%d", fn.Name, i)
		}
		in := r.instance(fn, name, i, count)
		r.insts = append(r.insts, in)
		r.byBase[fn.Name] = append(r.byBase[fn.Name], in)
	}
}

func (r *resolver) instance(fn *FileNode, name string, replica, replicas int) *inst {
	sc := scope{env: r.lookupEnv, vars: r.vars, inNode: true, replica: replica, node: name}
	n := &Node{Name: name, Base: fn.Name, Replica: replica, Replicas: replicas, Pos: fn.Pos}
	in := &inst{n: n, fn: fn}
	var def FileDefaults
	if r.f.Defaults != nil {
		def = *r.f.Defaults
	}

	r.handler(sc, fn, n)
	in.worker = r.config(sc, fn, n)
	if n.Handler.Kind == HandlerWasm {
		r.wasm(fn, n)
	}

	n.Run = RunGoroutine
	if n.Handler.Kind == HandlerCommand {
		n.Run = RunProcess
		if fn.Run != nil {
			if s, ok := r.str(sc, fn.Run, "run"); ok && s != string(RunProcess) {
				r.errorf(fn.Run.Pos, "", "run: %q is not possible for a command node: a command always runs as a process", s)
			}
		}
	} else if v := firstNonNil(fn.Run, def.Run); v != nil {
		if s, ok := r.str(sc, v, "run"); ok {
			if m, err := ParseRunMode(s); err != nil {
				r.errorf(v.Pos, didYouMean(s, []string{"goroutine", "process"}), "%v", err)
			} else {
				n.Run = m
			}
		}
	}

	n.Restart = r.restart(sc, def.Restart, fn.Restart)
	n.Host = r.nodeHost(sc, fn, def.Host, replica)
	if fn.Env != nil {
		n.Env = r.envMap(sc, fn, n)
	}
	if n.Handler.Kind == HandlerCommand && len(r.varNames) > 0 {
		n.Vars = map[string]string{}
		for _, name := range r.varNames {
			n.Vars[name], _ = sc.lookup(name, "", false)
		}
	}

	for _, fs := range fn.Sockets {
		if n.Socket(fs.Name) != nil {
			continue // a duplicate key, already reported
		}
		is := r.socket(sc, n, fs, def.Options)
		in.socks = append(in.socks, is)
		n.Sockets = append(n.Sockets, is.s)
	}
	sortSockets(n.Sockets)

	if fn.Sync != nil {
		in.sync = r.sync(sc, n, fn.Sync)
	}
	return in
}

// envMap resolves a node's `env`: a map of environment variable names to
// scalars, interpolated like every value of a node (${REPLICA} too). Only a
// node with a child process of its own has an environment to set.
func (r *resolver) envMap(sc scope, fn *FileNode, n *Node) map[string]string {
	if n.Run != RunProcess {
		r.errorf(fn.EnvPos, "add run: process, or make it a command", "env sets the environment of a node's child process, and node %q runs as a goroutine inside ztopo", fn.Name)
		return nil
	}
	if fn.Env.Shape != ShapeMap {
		r.errorf(fn.Env.Pos, "", "env of node %q must be a map of NAME: value, got %s", fn.Name, fn.Env.Shape)
		return nil
	}
	out := map[string]string{}
	for _, e := range fn.Env.Entries {
		switch {
		case !varNameRE.MatchString(e.Key):
			r.errorf(e.KeyPos, "", "bad environment variable name %q: use letters, digits and '_', not starting with a digit", e.Key)
		case strings.HasPrefix(e.Key, "ZTOPO_"):
			r.errorf(e.KeyPos, "ztopo sets ZTOPO_NODE, ZTOPO_<SOCKET>_BIND, ZTOPO_VAR_<NAME>, ...", "environment variable %q: names starting with ZTOPO_ are ztopo's own", e.Key)
		case e.Value.Shape == ShapeNull:
			r.errorf(e.KeyPos, `write "" for an empty value; ztopo's own environment is passed on already`, "env %q has no value", e.Key)
		default:
			if v, ok := r.str(sc, e.Value, fmt.Sprintf("env %q", e.Key)); ok {
				out[e.Key] = v
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func firstNonNil(vs ...*Value) *Value {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// relPath makes a path written in the file absolute against its directory.
func (r *resolver) relPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.dir, p)
}

// argv reads a command or exec argv: a list, or a string that is argv[0]
// alone (it is not split on spaces: write a list for arguments). argv[0] is
// resolved against the file's directory when it contains a '/', else left
// for a $PATH lookup.
func (r *resolver) argv(sc scope, v *Value, what string) []string {
	argv, _, ok := r.strList(sc, v, what, true)
	if !ok {
		return nil
	}
	if len(argv) == 0 || argv[0] == "" {
		r.errorf(v.Pos, "", "%s needs a program to run", what)
		return nil
	}
	if strings.Contains(argv[0], "/") {
		argv[0] = r.relPath(argv[0])
	}
	return argv
}

// pathHandler makes v, the path of a {plugin: path} or {wasm: path}
// handler, n's handler of that kind; kinds names the kind in the error for
// a codec, which only exec handlers take, and needs what the path must
// lead to.
func (r *resolver) pathHandler(sc scope, n *Node, v, codec *Value, kind HandlerKind, kinds, needs string) {
	if codec != nil {
		r.errorf(codec.Pos, "", "codec applies to exec handlers, not %s", kinds)
	}
	if p, ok := r.str(sc, v, string(kind)); ok {
		if p == "" {
			r.errorf(v.Pos, "", "%s needs the path of %s", kind, needs)
		}
		n.Handler = HandlerRef{Kind: kind, Path: r.relPath(p)}
	}
}

func (r *resolver) handler(sc scope, fn *FileNode, n *Node) {
	switch {
	case fn.Handler != nil && fn.Command != nil:
		r.errorf(fn.Command.Pos, "", "node %q has both handler and command; a command node owns its sockets, so pick one", fn.Name)
		return
	case fn.Handler == nil && fn.Command == nil:
		if !fn.typos.any("handler", "command") {
			r.errorf(fn.Pos, "", "node %q needs a handler or a command", fn.Name)
		}
		return
	case fn.Command != nil:
		n.Handler = HandlerRef{Kind: HandlerCommand, Argv: r.argv(sc, fn.Command, "command")}
		return
	}
	v := fn.Handler
	switch v.Shape {
	case ShapeScalar:
		name, ok := r.str(sc, v, "handler")
		if !ok {
			return
		}
		if _, known := builtinHandler(name); !known {
			names := builtinNames()
			hint := didYouMean(name, names)
			switch {
			case len(names) == 0:
				hint = noBuiltins
			case hint == "":
				hint = "builtin handlers: " + strings.Join(names, ", ") + "; or {exec: [...]}, {plugin: path}, {wasm: path}"
			}
			r.errorf(v.Pos, hint, "unknown handler %q", name)
		}
		n.Handler = HandlerRef{Kind: HandlerBuiltin, Name: name}
	case ShapeMap:
		f := r.pick(v, fmt.Sprintf("handler of node %q", fn.Name), "codec", "exec", "plugin", "wasm")
		exec, codec, plugin, wasm := f["exec"], f["codec"], f["plugin"], f["wasm"]
		kinds := 0
		for _, k := range []*Value{exec, plugin, wasm} {
			if k != nil {
				kinds++
			}
		}
		switch {
		case kinds > 1:
			second := plugin
			if wasm != nil {
				second = wasm
			}
			r.errorf(second.Pos, "", "handler of node %q has %s; pick one", fn.Name, both(exec, plugin, wasm))
		case wasm != nil:
			r.pathHandler(sc, n, wasm, codec, HandlerWasm, "wasm modules", "a WebAssembly module")
		case exec != nil:
			n.Handler = HandlerRef{Kind: HandlerExec, Argv: r.argv(sc, exec, "handler exec"), Codec: "lines"}
			if codec != nil {
				if c, ok := r.str(sc, codec, "codec"); ok {
					if c != "lines" {
						r.errorf(codec.Pos, "", "unknown codec %q: format version 1 has only \"lines\"", c)
					}
				}
			}
		case plugin != nil:
			r.pathHandler(sc, n, plugin, codec, HandlerPlugin, "plugins", "an executable")
		default:
			r.errorf(v.Pos, "", "handler of node %q needs exec, plugin or wasm", fn.Name)
		}
	default:
		r.errorf(v.Pos, "", "handler must be a builtin name, {exec: [...]}, {plugin: path} or {wasm: path}, got %s", v.Shape)
	}
}

// both names the handler kinds given together: "both exec and plugin".
func both(exec, plugin, wasm *Value) string {
	var names []string
	for _, k := range []struct {
		v    *Value
		name string
	}{{exec, "exec"}, {plugin, "plugin"}, {wasm, "wasm"}} {
		if k.v != nil {
			names = append(names, k.name)
		}
	}
	if len(names) == 2 {
		return "both " + names[0] + " and " + names[1]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (r *resolver) config(sc scope, fn *FileNode, n *Node) *iworker {
	n.Config = map[string]any{}
	v := fn.Config
	if v.IsNull() {
		return nil
	}
	if v.Shape != ShapeMap {
		r.errorf(v.Pos, "", "config of node %q must be a map, got %s", fn.Name, v.Shape)
		return nil
	}
	var iw *iworker
	if n.Handler.Kind != HandlerCommand {
		// The worker keys belong to the node, not to its handler.
		var rest []Entry
		iw, rest = r.workerConfig(sc, n, v)
		v = &Value{Shape: ShapeMap, Tag: v.Tag, Entries: rest, Pos: v.Pos}
	}
	switch n.Handler.Kind {
	case HandlerBuiltin:
		schema, ok := builtinHandler(n.Handler.Name)
		if !ok {
			return iw // unknown handler, reported; its config cannot be judged
		}
		r.schemaConfig(sc, schema, fmt.Sprintf("handler %q", schema.Name), v, n.Config)
		if schema.Check != nil {
			schema.Check(&ConfigCheck{Written: v, Values: n.Config, r: r, handler: schema.Name})
		}
	case HandlerPlugin:
		r.schemaConfig(sc, hostSchemas[HandlerPlugin], "a plugin handler", v, n.Config)
	case HandlerWasm:
		r.schemaConfig(sc, hostSchemas[HandlerWasm], "a wasm handler", v, n.Config)
	case HandlerExec:
		r.schemaConfig(sc, hostSchemas[HandlerExec], "an exec handler", v, n.Config)
		if d, ok := n.Config["drop"].(string); ok && strings.ContainsAny(d, "\r\n") {
			r.errorf(v.Get("drop").Pos, "", "config \"drop\" is one output line: it cannot contain a newline")
		}
	default:
		// command configs belong to programs ztopo does not
		// know: kept as decoded, strings interpolated.
		for _, e := range v.Entries {
			n.Config[e.Key] = r.plain(sc, e.Value)
		}
	}
	return iw
}

// schemaConfig checks config entries against a schema and converts them to
// the schema's Go types into out.
func (r *resolver) schemaConfig(sc scope, schema HandlerSchema, who string, v *Value, out map[string]any) {
	var names []string
	for _, k := range schema.Keys {
		names = append(names, k.Name)
	}
	for _, e := range v.Entries {
		key, ok := schema.Key(e.Key)
		if !ok {
			if len(names) == 0 {
				r.errorf(e.KeyPos, "", "%s takes no config, got key %q", who, e.Key)
			} else {
				r.errorf(e.KeyPos, didYouMean(e.Key, names), "unknown config key %q for %s", e.Key, who)
			}
			continue
		}
		what := fmt.Sprintf("config %q", e.Key)
		if val, ok := r.typed(sc, key.Kind, e.Value, what); ok {
			out[e.Key] = val
		}
	}
}

// typed converts a config value to the Go type of kind.
func (r *resolver) typed(sc scope, kind ValueKind, v *Value, what string) (any, bool) {
	switch kind {
	case KindInt:
		n, ok := r.integer(sc, v, what)
		if ok && n < 0 {
			r.errorf(v.Pos, "", "%s must not be negative, got %d", what, n)
			return nil, false
		}
		return n, ok
	case KindString:
		return r.str(sc, v, what)
	case KindBool:
		s, ok := r.scalar(sc, v, what, "true or false")
		if !ok {
			return nil, false
		}
		if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
			return b, true
		}
		r.errorf(v.Pos, "", "%s must be true or false, got %q", what, s)
		return nil, false
	case KindDuration:
		return r.duration(sc, v, what)
	case KindStrings:
		l, _, ok := r.strList(sc, v, what, false)
		return l, ok
	case KindFloat:
		s, ok := r.scalar(sc, v, what, "a number")
		if !ok {
			return nil, false
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f, true
		}
		r.errorf(v.Pos, "", "%s must be a number, got %q", what, s)
		return nil, false
	}
	return nil, false
}

// plain converts a value the way yaml would decode it into an any, with
// ${VAR}s in strings expanded.
func (r *resolver) plain(sc scope, v *Value) any {
	switch v.Shape {
	case ShapeList:
		out := make([]any, 0, len(v.Items))
		for _, it := range v.Items {
			out = append(out, r.plain(sc, it))
		}
		return out
	case ShapeMap:
		out := make(map[string]any, len(v.Entries))
		for _, e := range v.Entries {
			out[e.Key] = r.plain(sc, e.Value)
		}
		return out
	case ShapeScalar:
		switch v.Tag {
		case "!!int":
			if n, err := strconv.ParseInt(v.Text, 0, 64); err == nil && n >= math.MinInt && n <= math.MaxInt {
				return int(n)
			}
		case "!!float":
			if f, err := strconv.ParseFloat(v.Text, 64); err == nil {
				return f
			}
		case "!!bool":
			if b, err := strconv.ParseBool(v.Text); err == nil {
				return b
			}
		}
		s, _ := r.expand(sc, v)
		return s
	}
	return nil
}

// restartPolicy reads a restart policy, short or long form.
func (r *resolver) restartPolicy(sc scope, v *Value, what string) (RestartPolicy, bool) {
	s, ok := r.str(sc, v, what)
	if !ok {
		return "", false
	}
	p, err := ParseRestartPolicy(s)
	if err != nil {
		r.errorf(v.Pos, didYouMean(s, []string{"always", "no", "on-failure"}), "%v", err)
		return "", false
	}
	return p, true
}

// restart merges the defaults' restart under the node's own, field by
// field, over the built-in defaults.
func (r *resolver) restart(sc scope, def, own *Value) Restart {
	rs := DefaultRestart
	var minPos, maxPos Pos
	for _, v := range []*Value{def, own} {
		if v == nil {
			continue
		}
		switch v.Shape {
		case ShapeScalar:
			if p, ok := r.restartPolicy(sc, v, "restart"); ok {
				rs.Policy = p
			}
		case ShapeMap:
			for _, e := range v.Entries {
				what := "restart " + e.Key
				switch e.Key {
				case "policy":
					if p, ok := r.restartPolicy(sc, e.Value, what); ok {
						rs.Policy = p
					}
				case "max_restarts":
					if n, ok := r.integer(sc, e.Value, what); ok {
						if n < 0 {
							r.errorf(e.Value.Pos, "", "restart max_restarts must not be negative, got %d", n)
						} else {
							rs.MaxRestarts = n
						}
					}
				case "within":
					if d, ok := r.duration(sc, e.Value, what); ok {
						if d == 0 {
							r.errorf(e.Value.Pos, "", "restart within must be longer than 0")
						} else {
							rs.Within = d
						}
					}
				case "backoff_min":
					if d, ok := r.duration(sc, e.Value, what); ok {
						rs.BackoffMin, minPos = d, e.Value.Pos
					}
				case "backoff_max":
					if d, ok := r.duration(sc, e.Value, what); ok {
						rs.BackoffMax, maxPos = d, e.Value.Pos
					}
				default:
					r.errorf(e.KeyPos, didYouMean(e.Key, []string{"backoff_max", "backoff_min", "max_restarts", "policy", "within"}), "unknown key %q in restart", e.Key)
				}
			}
		default:
			r.errorf(v.Pos, "", "restart must be no, on-failure, always or a map, got %s", v.Shape)
		}
	}
	if rs.BackoffMin > rs.BackoffMax {
		p := maxPos
		if p.Line == 0 {
			p = minPos
		}
		r.errorf(p, "", "restart backoff_min (%s) is longer than backoff_max (%s)", rs.BackoffMin, rs.BackoffMax)
	}
	return rs
}

// socket resolves one socket of an instance; references and auto binds
// are left to wire.
func (r *resolver) socket(sc scope, n *Node, fs *FileSocket, defOpts []Entry) *isock {
	s := &Socket{Name: fs.Name, Pos: fs.Pos}
	is := &isock{s: s, fs: fs}
	full := n.Base + "." + fs.Name
	if fs.Type == nil {
		if !fs.typos.any("type") {
			r.errorf(fs.Pos, "", "socket %q needs a type", full)
		}
	} else if t, ok := r.str(sc, fs.Type, "type"); ok {
		if st, err := ParseSocketType(t); err != nil {
			r.errorf(fs.Type.Pos, didYouMean(strings.ToUpper(t), socketTypeNames), "%v", err)
		} else {
			s.Type = st
		}
	}
	s.Role = DefaultRole(s.Type)
	if fs.Role != nil {
		if ro, ok := r.str(sc, fs.Role, "role"); ok {
			if role, err := ParseRole(ro); err != nil {
				r.errorf(fs.Role.Pos, "", "%v", err)
			} else {
				s.Role = role
			}
		}
	}
	if fs.Bind == nil && fs.Connect == nil && !fs.typos.any("bind", "connect") {
		r.errorf(fs.Pos, "", "socket %q has neither bind nor connect", full)
	}
	if fs.Bind != nil {
		eps, pos, ok := r.strList(sc, fs.Bind, "bind", true)
		if ok && len(eps) == 0 {
			r.errorf(fs.Bind.Pos, "", "bind of socket %q is an empty list", full)
		}
		for i, ep := range eps {
			if ep == "auto" {
				is.binds = append(is.binds, ibind{auto: true, pos: pos[i]})
				continue
			}
			if _, err := ParseEndpoint(ep, true); err != nil {
				r.errorf(pos[i], "", "%v", err)
				continue
			}
			is.binds = append(is.binds, ibind{ep: ep, pos: pos[i]})
			s.Bind = append(s.Bind, ep)
		}
	}
	if fs.Connect != nil {
		items, pos, ok := r.strList(sc, fs.Connect, "connect", true)
		if ok && len(items) == 0 {
			r.errorf(fs.Connect.Pos, "", "connect of socket %q is an empty list", full)
		}
		for i, it := range items {
			switch {
			case strings.Contains(it, "://"):
				if _, err := ParseEndpoint(it, false); err != nil {
					r.errorf(pos[i], "", "%v", err)
					continue
				}
				is.conns = append(is.conns, iconn{ep: it, pos: pos[i], ok: true})
			case refRE.MatchString(it):
				m := refRE.FindStringSubmatch(it)
				is.conns = append(is.conns, iconn{ref: true, node: m[1], socket: m[2], pos: pos[i]})
				s.Peers = append(s.Peers, it)
			case it == "auto":
				r.errorf(pos[i], "", "connect cannot be auto: name the socket to connect to, as node.socket")
			default:
				r.errorf(pos[i], "", "malformed connect %q: want node.socket or an endpoint such as tcp://127.0.0.1:5555", it)
			}
		}
	}
	if fs.Subscribe != nil {
		if s.Type != "" && s.Type != SUB && s.Type != XSUB {
			r.errorf(fs.Subscribe.Pos, "", "subscribe on %s socket %q: only SUB and XSUB sockets subscribe", s.Type, full)
		}
		if subs, _, ok := r.strList(sc, fs.Subscribe, "subscribe", true); ok && len(subs) > 0 {
			s.Subscribe = subs
		}
	}
	if fs.Identity != nil {
		if id, ok := r.str(sc, fs.Identity, "identity"); ok {
			s.Identity = id
		}
	}
	r.options(sc, is, full, defOpts)
	r.delivery(sc, is, full)
	if fs.Curve != nil {
		is.curve = r.curve(sc, full, fs.Curve)
	}
	return is
}

// options merges the defaults' socket options under the socket's own and
// converts each value to its kind. routing_id (or identity) goes to
// Socket.Identity, which the socket's own identity field sets too.
func (r *resolver) options(sc scope, is *isock, full string, defOpts []Entry) {
	merged := map[string]Entry{}
	fromDefaults := map[string]bool{}
	var order []string
	for i, src := range [][]Entry{defOpts, is.fs.Options} {
		for _, e := range src {
			if _, seen := merged[e.Key]; !seen {
				order = append(order, e.Key)
			}
			merged[e.Key] = e
			fromDefaults[e.Key] = i == 0
		}
	}
	names := sortedKeys(socketOptions)
	var idFrom string
	for _, name := range order {
		e := merged[name]
		kind, ok := socketOptions[name]
		if !ok {
			r.errorf(e.KeyPos, didYouMean(name, names), "unknown socket option %q", name)
			continue
		}
		val, ok := r.optionValue(sc, name, kind, e.Value)
		if !ok {
			continue
		}
		if name == "routing_id" || name == "identity" {
			switch {
			case is.fs.Identity != nil && fromDefaults[name]:
				// the socket's own identity wins over the defaults'
			case is.fs.Identity != nil:
				r.errorf(e.KeyPos, "", "socket %q sets its identity twice: identity and options.%s", full, name)
			case idFrom != "":
				r.errorf(e.KeyPos, "", "socket %q sets its identity twice: options.%s and options.%s", full, idFrom, name)
			default:
				is.s.Identity, idFrom = val.(string), name
			}
			continue
		}
		is.s.Options = append(is.s.Options, Option{Name: name, Value: val})
	}
	sortOptions(is.s.Options)
}

// optionValue converts a socket option's value: ints and durations are C
// ints in libzmq (affinity and maxmsgsize are 64-bit) and may be -1 where
// libzmq takes it ("infinite", "no limit"); 0 means "no limit" for HWMs.
func (r *resolver) optionValue(sc scope, name string, kind OptionKind, v *Value) (any, bool) {
	what := fmt.Sprintf("option %q", name)
	s, ok := r.scalar(sc, v, what, kind.String())
	if !ok {
		return nil, false
	}
	s = strings.TrimSpace(s)
	hi := int64(math.MaxInt32)
	if wideOptions[name] {
		hi = math.MaxInt64
	}
	switch kind {
	case OptBytes:
		return s, true
	case OptBool:
		switch s {
		case "true", "1":
			return 1, true
		case "false", "0":
			return 0, true
		}
		r.errorf(v.Pos, "", "%s must be true or false, got %q", what, s)
	case OptInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			r.errorf(v.Pos, "", "%s must be an integer, got %q", what, s)
			return nil, false
		}
		if n < -1 || n > hi {
			r.errorf(v.Pos, "", "%s is out of range: %d", what, n)
			return nil, false
		}
		return int(n), true
	case OptDuration:
		if s == "-1" {
			return -1, true
		}
		d, err := ParseDuration(s)
		if err != nil {
			r.errorf(v.Pos, "", "%s: %v", what, err)
			return nil, false
		}
		if d < 0 {
			r.errorf(v.Pos, "", "%s must not be negative (only -1, meaning infinite, is), got %s", what, s)
			return nil, false
		}
		if d%time.Millisecond != 0 {
			r.errorf(v.Pos, "", "%s must be a whole number of milliseconds, got %s", what, s)
			return nil, false
		}
		ms := int64(d / time.Millisecond)
		if ms > hi {
			r.errorf(v.Pos, "", "%s is out of range: %s", what, s)
			return nil, false
		}
		return int(ms), true
	}
	return nil, false
}

func (r *resolver) sync(sc scope, n *Node, fs *FileSync) *isync {
	is := &isync{bindPos: fs.Pos, connectPos: fs.Pos}
	sy := &Sync{}
	n.Sync = sy
	if fs.Expect == nil && fs.Connect == nil && fs.Bind == nil && !fs.typos.any("expect", "connect", "bind") {
		r.errorf(fs.Pos, "", "sync of node %q needs expect (wait for peers) or connect (signal a node)", n.Base)
	}
	if fs.Expect != nil {
		if e, ok := r.integer(sc, fs.Expect, "sync expect"); ok {
			if e < 1 {
				r.errorf(fs.Expect.Pos, "", "sync expect must be at least 1, got %d", e)
			}
			sy.Expect = e
		}
		is.bindAuto = true // bind: auto unless it says otherwise
	}
	if fs.Bind != nil {
		is.bindPos = fs.Bind.Pos
		if fs.Expect == nil {
			r.errorf(fs.Bind.Pos, "", "sync bind needs expect: how many peers to wait for")
		}
		if ep, ok := r.str(sc, fs.Bind, "sync bind"); ok {
			if ep == "auto" {
				is.bindAuto = true
			} else if _, err := ParseEndpoint(ep, true); err != nil {
				r.errorf(fs.Bind.Pos, "", "%v", err)
				is.bindAuto = false
			} else {
				is.bindAuto = false
				sy.Bind = ep
			}
		}
	}
	if fs.Connect != nil {
		is.connectPos = fs.Connect.Pos
		if c, ok := r.str(sc, fs.Connect, "sync connect"); ok {
			is.connectNode = c
			sy.ConnectNode = c
		}
	}
	return is
}
