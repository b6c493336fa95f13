package spec

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// LoadOptions are what a load needs from outside the file.
type LoadOptions struct {
	// Env looks up ${VAR}s, overriding the file's vars; nil means
	// os.LookupEnv. It also supplies XDG_RUNTIME_DIR for the default
	// RuntimeDir.
	Env func(key string) (string, bool)
	// RuntimeDir holds the ipc endpoints of `bind: auto`; "" means
	// DefaultRuntimeDir(name), or ShareRuntimeDir(name, Host) for a share.
	RuntimeDir string
	// Host selects the share of one host of the file's `hosts`: the
	// Topology holds only the nodes placed there, and references to nodes
	// on other hosts resolve to those hosts' addresses. "" runs every node
	// on this machine, every reference at loopback.
	Host string
	// CheckExecutables makes the programs of command nodes, exec handlers
	// and plugins errors unless they exist and are executable (PATH from
	// Env), and the modules of wasm handlers unless they compile and
	// export the ABI. Off for a topology checked away from where it runs.
	CheckExecutables bool
	// Kubernetes, a namespace, places the topology on the pods of `ztopo
	// export kubernetes`: a file with hosts keeps its hosts, each reached
	// at its StatefulSet's pod, HOST-0.HOST.NS.svc.cluster.local; a file
	// without hosts gets one host per node instance, NODE-I (the pod of
	// replica I), reached at NODE-I.NODE.NS.svc.cluster.local. Without
	// `ports`, cross-host `bind: auto` takes ports 7000-7999 (every pod
	// has an address of its own). "" leaves the file's placement alone.
	Kubernetes string
	// EnvFiles are env files (`--env-file`, docker compose's format, see
	// ParseEnvFile) whose variables ${VAR} sees after the process
	// environment's and before the file's vars; a later file wins. A file
	// that cannot be read is an error.
	EnvFiles []string
	// DotEnv reads the .env beside the topology file, if there is one,
	// when EnvFiles is empty (docker compose: --env-file replaces .env).
	DotEnv bool
}

func (o LoadOptions) env() func(string) (string, bool) {
	if o.Env != nil {
		return o.Env
	}
	return os.LookupEnv
}

// Load reads, resolves and validates the topology file at path. The
// Topology is nil iff the Diags hold errors; warnings may come either way.
// The Diags are sorted.
func Load(path string, opts LoadOptions) (*Topology, Diags) {
	data, err := ReadTopology(path)
	if err != nil {
		// No line to point at: the position is the file as a whole.
		return nil, Diags{{Pos: Pos{File: path}, Msg: err.Error()}}
	}
	return Parse(path, data, opts)
}

// MaxFileSize is the largest topology file ztopo reads, in bytes.
const MaxFileSize = maxFileSize

// ReadTopology reads a topology file, never more than MaxFileSize+1 bytes
// of it: a device (/dev/zero, /dev/urandom) or a huge file saved over a
// running topology's file costs a stat, not the memory it would fill. Pipes
// (`<(...)`, /dev/stdin) are read through the same limit. The error is a
// sentence without the path, to follow "PATH: ".
func ReadTopology(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read topology: %v", unwrapPathError(err))
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return nil, fmt.Errorf("cannot read topology: is a directory")
	case m&(os.ModeDevice|os.ModeCharDevice|os.ModeSocket) != 0:
		return nil, fmt.Errorf("cannot read topology: not a regular file (%s)", modeKind(m))
	case m.IsRegular() && fi.Size() > maxFileSize:
		return nil, tooLarge(fi.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read topology: %v", unwrapPathError(err))
	}
	defer f.Close()
	return ReadTopologyFrom(f)
}

// ReadTopologyFrom reads a topology from r (stdin, the output of git show)
// through the same limit as ReadTopology.
func ReadTopologyFrom(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read topology: %v", unwrapPathError(err))
	}
	if len(data) > maxFileSize {
		return nil, tooLarge(-1)
	}
	return data, nil
}

func tooLarge(size int64) error {
	if size < 0 {
		return fmt.Errorf("file is too large: more than %d bytes (4 MiB), the most a topology may hold", maxFileSize)
	}
	return fmt.Errorf("file is too large: %d bytes, more than %d (4 MiB), the most a topology may hold", size, maxFileSize)
}

func modeKind(m os.FileMode) string {
	switch {
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return "a socket"
}

// unwrapPathError drops the path from an *os.PathError: the diagnostic
// already starts with it.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Parse is Load for a file already read: filename names it in positions
// and anchors relative paths; it need not exist.
func Parse(filename string, data []byte, opts LoadOptions) (*Topology, Diags) {
	f, ds := ReadFile(filename, data)
	var t *Topology
	if f != nil {
		var rds Diags
		t, rds = Resolve(f, opts)
		ds = append(ds, rds...)
	}
	ds = tidy(ds)
	if ds.HasErrors() {
		return nil, ds
	}
	return t, ds
}

// tidy sorts diagnostics and drops exact duplicates: a mistake in a
// replicated node or in defaults is found once per instance but reported
// once.
func tidy(ds Diags) Diags {
	ds.Sort()
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// DefaultRuntimeDir is where a topology's ipc endpoints and control socket
// live: $XDG_RUNTIME_DIR/ztopo/<name> (a per-user tmpfs on systemd systems),
// else <os.TempDir()>/ztopo-<uid>/<name>.
func DefaultRuntimeDir(name string) string { return runtimeDir(name, os.LookupEnv) }

// ShareRuntimeDir is the runtime directory of one host's share of a
// topology, NAME@HOST beside the directory of the whole: several shares
// may run on one machine (namespaces, containers with a shared /tmp, a
// laptop rehearsing a deployment) without sharing a control socket.
func ShareRuntimeDir(name, host string) string { return runtimeDir(name+"@"+host, os.LookupEnv) }

func runtimeDir(name string, env func(string) (string, bool)) string {
	if d, ok := env("XDG_RUNTIME_DIR"); ok && d != "" {
		return filepath.Join(d, "ztopo", name)
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("ztopo-%d", os.Getuid()), name)
}

// sortInstances orders node instances by base name, then replica index,
// so that worker.2 comes before worker.10.
func sortInstances(nodes []*Node) {
	sort.SliceStable(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.Base != b.Base {
			return a.Base < b.Base
		}
		return a.Replica < b.Replica
	})
}
