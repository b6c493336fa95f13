package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// File is a topology file as written: its structure checked (known keys,
// maps where maps belong), its values still raw and uninterpolated, every
// element with its position. Resolve turns it into a Topology.
type File struct {
	Filename string // as given to Parse; every Pos names it
	Pos      Pos    // the top-level map
	Version  *Value
	Name     *Value
	Vars     []Entry // name -> scalar, file order
	Defaults *FileDefaults
	Nodes    []*FileNode // file order
	NodesPos Pos         // the `nodes` key
	Hosts    []*FileHost // file order; nil without `hosts`
	HostsPos Pos         // the `hosts` key
	Ports    *FilePorts  // nil without `ports`
	Security *FileSecurity
}

// FileSecurity is the `security` block as written.
type FileSecurity struct {
	Pos     Pos
	Keys    *Value
	Require *Value
}

// FileDefaults is the `defaults` block.
type FileDefaults struct {
	Pos     Pos
	Run     *Value
	Restart *Value
	Host    *Value
	Options []Entry // option name -> value
}

// FileNode is one entry of `nodes` as written.
type FileNode struct {
	Name     string
	Pos      Pos // the node's key
	Handler  *Value
	Command  *Value
	Config   *Value
	Run      *Value
	Replicas *Value
	Restart  *Value
	Host     *Value
	Env      *Value        // the `env` map, checked by the resolver
	EnvPos   Pos           // the `env` key
	Sockets  []*FileSocket // file order
	Sync     *FileSync
	typos    typos
}

// FileSocket is one entry of a node's `sockets` as written.
type FileSocket struct {
	Name      string
	Pos       Pos // the socket's key
	Type      *Value
	Bind      *Value
	Connect   *Value
	Subscribe *Value
	Identity  *Value
	Role      *Value
	Options   []Entry
	// Delivery and AckTimeout: `delivery: at-least-once` and its
	// `ack_timeout` (SPEC §7).
	Delivery   *Value
	AckTimeout *Value
	Curve      *Value // the `curve` map, checked by the resolver
	typos      typos
}

// FileSync is a node's `sync` block as written.
type FileSync struct {
	Pos     Pos
	Expect  *Value
	Bind    *Value
	Connect *Value
	typos   typos
}

// nameRE is what topology, node and socket names look like: they end up in
// ipc paths, inproc names, env var names and log keys.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidName tells whether s is a valid topology, node or socket name:
// [a-z0-9][a-z0-9_-]*.
func ValidName(s string) bool { return nameRE.MatchString(s) }

var (
	topKeys      = []string{"defaults", "hosts", "name", "nodes", "ports", "security", "vars", "version"}
	securityKeys = []string{"keys", "require"}
	defaultsKeys = []string{"host", "options", "restart", "run"}
	nodeKeys     = []string{"command", "config", "env", "handler", "host", "replicas", "restart", "run", "sockets", "sync"}
	socketKeys   = []string{"ack_timeout", "bind", "connect", "curve", "delivery", "identity", "options", "role", "subscribe", "type"}
	syncKeys     = []string{"bind", "connect", "expect"}
)

// ReadFile parses data (the contents of filename) into the File model,
// reporting YAML errors, duplicate and unknown keys, and misplaced shapes.
// The File is nil when the YAML could not be read at all.
func ReadFile(filename string, data []byte) (*File, Diags) {
	root, ds := parseYAML(filename, data)
	if root == nil {
		return nil, ds
	}
	d := &decoder{diags: ds}
	f := d.file(filename, root)
	return f, d.diags
}

type decoder struct{ diags Diags }

