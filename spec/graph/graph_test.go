package graph

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	// The builtins register their schemas, which tell the brokers' shape.
	_ "github.com/ztopo/ztopo/runtime/handler/builtin"
	"github.com/ztopo/ztopo/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func builtin(name string) spec.HandlerRef {
	return spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: name}
}

// replicate expands a node into n instances the way the loader does.
func replicate(n spec.Node, count int, perReplica func(i int, n *spec.Node)) []*spec.Node {
	var out []*spec.Node
	for i := 0; i < count; i++ {
		c := n
		c.Name = n.Base
		if count > 1 {
			c.Name = n.Base + "." + string(rune('0'+i))
		}
		c.Replica, c.Replicas = i, count
		c.Sockets = nil
		for _, s := range n.Sockets {
			cs := *s
			c.Sockets = append(c.Sockets, &cs)
		}
		if perReplica != nil {
			perReplica(i, &c)
		}
		out = append(out, &c)
	}
	return out
}

func topo(name string, nodes ...[]*spec.Node) *spec.Topology {
	t := &spec.Topology{Version: 1, Name: name, File: "/src/" + name + ".yaml", Dir: "/src", RuntimeDir: "/run/ztopo/" + name}
	for _, ns := range nodes {
		t.Nodes = append(t.Nodes, ns...)
	}
	return t
}

func pipeline() *spec.Topology {
	return topo("pipeline",
		replicate(spec.Node{Base: "ventilator", Handler: builtin("generate"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Bind: []string{"tcp://127.0.0.1:5557"}}}}, 1, nil),
		replicate(spec.Node{Base: "worker", Handler: builtin("forward"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{
				{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Connect: []string{"tcp://127.0.0.1:5557"}, Peers: []string{"ventilator.out"}},
				{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Connect: []string{"inproc://pipeline/sink.in"}, Peers: []string{"sink.in"}},
			}}, 4, nil),
		replicate(spec.Node{Base: "sink", Handler: builtin("count"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Bind: []string{"inproc://pipeline/sink.in"}}}}, 1, nil),
	)
}

// everything exercises each shape, external endpoints on both sides,
// literal connects that match an in-file bind, sync edges and
// request-reply edges.
func everything() *spec.Topology {
	rt := "/run/ztopo/everything"
	return topo("everything",
		replicate(spec.Node{Base: "broker", Handler: builtin("proxy"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{
				{Name: "backend", Type: spec.DEALER, Role: spec.RoleInOut, Bind: []string{"ipc://" + rt + "/broker.backend"}},
				{Name: "frontend", Type: spec.ROUTER, Role: spec.RoleInOut, Bind: []string{"tcp://*:5555"}},
			}}, 1, nil),
		replicate(spec.Node{Base: "echo-worker", Handler: builtin("echo"), Run: spec.RunProcess,
			Sockets: []*spec.Socket{{Name: "in", Type: spec.REP, Role: spec.RoleInOut, Connect: []string{"ipc://" + rt + "/broker.backend"}, Peers: []string{"broker.backend"}}}}, 2,
			func(i int, n *spec.Node) { n.Sockets[0].Identity = "worker-" + string(rune('0'+i)) }),
		replicate(spec.Node{Base: "client", Handler: spec.HandlerRef{Kind: spec.HandlerCommand, Argv: []string{"/usr/bin/python3", "/src/py/client.py"}}, Run: spec.RunProcess,
			Sockets: []*spec.Socket{{Name: "req", Type: spec.REQ, Role: spec.RoleInOut, Connect: []string{"tcp://127.0.0.1:5555"}}}}, 1, nil),
		replicate(spec.Node{Base: "publisher", Handler: builtin("generate"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "out", Type: spec.PUB, Role: spec.RoleOut, Bind: []string{"tcp://127.0.0.1:5561", "ipc:///tmp/feed"}}},
			Sync:    &spec.Sync{Expect: 3, Bind: "tcp://127.0.0.1:5562"}}, 1, nil),
		replicate(spec.Node{Base: "upper", Handler: spec.HandlerRef{Kind: spec.HandlerExec, Argv: []string{"/usr/bin/tr", "a-z", "A-Z"}}, Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{
				{Name: "in", Type: spec.SUB, Role: spec.RoleIn, Connect: []string{"tcp://127.0.0.1:5561", "ipc:///tmp/feed", "tcp://10.0.0.7:6000"}, Peers: []string{"publisher.out"}, Subscribe: []string{""}},
				{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Bind: []string{"inproc://everything/upper.out"}},
			}}, 1, nil),
		replicate(spec.Node{Base: "sub", Handler: spec.HandlerRef{Kind: spec.HandlerPlugin, Path: "/src/plugins/count-v2"}, Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "in", Type: spec.SUB, Role: spec.RoleIn, Connect: []string{"tcp://127.0.0.1:5561"}, Peers: []string{"publisher.out"}, Subscribe: []string{"B"}}},
			Sync:    &spec.Sync{Connect: "tcp://127.0.0.1:5562", ConnectNode: "publisher"}}, 3, nil),
		replicate(spec.Node{Base: "shout", Handler: spec.HandlerRef{Kind: spec.HandlerWasm, Path: "/src/wasm/upper.wasm"}, Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Role: spec.RoleIn, Connect: []string{"inproc://everything/upper.out"}, Peers: []string{"upper.out"}}}}, 1, nil),
		replicate(spec.Node{Base: "lonely", Handler: builtin("echo"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "rep", Type: spec.REP, Role: spec.RoleInOut, Bind: []string{"tcp://*:5590"}}},
			Sync:    &spec.Sync{Expect: 1, Bind: "tcp://127.0.0.1:5591"}}, 1, nil),
		replicate(spec.Node{Base: "pair", Handler: builtin("log"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "a", Type: spec.PUB, Role: spec.RoleOut, Connect: []string{"tcp://127.0.0.1:5561"}}}}, 1, nil),
	)
}

