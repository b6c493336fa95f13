package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// loadFile loads a topology file with the file's own defaults (no
// environment), ipc endpoints in a short private directory, and every tcp
// port moved to a free one: other packages' tests run the same files at the
// same time.
func loadFile(t *testing.T, path string, vars map[string]string) *spec.Topology {
	t.Helper()
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	topo, ds := spec.Load(path, spec.LoadOptions{Env: env, RuntimeDir: dir})
	if ds.HasErrors() {
		t.Fatalf("load %s:\n%v", path, ds)
	}
	remapTCP(t, topo)
	return topo
}

var tcpPort = regexp.MustCompile(`^tcp://([^:/]+):(\d+)$`)

func remapTCP(t *testing.T, topo *spec.Topology) {
	ports := map[string]string{}
	remap := func(ep string) string {
		m := tcpPort.FindStringSubmatch(ep)
		if m == nil {
			return ep
		}
		p, ok := ports[m[2]]
		if !ok {
			free := zsocktest.TCP(t)
			p = free[strings.LastIndexByte(free, ':')+1:]
			ports[m[2]] = p
		}
		return fmt.Sprintf("tcp://%s:%s", m[1], p)
	}
	all := func(eps []string) {
		for i, ep := range eps {
			eps[i] = remap(ep)
		}
	}
	for _, n := range topo.Nodes {
		for _, s := range n.Sockets {
			all(s.Bind)
			all(s.Connect)
		}
		if n.Sync != nil {
			n.Sync.Bind = remap(n.Sync.Bind)
			n.Sync.Connect = remap(n.Sync.Connect)
		}
	}
}

func topoFile(name string) string { return filepath.Join("..", "..", "topologies", name) }

// sum adds a counter over the instances of a base node.
func sum(e *Engine, base, socket string, f func(SocketStats) uint64) uint64 {
	var total uint64
	for _, st := range e.Status() {
		if st.Node != base {
			continue
		}
		for _, s := range st.Sockets {
			if s.Name == socket {
				total += f(s)
			}
		}
	}
	return total
}

func in(s SocketStats) uint64  { return s.MsgsIn }
func out(s SocketStats) uint64 { return s.MsgsOut }

// TestTopologies runs every goroutine topology of topologies/ to its end and
// checks its message counts exactly.
func TestTopologies(t *testing.T) {
	type count struct {
		node, socket string
		f            func(SocketStats) uint64
		want         uint64
	}
	tests := []struct {
		file   string
		counts []count
	}{
		{"envelope.yaml", []count{
			{"publisher", "out", out, 100},
			{"only-b", "in", in, 50},
			{"everything", "in", in, 100},
		}},
		{"identity.yaml", []count{
			{"named", "req", in, 10},
			{"anonymous", "req", in, 5},
			{"worker", "in", in, 15},
			{"worker", "in", out, 15},
		}},
		{"lbbroker.yaml", []count{
			{"client", "req", out, 20},
			{"client", "req", in, 20},
			{"worker", "in", in, 20},
			{"worker", "in", out, 23}, // 20 replies and 3 READY
		}},
		{"mtserver.yaml", []count{
			{"client", "req", in, 10},
			{"worker", "in", in, 10},
		}},
		{"pair-chain.yaml", []count{
			{"step2", "out", out, 1},
			{"step3", "in", in, 1},
		}},
		{"pipeline.yaml", []count{
			{"ventilator", "out", out, 100000},
			{"worker", "in", in, 100000},
			{"sink", "in", in, 100000},
		}},
		{"poller.yaml", []count{
			{"worker", "tasks", in, 100},
			{"worker", "control", in, 21}, // 20 ticks and KILL
			{"sink", "in", in, 121},
		}},
		{"pubsub-proxy.yaml", []count{
			{"publisher", "out", out, 201},
			{"subscriber", "in", in, 402},
		}},
		{"sharedqueue.yaml", []count{
			{"client", "req", in, 30},
			{"worker", "in", in, 30},
		}},
		{"syncpub.yaml", []count{
			{"publisher", "out", out, 10001},
			{"subscriber", "in", in, 30003},
		}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			topo := loadFile(t, topoFile(tc.file), nil)
			lg, _ := newLogger(t)
			e, err := runTopo(t, topo, Options{Logger: lg})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, c := range tc.counts {
				if got := sum(e, c.node, c.socket, c.f); got != c.want {
					t.Errorf("%s.%s: got %d, want %d", c.node, c.socket, got, c.want)
				}
			}
			for _, st := range e.Status() {
				if st.State != StateCompleted && st.State != StateStopped {
					t.Errorf("%s: state %s", st.Name, st.State)
				}
			}
		})
	}
}
