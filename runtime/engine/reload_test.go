package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	_ "github.com/ztopo/ztopo/runtime/handler/pluginhost" // plugin handlers for the rollback test
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const rlPython = "/usr/bin/python3"

// rlDir is a short private directory: ipc paths and the topology file.
func rlDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// rlParse resolves a topology file written by the test, with ${VARS} from
// vars only, as a reload would load it from dir/topology.yaml.
func rlParse(t testing.TB, dir, yaml string, vars map[string]string) *spec.Topology {
	t.Helper()
	env := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	topo, ds := spec.Parse(filepath.Join(dir, "topology.yaml"), []byte(yaml), spec.LoadOptions{Env: env, RuntimeDir: dir})
	if ds.HasErrors() {
		t.Fatalf("parse:\n%v", ds)
	}
	return topo
}

// rlVars copies base with the given key=value pairs set.
func rlVars(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// rlRunning is an engine whose Run runs in the background; the test's
// cleanup stops it if the test did not.
type rlRunning struct {
	e      *Engine
	cancel context.CancelFunc
	done   chan error
}

func rlStart(t testing.TB, topo *spec.Topology, opts Options) *rlRunning {
	t.Helper()
	e, err := New(topo, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rlRunning{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(bound + 10*time.Second):
			t.Error("Run hangs")
		}
	})
	return r
}

// wait waits for Run to return by itself.
func (r *rlRunning) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(bound):
		for _, st := range r.e.Status() {
			t.Logf("%s %s %+v", st.Name, st.State, st.Sockets)
		}
		t.Fatalf("Run did not return within %v", bound)
		return nil
	}
}

// stop cancels Run and waits for it.
func (r *rlRunning) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func rlWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rlApply(t testing.TB, e *Engine, topo *spec.Topology) (Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return e.Apply(ctx, topo)
}

// rlMust applies topo and fails the test on any error.
func rlMust(t testing.TB, e *Engine, topo *spec.Topology) Report {
	t.Helper()
	rep, err := rlApply(t, e, topo)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return rep
}

func rlStat(e *Engine, name, socket string) SocketStats {
	for _, s := range statusOf(e, name).Sockets {
		if s.Name == socket {
			return s
		}
	}
	return SocketStats{}
}

func rlRunning2(e *Engine, name string) bool { return statusOf(e, name).State == StateRunning }

// rlStarted maps every instance to its Started time.
func rlStarted(e *Engine) map[string]time.Time {
	m := map[string]time.Time{}
	for _, st := range e.Status() {
		m[st.Name] = st.Started
	}
	return m
}

func rlNames(e *Engine) []string {
	var names []string
	for _, st := range e.Status() {
		names = append(names, st.Name)
	}
	return names
}

func rlPlan(t testing.TB, got spec.Plan, want spec.Plan) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan: got %+v, want %+v", got, want)
	}
}

// rlRequest sends one request on a fresh REQ socket and returns the reply.
func rlRequest(t testing.TB, ep, msg string) (string, error) {
	t.Helper()
	s, err := zmq4.NewSocket(zmq4.REQ)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetLinger(0)
	_ = s.SetRcvtimeo(bound)
	if err := s.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(msg, 0); err != nil {
		return "", err
	}
	return s.Recv(0)
}

const swapYAML = `version: 1
name: swap
nodes:
  broker:
    handler: proxy
    sockets:
      frontend: {type: ROUTER, bind: "${FRONT}"}
      backend: {type: DEALER, bind: auto}
  worker:
    replicas: 2
    handler: ${H}
    sockets:
      in: {type: REP, connect: broker.backend}
`

// TestApplySwapsHandlerUnderLoad: pyzmq REQ clients keep sending through a
// ROUTER/DEALER proxy to REP echo workers while the workers' handler
// becomes upper. Every request is answered, by the old or the new handler;
// once Apply returned, requests get the new one.
func TestApplySwapsHandlerUnderLoad(t *testing.T) {
	const clients, warm, after = 4, 50, 200
	dir := rlDir(t)
	vars := map[string]string{"FRONT": zsocktest.TCP(t), "H": "echo"}
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, swapYAML, vars), Options{Logger: lg})
	rlWaitFor(t, "workers running", func() bool { return rlRunning2(r.e, "worker.0") && rlRunning2(r.e, "worker.1") })
	before := rlStarted(r.e)

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, rlPython, filepath.Join("testdata", "reqclients.py"), vars["FRONT"], fmt.Sprint(clients), fmt.Sprint(warm), fmt.Sprint(after))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 16<<20)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("clients: got %q, want ready; stderr:\n%s", lines.Text(), stderr.String())
	}

	rep := rlMust(t, r.e, rlParse(t, dir, swapYAML, rlVars(vars, "H", "upper")))
	rlPlan(t, rep.Plan, spec.Plan{HandlerOnly: []string{"worker.0", "worker.1"}, Unchanged: []string{"broker"}})
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() {
		t.Fatalf("clients: no result; stderr:\n%s", stderr.String())
	}
	var results [][][]any // client -> [request, reply or nil, sent after the swap]
	if err := json.Unmarshal(lines.Bytes(), &results); err != nil {
		t.Fatalf("clients: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clients: %v; stderr:\n%s", err, stderr.String())
	}

	var echoed, uppered, staleAfter int
	for k, rows := range results {
		late := 0
		for _, row := range rows {
			req, _ := row[0].(string)
			reply, ok := row[1].(string)
			after, _ := row[2].(bool)
			switch {
			case !ok:
				t.Fatalf("client %d: request %q got no reply (lost)", k, req)
			case reply == req:
				echoed++
				if after {
					staleAfter++
				}
			case reply == strings.ToUpper(req):
				uppered++
			default:
				t.Fatalf("client %d: request %q got %q", k, req, reply)
			}
			if after {
				late++
			}
		}
		if late != after {
			t.Errorf("client %d: %d replies after the swap, want %d", k, late, after)
		}
		if last := rows[len(rows)-1]; last[1] != strings.ToUpper(last[0].(string)) {
			t.Errorf("client %d: last reply %q, want upper-cased", k, last[1])
		}
	}
	t.Logf("%d echo replies, %d upper replies, %d echoed after the swap", echoed, uppered, staleAfter)
	if echoed == 0 || uppered == 0 {
		t.Errorf("got %d echo and %d upper replies, want both", echoed, uppered)
	}
	// A worker may be handing one request to the old handler at the
	// instant of the swap; no more.
	if staleAfter > 2 {
		t.Errorf("%d requests sent after Apply returned were echoed, want at most 2", staleAfter)
	}
	var total uint64
	for _, w := range []string{"worker.0", "worker.1"} {
		total += rlStat(r.e, w, "in").MsgsOut
	}
	if want := uint64(echoed + uppered); total != want {
		t.Errorf("workers replied %d times, want %d", total, want)
	}
	if after := rlStarted(r.e); !reflect.DeepEqual(after, before) {
		t.Errorf("instances restarted by a handler swap: before %v, after %v", before, after)
	}
	for _, want := range []string{"swapping handler: node=worker.0 handler=upper", "reload applied: started=0 stopped=0 restarted=0 swapped=2 unchanged=1 failed=0"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs.String(), "restarting node") {
		t.Errorf("a handler swap restarted a node")
	}
}
