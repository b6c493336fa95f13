package engine

import (
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
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

func authFailures(s SocketStats) uint64 { return s.AuthFailures }

// TestTopologies runs every topology of topologies/ to its end and checks
// its message counts exactly (the process node's from its child's last
// report, exact once it has ended) and the summary line of its counting
// sink.
func TestTopologies(t *testing.T) {
	type count struct {
		node, socket string
		f            func(SocketStats) uint64
		want         uint64
	}
	tests := []struct {
		file    string
		counts  []count
		summary string // a line the log must have, if set
		python  bool   // needs /usr/bin/python3 with pyzmq
		keys    bool   // needs the example keys in KEYS
	}{
		{file: "envelope.yaml", counts: []count{
			{"publisher", "out", out, 100},
			{"only-b", "in", in, 50},
			{"everything", "in", in, 100},
		}},
		{file: "identity.yaml", counts: []count{
			{"named", "req", in, 10},
			{"anonymous", "req", in, 5},
			{"worker", "in", in, 15},
			{"worker", "in", out, 15},
		}},
		// END included: the sink stops at it without counting it in its
		// summary.
		{file: "mixed.yaml", counts: []count{
			{"source", "out", out, 1001},
			{"relay", "in", in, 1001},
			{"relay", "out", out, 1001},
			{"sink", "in", in, 1001},
		}, summary: "received 1000 messages in ", python: true},
		{file: "plugins.yaml", counts: []count{
			{"source", "out", out, 10000},
			{"shout", "in", in, 10000},
			{"tidy", "out", out, 10000},
			{"sink", "in", in, 10000},
		}, summary: "received 10000 messages in ", python: true},
		// The filter drops the 700 INFO lines: only the 300 ERROR lines
		// go out.
		{file: "filter.yaml", counts: []count{
			{"errors", "out", out, 300},
			{"infos", "out", out, 700},
			{"keep-errors", "in", in, 1000},
			{"keep-errors", "out", out, 300},
			{"sink", "in", in, 300},
		}, summary: "received 300 messages in "},
		{file: "lbbroker.yaml", counts: []count{
			{"client", "req", out, 20},
			{"client", "req", in, 20},
			{"worker", "in", in, 20},
			{"worker", "in", out, 23}, // 20 replies and 3 READY
		}},
		{file: "paranoid-pirate.yaml", counts: []count{
			{"client", "req", out, 30},
			{"client", "req", in, 30},
		}},
		{file: "at-least-once.yaml", counts: []count{
			{"sink", "in", in, 10000}, // nothing was lost, so nothing was sent again
		}, summary: "received 10000 messages in "},
		// Process workers, CURVE on both edges: the same traffic.
		{file: "secured-lbbroker.yaml", counts: []count{
			{"client", "req", out, 20},
			{"client", "req", in, 20},
			{"worker", "in", in, 20},
			{"worker", "in", out, 23},
			{"broker", "frontend", authFailures, 0},
			{"broker", "backend", authFailures, 0},
		}, keys: true},
		{file: "mtserver.yaml", counts: []count{
			{"client", "req", in, 10},
			{"worker", "in", in, 10},
		}},
		{file: "pair-chain.yaml", counts: []count{
			{"step2", "out", out, 1},
			{"step3", "in", in, 1},
		}},
		{file: "pipeline.yaml", counts: []count{
			{"ventilator", "out", out, 100000},
			{"worker", "in", in, 100000},
			{"sink", "in", in, 100000},
		}},
		{file: "poller.yaml", counts: []count{
			{"worker", "tasks", in, 100},
			{"worker", "control", in, 21}, // 20 ticks and KILL
			{"sink", "in", in, 121},
		}},
		{file: "pubsub-proxy.yaml", counts: []count{
			{"publisher", "out", out, 201},
			{"subscriber", "in", in, 402},
		}},
		{file: "sharedqueue.yaml", counts: []count{
			{"client", "req", in, 30},
			{"worker", "in", in, 30},
		}},
		{file: "syncpub.yaml", counts: []count{
			{"publisher", "out", out, 10001},
			{"subscriber", "in", in, 30003},
		}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			if tc.python {
				testutil.NeedPyzmq(t)
			}
			var vars map[string]string
			if tc.keys {
				vars = map[string]string{"KEYS": testutil.ExampleKeys(t)}
			}
			topo := loadFile(t, topoFile(tc.file), vars)
			for _, n := range topo.Nodes {
				if n.Run == spec.RunProcess && n.Handler.Kind != spec.HandlerCommand {
					needZtopo(t)
				}
			}
			lg, logs := newLogger(t)
			e, err := runTopo(t, topo, Options{Logger: lg, Self: ztopoBin})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.summary != "" && !strings.Contains(logs.String(), tc.summary) {
				t.Errorf("no %q in the log", tc.summary)
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
