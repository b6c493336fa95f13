package enginetest_test

import (
	"context"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/engine"
	_ "github.com/ztopo/ztopo/runtime/handler/builtin"
	_ "github.com/ztopo/ztopo/runtime/handler/exechandler"
	_ "github.com/ztopo/ztopo/runtime/handler/pluginhost"
	"github.com/ztopo/ztopo/spec"
)

const python = testutil.Python

type env struct {
	log  hclog.Logger
	logs *testutil.Buffer
	dir  string // short: ipc paths live here
}

func newEnv(t *testing.T) *env {
	e := &env{dir: testutil.ShortDir(t)}
	e.log, e.logs = testutil.Logger(t, "ztopo")
	return e
}

func (e *env) logger() hclog.Logger {
	return e.log
}

func loadTopo(t *testing.T, file string) *spec.Topology {
	t.Helper()
	rt := testutil.ShortDir(t)
	topo, ds := spec.Load(file, spec.LoadOptions{Env: func(string) (string, bool) { return "", false }, RuntimeDir: rt})
	if ds.HasErrors() || topo == nil {
		t.Fatalf("%s: %v", file, ds)
	}
	return topo
}

// topologies/plugins.yaml runs to its end: 10000 messages through the
// Python plugin and the sed filter.
func TestTopologyPluginsYAML(t *testing.T) {
	testutil.NeedPyzmq(t)
	e := newEnv(t)
	topo := loadTopo(t, "../../../../topologies/plugins.yaml")
	eng, err := engine.New(topo, engine.Options{Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := eng.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the topology did not end by itself")
	}
	for _, st := range eng.Status() {
		if st.Name == "sink" && st.Sockets[0].MsgsIn != 10000 {
			t.Fatalf("sink received %d, want 10000", st.Sockets[0].MsgsIn)
		}
	}
	if !strings.Contains(e.logs.String(), "received 10000 messages in ") {
		t.Fatal("no summary line from the sink")
	}
}

// clients is a pyzmq harness: REQ clients send numbered requests to the
// node's ROUTER and check each reply; a reply from the swapped plugin
// (reversed rather than upper-cased) is counted apart. With want_new, the
// clients go on until they have seen one (bounded).
const clients = `
import sys, threading, time
import zmq

ep, nclients, nreq, want_new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
ctx = zmq.Context()
lock = threading.Lock()
stats = {"old": 0, "new": 0, "bad": 0, "lost": 0}
seen_new = threading.Event()

def client(c):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 20000)
    s.connect(ep)
    i = 0
    deadline = time.time() + 60
    while i < nreq or (want_new and not seen_new.is_set() and time.time() < deadline):
        body = b"hello %d %d" % (c, i)
        s.send_multipart([b"topic", body])
        try:
            rep = s.recv_multipart()
        except zmq.Again:
            with lock:
                stats["lost"] += 1
            return
        with lock:
            if rep == [b"topic", body.upper()]:
                stats["old"] += 1
            elif rep == [b"topic", body[::-1]]:
                stats["new"] += 1
                seen_new.set()
            else:
                stats["bad"] += 1
                print("bad reply", rep, file=sys.stderr)
        i += 1
    s.close()

ts = [threading.Thread(target=client, args=(c,)) for c in range(nclients)]
for t in ts: t.start()
for t in ts: t.join()
print("old=%d new=%d bad=%d lost=%d" % (stats["old"], stats["new"], stats["bad"], stats["lost"]))
`

func writeTopo(t *testing.T, dir, endpoint, plugin string) string {
	t.Helper()
	body := fmt.Sprintf(`version: 1
name: plugreq
nodes:
  server:
    replicas: 2
    handler: {plugin: %s}
    sockets:
      in: {type: ROUTER, bind: "%s.${REPLICA}"}
`, plugin, endpoint)
	// One ROUTER per replica, each with its own endpoint; the clients
	// spread over both.
	path := filepath.Join(dir, "plugreq.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runClients(t *testing.T, endpoint string, nclients, nreq int, wantNew bool, during func()) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	flag := "0"
	if wantNew {
		flag = "1"
	}
	cmd := exec.CommandContext(ctx, python, "-c", clients, endpoint, fmt.Sprint(nclients), fmt.Sprint(nreq), flag)
	var out, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clients: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("clients said: %s", stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// startEngine runs a topology until the test ends.
func startEngine(t *testing.T, e *env, file string) *engine.Engine {
	t.Helper()
	topo := loadTopo(t, file)
	eng, err := engine.New(topo, engine.Options{Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return eng
}

// pyzmq REQ clients -> ROUTER -> a node whose handler is the Python plugin.
func TestEnginePluginServesPyzmqClients(t *testing.T) {
	testutil.NeedPyzmq(t)
	e := newEnv(t)
	endpoint := "ipc://" + filepath.Join(e.dir, "srv")
	startEngine(t, e, writeTopo(t, e.dir, endpoint, testutil.RepoPath(t, "plugins/examples/python/upper_plugin.py")))
	var results []string
	for r := range 2 {
		results = append(results, runClients(t, fmt.Sprintf("%s.%d", endpoint, r), 4, 250, false, nil))
	}
	for r, got := range results {
		if want := "old=1000 new=0 bad=0 lost=0"; got != want {
			t.Errorf("replica %d: got %s, want %s", r, got, want)
		}
	}
}

// The plugin file changes while pyzmq clients keep sending: the hosts swap
// by themselves; every request is answered, by the old or the new plugin.
func TestEngineSwapOnFileChangeLosesNothing(t *testing.T) {
	testutil.NeedPyzmq(t)
	e := newEnv(t)
	src, err := os.ReadFile(testutil.RepoPath(t, "plugins/examples/python/upper_plugin.py"))
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(e.dir, "plugin.py")
	install := func(body []byte) { testutil.ReplaceFile(t, plugin, body, 0o755) }
	install(src)
	reversed := strings.Replace(string(src), "frames[-1] = frames[-1].upper()", "frames[-1] = frames[-1][::-1]", 1)
	if reversed == string(src) {
		t.Fatal("the example plugin changed: cannot make the reversing variant")
	}
	endpoint := "ipc://" + filepath.Join(e.dir, "srv")
	// Runs after the engine stopped (cleanups run last-registered first).
	t.Cleanup(func() {
		if pids := processesRunning(plugin); len(pids) > 0 {
			t.Errorf("plugin processes %v outlived the engine", pids)
		}
	})
	startEngine(t, e, writeTopo(t, e.dir, endpoint, plugin))
	if n := len(processesRunning(plugin)); n != 2 {
		t.Fatalf("%d plugin processes, want 2 (one per replica)", n)
	}
	got := runClients(t, endpoint+".0", 4, 500, true, func() {
		time.Sleep(300 * time.Millisecond) // let the clients get going
		install([]byte(reversed))
	})
	var old, nw, bad, lost int
	if _, err := fmt.Sscanf(got, "old=%d new=%d bad=%d lost=%d", &old, &nw, &bad, &lost); err != nil {
		t.Fatalf("clients said %q", got)
	}
	if bad != 0 || lost != 0 || nw == 0 || old == 0 {
		t.Fatalf("got %s: want some old, some new, none bad or lost", got)
	}
}

// processesRunning lists the live processes whose command line names path.
func processesRunning(path string) []int {
	var pids []int
	for _, p := range testutil.Procs(func(p testutil.Proc) bool {
		return strings.Contains(p.Cmdline, path) && p.State != 'Z'
	}) {
		pids = append(pids, p.Pid)
	}
	return pids
}
