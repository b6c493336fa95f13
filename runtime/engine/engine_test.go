package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const bound = 40 * time.Second

// newLogger is a test's debug logger; its output shows when the test fails.
func newLogger(t *testing.T) (hclog.Logger, *testutil.Buffer) {
	return testutil.Logger(t, "ztopo")
}

// runTopo runs t to its end (bounded) and returns Run's error.
func runTopo(t *testing.T, topo *spec.Topology, opts Options) (*Engine, error) {
	t.Helper()
	e, err := New(topo, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			for _, st := range e.Status() {
				t.Logf("%s %s %+v", st.Name, st.State, st.Sockets)
			}
			t.Fatalf("topology did not complete within %v", bound)
		}
		return e, err
	case <-time.After(bound + 30*time.Second):
		t.Fatal("Run hangs")
		return nil, nil
	}
}

func sock(name string, typ spec.SocketType, bind, connect []string) *spec.Socket {
	return &spec.Socket{Name: name, Type: typ, Bind: bind, Connect: connect}
}

func builtinNode(name, h string, cfg map[string]any, socks ...*spec.Socket) *spec.Node {
	if cfg == nil {
		cfg = map[string]any{}
	}
	base, replica := name, 0
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base = name[:i]
		fmt.Sscan(name[i+1:], &replica)
	}
	return &spec.Node{Name: name, Base: base, Replica: replica, Replicas: 1,
		Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: h}, Config: cfg,
		Run: spec.RunGoroutine, Sockets: socks}
}

func list(s ...string) []string { return s }

// pipeline: generate(n) -> workers x forward -> count(expect n).
func pipeline(n, workers int, ventEP, sinkEP string) *spec.Topology {
	topo := &spec.Topology{Version: 1, Name: "pipeline"}
	topo.Nodes = append(topo.Nodes, builtinNode("ventilator", "generate", map[string]any{"count": n, "size": 16},
		sock("out", spec.PUSH, list(ventEP), nil)))
	for i := 0; i < workers; i++ {
		topo.Nodes = append(topo.Nodes, builtinNode(fmt.Sprintf("worker.%d", i), "forward", nil,
			sock("in", spec.PULL, nil, list(ventEP)),
			sock("out", spec.PUSH, nil, list(sinkEP))))
	}
	topo.Nodes = append(topo.Nodes, builtinNode("sink", "count", map[string]any{"expect": n},
		sock("in", spec.PULL, list(sinkEP), nil)))
	return topo
}

func statusOf(e *Engine, name string) InstanceStatus {
	for _, s := range e.Status() {
		if s.Name == name {
			return s
		}
	}
	return InstanceStatus{}
}

func TestPipelineCompletes(t *testing.T) {
	const n = 10000
	for _, tc := range []struct{ name, vent, sink string }{
		{"tcp", "", ""},
		{"ipc", "ipc", "ipc"},
		{"inproc", "inproc://vent", "inproc://sink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vent, sink := tc.vent, tc.sink
			switch tc.name {
			case "tcp":
				vent, sink = zsocktest.TCP(t), zsocktest.TCP(t)
			case "ipc":
				vent, sink = zsocktest.IPC(t, "vent"), zsocktest.IPC(t, "sink")
			}
			lg, logs := newLogger(t)
			e, err := runTopo(t, pipeline(n, 4, vent, sink), Options{Logger: lg})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			st := statusOf(e, "sink")
			if st.State != StateCompleted {
				t.Errorf("sink state: got %s, want completed", st.State)
			}
			if got := st.Sockets[0].MsgsIn; got != n {
				t.Errorf("sink received %d, want %d", got, n)
			}
			var fwd uint64
			for i := 0; i < 4; i++ {
				w := statusOf(e, fmt.Sprintf("worker.%d", i))
				if w.State != StateStopped {
					t.Errorf("worker.%d state: got %s, want stopped", i, w.State)
				}
				fwd += w.Sockets[0].MsgsIn
			}
			if fwd != n {
				t.Errorf("workers received %d in all, want %d", fwd, n)
			}
			if v := statusOf(e, "ventilator"); v.State != StateCompleted || v.Sockets[0].MsgsOut != n || v.Sockets[0].BytesOut != 16*n {
				t.Errorf("ventilator: %+v", v)
			}
			if !strings.Contains(logs.String(), fmt.Sprintf("received %d messages in ", n)) {
				t.Errorf("no summary line in the log")
			}
		})
	}
}
