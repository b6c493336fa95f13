package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/spec"
)

// TestScrapeFigures checks the exposition of a hand-made snapshot, series by
// series, over HTTP.
func TestScrapeFigures(t *testing.T) {
	snap := Snapshot{
		Instances: []engine.InstanceStatus{
			{
				Name: "sink", Node: "sink", State: engine.StateCompleted,
				Sockets: []engine.SocketStats{{Name: "in", MsgsIn: 1000, BytesIn: 16000}},
			},
			{
				Name: "worker.1", Node: "worker", State: engine.StateFailed, Restarts: 3,
				Sockets: []engine.SocketStats{
					{Name: "in", MsgsIn: 7, BytesIn: 70},
					{Name: "out", MsgsOut: 5, BytesOut: 50, SendErrors: 2},
				},
			},
		},
		Reloads: Reloads{Applied: 4, Rejected: 2, Failed: 1},
	}
	srv := httptest.NewServer(Handler(func() Snapshot { return snap }))
	defer srv.Close()

	want := `
# HELP ztopo_node_restarts_total Restarts of a node instance under its restart policy.
# TYPE ztopo_node_restarts_total counter
ztopo_node_restarts_total{node="sink"} 0
ztopo_node_restarts_total{node="worker.1"} 3
# HELP ztopo_node_state 1 for the current state of a node instance, 0 for the other states.
# TYPE ztopo_node_state gauge
ztopo_node_state{node="sink",state="completed"} 1
ztopo_node_state{node="sink",state="failed"} 0
ztopo_node_state{node="sink",state="restarting"} 0
ztopo_node_state{node="sink",state="running"} 0
ztopo_node_state{node="sink",state="stalled"} 0
ztopo_node_state{node="sink",state="starting"} 0
ztopo_node_state{node="sink",state="stopped"} 0
ztopo_node_state{node="worker.1",state="completed"} 0
ztopo_node_state{node="worker.1",state="failed"} 1
ztopo_node_state{node="worker.1",state="restarting"} 0
ztopo_node_state{node="worker.1",state="running"} 0
ztopo_node_state{node="worker.1",state="stalled"} 0
ztopo_node_state{node="worker.1",state="starting"} 0
ztopo_node_state{node="worker.1",state="stopped"} 0
# HELP ztopo_reloads_total Reloads of the topology file by outcome: applied, rejected (invalid file) or failed (rolled back).
# TYPE ztopo_reloads_total counter
ztopo_reloads_total{result="applied"} 4
ztopo_reloads_total{result="failed"} 1
ztopo_reloads_total{result="rejected"} 2
# HELP ztopo_socket_bytes_total Bytes of message frames received (direction=in) or sent (direction=out) on a socket of a node instance.
# TYPE ztopo_socket_bytes_total counter
ztopo_socket_bytes_total{direction="in",node="sink",socket="in"} 16000
ztopo_socket_bytes_total{direction="in",node="worker.1",socket="in"} 70
ztopo_socket_bytes_total{direction="in",node="worker.1",socket="out"} 0
ztopo_socket_bytes_total{direction="out",node="sink",socket="in"} 0
ztopo_socket_bytes_total{direction="out",node="worker.1",socket="in"} 0
ztopo_socket_bytes_total{direction="out",node="worker.1",socket="out"} 50
# HELP ztopo_socket_messages_total Messages received (direction=in) or sent (direction=out) on a socket of a node instance.
# TYPE ztopo_socket_messages_total counter
ztopo_socket_messages_total{direction="in",node="sink",socket="in"} 1000
ztopo_socket_messages_total{direction="in",node="worker.1",socket="in"} 7
ztopo_socket_messages_total{direction="in",node="worker.1",socket="out"} 0
ztopo_socket_messages_total{direction="out",node="sink",socket="in"} 0
ztopo_socket_messages_total{direction="out",node="worker.1",socket="in"} 0
ztopo_socket_messages_total{direction="out",node="worker.1",socket="out"} 5
# HELP ztopo_socket_send_errors_total Messages a socket of a node instance failed to send (EAGAIN, high-water mark, unroutable).
# TYPE ztopo_socket_send_errors_total counter
ztopo_socket_send_errors_total{node="sink",socket="in"} 0
ztopo_socket_send_errors_total{node="worker.1",socket="in"} 0
ztopo_socket_send_errors_total{node="worker.1",socket="out"} 2
`
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want),
		"ztopo_node_restarts_total", "ztopo_node_state", "ztopo_reloads_total",
		"ztopo_socket_bytes_total", "ztopo_socket_messages_total", "ztopo_socket_send_errors_total",
	); err != nil {
		t.Fatal(err)
	}
}

// TestGoCollector checks that the Go runtime's metrics are served next to
// ztopo's.
func TestGoCollector(t *testing.T) {
	srv := httptest.NewServer(Handler(func() Snapshot { return Snapshot{} }))
	defer srv.Close()
	body := get(t, srv.URL)
	for _, name := range []string{"go_goroutines ", "ztopo_reloads_total{result=\"applied\"} 0"} {
		if !strings.Contains(body, name) {
			t.Errorf("scrape has no %q:\n%s", name, body)
		}
	}
}

// TestScrapeEngine runs a real topology (generate 1000 -> forward -> count)
// and checks the scraped figures against the traffic it made.
func TestScrapeEngine(t *testing.T) {
	const src = `version: 1
name: metrics
nodes:
  gen:
    handler: generate
    config: {count: 1000, size: 16}
    sockets:
      out: {type: PUSH, bind: inproc://metrics-gen}
  fwd:
    handler: forward
    sockets:
      in: {type: PULL, connect: gen.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: 1000}
    sockets:
      in: {type: PULL, bind: inproc://metrics-sink}
`
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	topo, ds := spec.Parse("metrics.yaml", []byte(src), spec.LoadOptions{RuntimeDir: dir})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	e, err := engine.New(topo, engine.Options{Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}

	srv := httptest.NewServer(Handler(func() Snapshot {
		return Snapshot{Instances: e.Status(), Reloads: Reloads{Applied: 1}}
	}))
	defer srv.Close()
	body := get(t, srv.URL)
	for _, line := range []string{
		`ztopo_socket_messages_total{direction="out",node="gen",socket="out"} 1000`,
		`ztopo_socket_bytes_total{direction="out",node="gen",socket="out"} 16000`,
		`ztopo_socket_messages_total{direction="in",node="fwd",socket="in"} 1000`,
		`ztopo_socket_messages_total{direction="out",node="fwd",socket="out"} 1000`,
		`ztopo_socket_messages_total{direction="in",node="sink",socket="in"} 1000`,
		`ztopo_socket_bytes_total{direction="in",node="sink",socket="in"} 16000`,
		`ztopo_socket_send_errors_total{node="fwd",socket="out"} 0`,
		`ztopo_node_state{node="sink",state="completed"} 1`,
		`ztopo_node_state{node="gen",state="completed"} 1`,
		`ztopo_node_restarts_total{node="fwd"} 0`,
		`ztopo_reloads_total{result="applied"} 1`,
	} {
		if !hasLine(body, line) {
			t.Errorf("scrape has no line %s", line)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200", url, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasLine(body, line string) bool {
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
