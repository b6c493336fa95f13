package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

// pipeline is a resolved ventilator -> worker ×2 -> sink, built by hand:
// worker.*.in connects ventilator.out by reference, worker.*.out connects
// sink.in by a literal endpoint.
func pipeline() *spec.Topology {
	sock := func(name string, t spec.SocketType, bind, connect, peers []string) *spec.Socket {
		return &spec.Socket{Name: name, Type: t, Role: spec.DefaultRole(t), Bind: bind, Connect: connect, Peers: peers}
	}
	t := &spec.Topology{Version: 1, Name: "pipe"}
	t.Nodes = append(t.Nodes,
		&spec.Node{Name: "sink", Base: "sink", Replicas: 1, Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "count"},
			Sockets: []*spec.Socket{sock("in", spec.PULL, []string{"tcp://*:5558"}, nil, nil)}},
		&spec.Node{Name: "ventilator", Base: "ventilator", Replicas: 1, Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "generate"},
			Sockets: []*spec.Socket{sock("out", spec.PUSH, []string{"tcp://127.0.0.1:5557"}, nil, nil)}},
	)
	for i := 0; i < 2; i++ {
		t.Nodes = append(t.Nodes, &spec.Node{Name: fmt.Sprintf("worker.%d", i), Base: "worker", Replica: i, Replicas: 2,
			Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: "forward"},
			Sockets: []*spec.Socket{
				sock("in", spec.PULL, nil, []string{"tcp://127.0.0.1:5557"}, []string{"ventilator.out"}),
				sock("out", spec.PUSH, nil, []string{"tcp://localhost:5558"}, nil),
			}})
	}
	return t
}

func status() control.StatusReply {
	type sock = control.SocketStatus
	return control.StatusReply{Name: "pipe", Nodes: []control.InstanceStatus{
		{Name: "sink", Node: "sink", State: "running", Sockets: []sock{{Name: "in", RateIn: 30}}},
		{Name: "ventilator", Node: "ventilator", State: "completed", Sockets: []sock{{Name: "out", RateOut: 30, SendErrors: 2}}},
		{Name: "worker.0", Node: "worker", State: "running", Restarts: 1, Sockets: []sock{{Name: "in", RateIn: 10}, {Name: "out", RateOut: 10}}},
		{Name: "worker.1", Node: "worker", State: "restarting", Restarts: 2, Sockets: []sock{{Name: "in", RateIn: 20}, {Name: "out", RateOut: 20}}},
	}}
}

func TestEdgeRates(t *testing.T) {
	got := edgeRates(pipeline(), status())
	want := []edgeRate{{A: "worker", B: "sink", Rate: 30}, {A: "worker", B: "ventilator", Rate: 30}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestNodesOf(t *testing.T) {
	nodes := nodesOf(status())
	var worker nodeView
	for _, n := range nodes {
		if n.Name == "worker" {
			worker = n
		}
	}
	// A restarting instance colours the node before a running one.
	if worker.State != "restarting" || worker.Instances != 2 || worker.Restarts != 3 || worker.RateIn != 30 || worker.States["running"] != 1 {
		t.Fatalf("worker: got %+v, want restarting, 2 instances, 3 restarts, 30/s in, 1 running", worker)
	}
	if len(nodes) != 3 || nodes[0].Name != "sink" || nodes[1].Name != "ventilator" || nodes[1].SendErrors != 2 {
		t.Fatalf("got %+v", nodes)
	}
}

func newTestServer(t *testing.T, topo *spec.Topology) *httptest.Server {
	t.Helper()
	s := New(Source{Topology: func() *spec.Topology { return topo }, Status: status}, hclog.NewNullLogger())
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func TestGraphAndNode(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("no graphviz dot on PATH")
	}
	srv := newTestServer(t, pipeline())
	res, err := http.Get(srv.URL + "/graph.svg")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"<title>sink</title>", "<title>ventilator</title>", "<title>worker</title>", "<title>worker&#45;&gt;sink</title>"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("graph.svg lacks %s", want)
		}
	}
	res, err = http.Get(srv.URL + "/node?name=worker")
	if err != nil {
		t.Fatal(err)
	}
	var d nodeDetail
	json.NewDecoder(res.Body).Decode(&d)
	res.Body.Close()
	if len(d.Instances) != 2 || d.Instances[1].Name != "worker.1" || d.Instances[1].Sockets[1].Connect[0] != "tcp://localhost:5558" {
		t.Fatalf("node detail: %+v", d)
	}
	res, _ = http.Get(srv.URL + "/node?name=nope")
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown node: status %d, want 404", res.StatusCode)
	}
}

// TestEventsStream reads two status events: the stream sends one a second,
// each with the graph version and the node and edge summaries.
func TestEventsStream(t *testing.T) {
	srv := newTestServer(t, pipeline())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	events := 0
	for events < 2 && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var u update
		if err := json.Unmarshal([]byte(data), &u); err != nil {
			t.Fatal(err)
		}
		if u.Graph == "" || len(u.Nodes) != 3 || len(u.Edges) != 2 {
			t.Fatalf("event %d: %s", events, data)
		}
		events++
	}
	if events != 2 {
		t.Fatalf("got %d events, want 2 (%v)", events, sc.Err())
	}
}

// BenchmarkSnapshot is what one connected page costs `up` a second.
func BenchmarkSnapshot(b *testing.B) {
	topo := pipeline()
	s := New(Source{Topology: func() *spec.Topology { return topo }, Status: status}, hclog.NewNullLogger())
	s.snapshot() // the graph is rendered once per topology
	b.ReportAllocs()
	for b.Loop() {
		json.Marshal(s.snapshot())
	}
}
