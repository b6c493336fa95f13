package wasmhost_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// load resolves a topology written in a temporary directory.
func load(t *testing.T, yaml string) *spec.Topology {
	t.Helper()
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, ds := spec.Load(path, spec.LoadOptions{RuntimeDir: t.TempDir()})
	if ds.HasErrors() {
		t.Fatalf("topology: %v", ds)
	}
	return topo
}

// start runs topo until the test ends.
func start(t *testing.T, topo *spec.Topology) (*engine.Engine, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	e, err := engine.New(topo, engine.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("engine did not stop within 60s")
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return e, logs
}

func status(e *engine.Engine, name string) engine.InstanceStatus {
	for _, s := range e.Status() {
		if s.Name == name {
			return s
		}
	}
	return engine.InstanceStatus{}
}

// The example module in a pipeline: every message arrives upper-cased,
// exactly once.
func TestPipeline(t *testing.T) {
	const n = 5000
	topo := load(t, fmt.Sprintf(`version: 1
name: wasm-pipeline-%d
nodes:
  gen:
    handler: generate
    config: {count: %d, payload: "hello wasm", end: "end"}
    sockets:
      out: {type: PUSH, bind: auto}
  up:
    handler: {wasm: %s}
    sockets:
      in: {type: PULL, connect: gen.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {until: "END"}
    sockets:
      in: {type: PULL, bind: auto}
`, os.Getpid(), n, upperWasm))
	logs := &testutil.Buffer{}
	e, err := engine.New(topo, engine.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Run(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("Run: %v, %v\n%s", err, ctx.Err(), logs)
	}
	// The sink completes at the upper-cased "END" only: every message
	// before it went through the module.
	in := status(e, "sink").Sockets[0]
	if in.MsgsIn != n+1 {
		t.Fatalf("sink received %d messages, want %d", in.MsgsIn, n+1)
	}
	up := status(e, "up").Sockets
	for _, s := range up {
		if (s.Name == "in" && s.MsgsIn != n+1) || (s.Name == "out" && s.MsgsOut != n+1) {
			t.Fatalf("up's %s: %+v, want %d through", s.Name, s, n+1)
		}
	}
}

// A REP node answers a message that faults with an error reply and keeps
// answering.
func TestFaultReplies(t *testing.T) {
	ep := zsocktest.IPC(t, "rep")
	topo := load(t, fmt.Sprintf(`version: 1
name: wasm-faults-%d
nodes:
  rep:
    handler: {wasm: %s}
    config: {timeout: 200ms, memory: 32MiB}
    sockets:
      s: {type: REP, bind: %s}
`, os.Getpid(), faultsWasm, ep))
	_, logs := start(t, topo)
	req, err := zmq4.NewSocket(zmq4.REQ)
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	req.SetLinger(0)
	req.SetRcvtimeo(20 * time.Second)
	if err := req.Connect(ep); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"hello", `["V2:HELLO"]`},
		{"trap", `["ERR" "wasm: trap: wasm error: unreachable"]`},
		{"oob", `["ERR" "wasm: trap: wasm error: out of bounds memory access"]`},
		{"oom", `["ERR" "wasm: trap: wasm error: unreachable"]`},
		{"loop", `["ERR" "wasm: message timed out: stopped after 200ms"]`},
		{"fail:because", `["ERR" "refused: because"]`},
		{"drop", `[""]`},
		{"again", `["V2:AGAIN"]`},
	} {
		if _, err := req.Send(c.in, 0); err != nil {
			t.Fatal(err)
		}
		rep, err := req.RecvMessageBytes(0)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := show(rep); got != c.want {
			t.Fatalf("%s: got %s, want %s", c.in, got, c.want)
		}
	}
	if l := logs.String(); strings.Count(l, "wasm message failed") != 4 || !strings.Contains(l, "node=rep") {
		t.Fatalf("want 4 fault lines naming the node:\n%s", l)
	}
}

// Saving a new module while pyzmq REQ clients send as fast as they can
// loses nothing: every request has its reply, from the old module before
// the save and from the new one once it was taken.
func TestSwapUnderLoad(t *testing.T) {
	testutil.NeedPyzmq(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "h.wasm")
	copyFile(t, upperWasm, path)
	ep := zsocktest.IPC(t, "rep")
	topo := load(t, fmt.Sprintf(`version: 1
name: wasm-swap-%d
nodes:
  rep:
    handler: {wasm: %s}
    sockets:
      s: {type: ROUTER, bind: %s}
`, os.Getpid(), path, ep))
	e, logs := start(t, topo)
	const clients, warm, after = 4, 200, 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clientsRun := testutil.StartReqClients(t, ctx, ep, clients, warm, after, "hello")
	copyTo(t, faultsWasm, path) // saved while the clients send
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "wasm module swapped") {
		if time.Now().After(deadline) {
			t.Fatal("no swap within 60s of saving the module")
		}
		time.Sleep(10 * time.Millisecond)
	}
	results := clientsRun.Finish(t)
	total, old, fresh := 0, 0, 0
	for k, rows := range results {
		if len(rows) < warm+after {
			t.Fatalf("client %d: %d requests, want at least %d", k, len(rows), warm+after)
		}
		seenNew := false
		for _, r := range rows {
			req, late, rep := r.Req, r.After, r.Reply
			if len(rep) != 1 {
				t.Fatalf("client %d: %q got %q, want one reply frame (none: lost)", k, req, rep)
			}
			up := strings.ToUpper(req)
			switch rep[0] {
			case up:
				if seenNew || late {
					t.Fatalf("client %d: %q answered by the old module after the new one took over", k, req)
				}
				old++
			case "V2:" + up:
				seenNew = true
				fresh++
			default:
				t.Fatalf("client %d: %q got %q", k, req, rep[0])
			}
			total++
		}
	}
	if old < clients*warm || fresh < clients*after {
		t.Fatalf("old module answered %d, new %d; want at least %d and %d", old, fresh, clients*warm, clients*after)
	}
	var in, out uint64
	for _, s := range status(e, "rep").Sockets {
		in, out = in+s.MsgsIn, out+s.MsgsOut
	}
	if in != uint64(total) || out != uint64(total) {
		t.Fatalf("node counted %d in, %d out; the clients had %d requests answered", in, out, total)
	}
	t.Logf("%d requests: %d by the old module, %d by the new one, none lost", total, old, fresh)
}