// hosts is the pipeline placed on three hosts.
func hosts() *spec.Topology {
	t := pipeline()
	t.Name = "hosts"
	t.Hosts = []spec.Host{{Name: "core", Address: "10.0.0.2"}, {Name: "edge", Address: "10.0.0.1"}, {Name: "store", Address: "store.internal"}}
	for _, n := range t.Nodes {
		switch n.Base {
		case "ventilator":
			n.Host = "edge"
		case "worker":
			n.Host = "core"
		default:
			n.Host = "store"
		}
	}
	return t
}

// replicaPorts has replicas that bind one port each (a port written
// tcp://127.0.0.1:65${REPLICA}0): every replica's endpoint must show, on
// the edge to the node that connects to them and on the endpoint node of
// a socket nobody in the file connects to (6 of them: two lines).
func replicaPorts() *spec.Topology {
	port := func(base, i int) string { return "tcp://127.0.0.1:" + strconv.Itoa(base+10*i) }
	return topo("replica-ports",
		replicate(spec.Node{Base: "worker", Handler: builtin("forward"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "out", Type: spec.PUSH, Role: spec.RoleOut}}}, 2,
			func(i int, n *spec.Node) { n.Sockets[0].Bind = []string{port(6500, i)} }),
		replicate(spec.Node{Base: "sink", Handler: builtin("count"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Role: spec.RoleIn,
				Connect: []string{port(6500, 0), port(6500, 1)}, Peers: []string{"worker.out"}}}}, 1, nil),
		replicate(spec.Node{Base: "server", Handler: builtin("echo"), Run: spec.RunProcess,
			Sockets: []*spec.Socket{{Name: "api", Type: spec.REP, Role: spec.RoleInOut}}}, 6,
			func(i int, n *spec.Node) { n.Sockets[0].Bind = []string{port(7000, i)} }),
		replicate(spec.Node{Base: "tail", Handler: builtin("log"), Run: spec.RunGoroutine,
			Sockets: []*spec.Socket{{Name: "in", Type: spec.SUB, Role: spec.RoleIn, Subscribe: []string{""}}}}, 2,
			func(i int, n *spec.Node) { n.Sockets[0].Connect = []string{port(8000, i), "tcp://127.0.0.1:6500"} }),
	)
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		topo *spec.Topology
	}{
		{"pipeline", pipeline()},
		{"hosts", hosts()},
		{"everything", everything()},
		{"empty", topo("empty")},
		{"replica-ports", replicaPorts()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				ext    string
				render func(*spec.Topology) string
			}{{"dot", DOT}, {"mmd", Mermaid}} {
				got := f.render(tc.topo)
				if again := f.render(tc.topo); again != got {
					t.Fatalf("%s output is not deterministic:\n%s\nthen\n%s", f.ext, got, again)
				}
				path := filepath.Join("testdata", tc.name+"."+f.ext)
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
				}
			}
		})
	}
}

func TestDOTRenders(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("graphviz is not installed")
	}
	for _, tp := range []*spec.Topology{pipeline(), everything(), topo("empty"), hosts(), replicaPorts()} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(DOT(tp))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		if err != nil || errb.Len() > 0 {
			t.Fatalf("%s: dot -Tsvg: %v: %s", tp.Name, err, errb.String())
		}
		if !strings.Contains(out.String(), "<svg") {
			t.Fatalf("%s: dot -Tsvg wrote no svg: %.200s", tp.Name, out.String())
		}
	}
}

func TestNilTopology(t *testing.T) {
	if got, want := DOT(nil), "digraph \"\" {\n\trankdir=LR;\n\tnodesep=0.4;\n\tnode [fontname=\"Helvetica\", fontsize=11, style=rounded];\n\tedge [fontname=\"Helvetica\", fontsize=9, labelfontsize=8];\n}\n"; got != want {
		t.Errorf("DOT(nil): got %q, want %q", got, want)
	}
	if got, want := Mermaid(nil), "flowchart LR\n"; got != want {
		t.Errorf("Mermaid(nil): got %q, want %q", got, want)
	}
}

func TestFlow(t *testing.T) {
	cases := []struct {
		a, b  spec.Role
		flow  flow
		first bool
	}{
		{spec.RoleOut, spec.RoleIn, flowForward, true},
		{spec.RoleOut, spec.RoleInOut, flowForward, true},
		{spec.RoleIn, spec.RoleOut, flowForward, false},
		{spec.RoleIn, spec.RoleInOut, flowForward, false},
		{spec.RoleInOut, spec.RoleIn, flowForward, true},
		{spec.RoleInOut, spec.RoleOut, flowForward, false},
		{spec.RoleInOut, spec.RoleInOut, flowBoth, true},
		{spec.RoleOut, spec.RoleOut, flowNone, true},
		{spec.RoleIn, spec.RoleIn, flowNone, true},
	}
	for _, tc := range cases {
		f, first := flowOf(tc.a, tc.b)
		if f != tc.flow || first != tc.first {
			t.Errorf("flowOf(%s, %s): got %d %v, want %d %v", tc.a, tc.b, f, first, tc.flow, tc.first)
		}
	}
}