func (d *decoder) errorf(p Pos, hint, format string, args ...any) {
	d.diags = append(d.diags, Diag{Pos: p, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// fields walks the entries of a map, reporting keys not in known (with a
// suggestion) and calling set for the others. It returns the known keys
// that misspelt keys were taken for, so that "missing handler" is not
// reported on top of "unknown key handlr (did you mean handler?)".
func (d *decoder) fields(m *Value, where string, known []string, set func(e Entry)) typos {
	return d.fieldsHint(m, where, known, "", set)
}

// values is fields for a block of plain values: the entry of a key in vals
// is stored where vals points, a null taken as absent (`handler:` and
// nothing is a half-written line); set, if not nil, gets the other entries.
func (d *decoder) values(m *Value, where string, known []string, vals map[string]**Value, set func(e Entry)) typos {
	return d.fields(m, where, known, func(e Entry) {
		if p, ok := vals[e.Key]; ok {
			if !e.Value.IsNull() {
				*p = e.Value
			}
		} else if set != nil {
			set(e)
		}
	})
}

// fieldsHint is fields with a hint for unknown keys that resemble nothing.
func (d *decoder) fieldsHint(m *Value, where string, known []string, fallback string, set func(e Entry)) typos {
	var t typos
	for _, e := range m.Entries {
		if !contains(known, e.Key) {
			c, ok := closest(e.Key, known)
			hint := fallback
			if ok {
				hint = fmt.Sprintf("did you mean %q?", c)
				if t == nil {
					t = typos{}
				}
				t[c] = true
			}
			d.errorf(e.KeyPos, hint, "unknown key %q in %s", e.Key, where)
			continue
		}
		set(e)
	}
	return t
}

// typos is the set of known keys that unknown keys were probably meant as.
type typos map[string]bool

// any reports whether any of keys was probably misspelt.
func (t typos) any(keys ...string) bool {
	for _, k := range keys {
		if t[k] {
			return true
		}
	}
	return false
}

// isMap reports whether v is a map, else reports it. A null counts as an
// empty map for blocks that may be written empty.
func (d *decoder) isMap(v *Value, what string) bool {
	if v.Shape == ShapeMap {
		return true
	}
	if v.Shape != ShapeNull {
		d.errorf(v.Pos, "", "%s must be a map, got %s", what, v.Shape)
	}
	return false
}

// entries is map v's entries; none when v is not a map (reported, as
// isMap does).
func (d *decoder) entries(v *Value, what string) []Entry {
	if !d.isMap(v, what) {
		return nil
	}
	return v.Entries
}

// eachEntry decodes each entry of map v (what names it in the error when v
// is not a map) with decode.
func eachEntry[T any](d *decoder, v *Value, what string, decode func(Entry) T) []T {
	if !d.isMap(v, what) {
		return nil
	}
	var out []T
	for _, e := range v.Entries {
		out = append(out, decode(e))
	}
	return out
}

func (d *decoder) file(filename string, root *Value) *File {
	f := &File{Filename: filename, Pos: root.Pos, NodesPos: root.Pos}
	if root.Shape != ShapeMap {
		d.errorf(root.Pos, "", "a topology must be a map with version, name and nodes, got %s", root.Shape)
		return f
	}
	// Top-level keys starting with "x-" are the author's own (as in
	// docker compose): a place for anchors to merge elsewhere.
	user := &Value{Shape: ShapeMap, Pos: root.Pos}
	for _, e := range root.Entries {
		if !strings.HasPrefix(e.Key, "x-") {
			user.Entries = append(user.Entries, e)
		}
	}
	typo := d.fieldsHint(user, "the topology", topKeys, `keys of your own must start with "x-"`, func(e Entry) {
		switch e.Key {
		case "version":
			f.Version = e.Value
		case "name":
			f.Name = e.Value
		case "vars":
			f.Vars = d.entries(e.Value, "vars")
		case "defaults":
			if d.isMap(e.Value, "defaults") {
				f.Defaults = d.defaults(e.Value)
			}
		case "hosts":
			f.HostsPos = e.KeyPos
			f.Hosts = eachEntry(d, e.Value, "hosts", d.host)
		case "ports":
			if d.isMap(e.Value, "ports") {
				f.Ports = d.ports(e.Value)
			}
		case "security":
			if d.isMap(e.Value, "security") {
				f.Security = d.security(e.Value)
			}
		case "nodes":
			f.NodesPos = e.KeyPos
			f.Nodes = eachEntry(d, e.Value, "nodes", d.node)
		}
	})
	for _, req := range []struct {
		key string
		v   any
	}{{"version", f.Version}, {"name", f.Name}} {
		if v, _ := req.v.(*Value); v == nil && !typo[req.key] {
			d.errorf(root.Pos, "", "missing required key %q", req.key)
		}
	}
	if root.Get("nodes") == nil && !typo["nodes"] {
		d.errorf(root.Pos, "", "missing required key %q", "nodes")
	} else if len(f.Nodes) == 0 {
		d.errorf(f.NodesPos, "", "nodes is empty: a topology needs at least one node")
	}
	return f
}

func (d *decoder) defaults(v *Value) *FileDefaults {
	def := &FileDefaults{Pos: v.Pos}
	_ = d.fields(v, "defaults", defaultsKeys, func(e Entry) {
		switch e.Key {
		case "run":
			def.Run = e.Value
		case "restart":
			def.Restart = e.Value
		case "host":
			def.Host = e.Value
		case "options":
			def.Options = d.entries(e.Value, "defaults.options")
		}
	})
	return def
}

func (d *decoder) node(e Entry) *FileNode {
	n := &FileNode{Name: e.Key, Pos: e.KeyPos}
	if !nameRE.MatchString(e.Key) {
		d.errorf(e.KeyPos, "", "bad node name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", e.Key)
	}
	// A null node (`worker:` and nothing) is reported by the resolver
	// as lacking a handler.
	if !d.isMap(e.Value, fmt.Sprintf("node %q", e.Key)) {
		return n
	}
	where := fmt.Sprintf("node %q", e.Key)
	// A null `handler:` is absent, so that the "needs a handler" check
	// points at the node; a null config or sockets is kept.
	n.typos = d.values(e.Value, where, nodeKeys, map[string]**Value{
		"handler": &n.Handler, "command": &n.Command, "run": &n.Run,
		"replicas": &n.Replicas, "restart": &n.Restart, "host": &n.Host,
	}, func(f Entry) {
		v := f.Value
		switch f.Key {
		case "config":
			n.Config = v
		case "env":
			if !v.IsNull() {
				n.Env, n.EnvPos = v, f.KeyPos
			}
		case "sockets":
			n.Sockets = eachEntry(d, v, fmt.Sprintf("sockets of node %q", e.Key), func(se Entry) *FileSocket {
				return d.socket(e.Key, se)
			})
		case "sync":
			if d.isMap(v, fmt.Sprintf("sync of node %q", e.Key)) {
				n.Sync = d.sync(e.Key, v)
			}
		}
	})
	return n
}

func (d *decoder) socket(node string, e Entry) *FileSocket {
	s := &FileSocket{Name: e.Key, Pos: e.KeyPos}
	if !nameRE.MatchString(e.Key) {
		d.errorf(e.KeyPos, "", "bad socket name %q: use lower-case letters, digits, '-' and '_', starting with a letter or digit", e.Key)
	}
	where := fmt.Sprintf("socket %q", node+"."+e.Key)
	if !d.isMap(e.Value, where) {
		if e.Value.Shape == ShapeNull {
			d.errorf(e.KeyPos, "", "%s is empty: it needs a type and a bind or connect", where)
		}
		return s
	}
	// A null options or curve is absent too: neither is a map.
	s.typos = d.values(e.Value, where, socketKeys, map[string]**Value{
		"type": &s.Type, "bind": &s.Bind, "connect": &s.Connect,
		"subscribe": &s.Subscribe, "identity": &s.Identity, "role": &s.Role,
		"delivery": &s.Delivery, "ack_timeout": &s.AckTimeout,
	}, func(f Entry) {
		v := f.Value
		switch f.Key {
		case "options":
			s.Options = d.entries(v, "options of "+where)
		case "curve":
			if d.isMap(v, "curve of "+where) {
				s.Curve = v
			}
		}
	})
	return s
}

func (d *decoder) security(v *Value) *FileSecurity {
	sec := &FileSecurity{Pos: v.Pos}
	_ = d.values(v, "security", securityKeys, map[string]**Value{"keys": &sec.Keys, "require": &sec.Require}, nil)
	return sec
}

func (d *decoder) sync(node string, v *Value) *FileSync {
	s := &FileSync{Pos: v.Pos}
	s.typos = d.values(v, fmt.Sprintf("sync of node %q", node), syncKeys, map[string]**Value{
		"expect": &s.Expect, "bind": &s.Bind, "connect": &s.Connect,
	}, nil)
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
