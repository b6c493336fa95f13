package topologies_test

import (
	"context"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/ztopo/ztopo/runtime/handler/builtin" // the files name builtin handlers
	"github.com/ztopo/ztopo/spec"
	"github.com/ztopo/ztopo/spec/graph"
)

// catalogue is the fixed list of files; other tests and the README name
// them.
var catalogue = []string{
	"at-least-once.yaml",
	"envelope.yaml",
	"filter.yaml",
	"identity.yaml",
	"lbbroker.yaml",
	"mixed.yaml",
	"mtserver.yaml",
	"pair-chain.yaml",
	"paranoid-pirate.yaml",
	"pipeline.yaml",
	"plugins.yaml",
	"poller.yaml",
	"pubsub-proxy.yaml",
	"secured-lbbroker.yaml",
	"sharedqueue.yaml",
	"syncpub.yaml",
}

// exampleEnv keeps the developer's environment (WORKERS=8, ...) out of the
// checks: the files must be valid with their own defaults; only KEYS, the
// keys directory of the secured examples, is set, to freshly made keys.
func exampleEnv(t *testing.T) func(string) (string, bool) {
	keys := testutil.ExampleKeys(t)
	return func(k string) (string, bool) {
		if k == "KEYS" {
			return keys, true
		}
		return "", false
	}
}

func load(t *testing.T, file string) *spec.Topology {
	t.Helper()
	topo, ds := spec.Load(file, spec.LoadOptions{Env: exampleEnv(t), RuntimeDir: t.TempDir()})
	for _, d := range ds {
		if d.Severity == spec.Warning {
			t.Log(d.String())
		}
	}
	if ds.HasErrors() || topo == nil {
		t.Fatalf("%s does not load:\n%v", file, ds)
	}
	return topo
}

func TestCatalogueIsComplete(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if got, want := strings.Join(files, " "), strings.Join(catalogue, " "); got != want {
		t.Errorf("topologies/*.yaml: got %s, want %s", got, want)
	}
}

func TestLoad(t *testing.T) {
	for _, file := range catalogue {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			topo := load(t, file)
			if want := strings.TrimSuffix(file, ".yaml"); topo.Name != want {
				t.Errorf("name: got %q, want %q (the file's name, so ps/status find it)", topo.Name, want)
			}
		})
	}
}

// TestEndsByItself checks what makes a topology end without a signal: at
// least one node completes (a generate with a count, a count with expect or
// until, a command), and no generate runs forever.
func TestEndsByItself(t *testing.T) {
	for _, file := range catalogue {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			topo := load(t, file)
			completing := 0
			for _, n := range topo.Nodes {
				switch {
				case n.Handler.Kind == spec.HandlerCommand:
					completing++
				case n.Handler.Kind != spec.HandlerBuiltin:
				case n.Handler.Name == "generate":
					if _, ok := n.Config["count"]; !ok {
						t.Errorf("%s: generate without count never completes", n.Name)
					}
					completing++
				case n.Handler.Name == "count":
					_, expect := n.Config["expect"]
					_, until := n.Config["until"]
					if !expect && !until {
						t.Errorf("%s: count without expect or until never completes", n.Name)
					}
					completing++
				}
			}
			if completing == 0 {
				t.Errorf("no node completes: the topology would run until a signal")
			}
		})
	}
}

// TestPorts keeps the examples' tcp ports in 5550-5599 and distinct across
// the whole catalogue (not only within a file, which the loader checks), so
// that tests may run several of them at once.
func TestPorts(t *testing.T) {
	owner := map[int]string{}
	for _, file := range catalogue {
		topo := load(t, file)
		var binds []string
		for _, n := range topo.Nodes {
			for _, s := range n.Sockets {
				binds = append(binds, s.Bind...)
				for _, ep := range s.Connect {
					if p, ok := tcpPort(ep); ok && (p < 5550 || p > 5599) {
						t.Errorf("%s: %s connects to %s: port outside 5550-5599", file, n.Name, ep)
					}
				}
			}
			if n.Sync != nil && n.Sync.Bind != "" {
				binds = append(binds, n.Sync.Bind)
			}
		}
		for _, ep := range binds {
			p, ok := tcpPort(ep)
			if !ok {
				continue
			}
			if p < 5550 || p > 5599 {
				t.Errorf("%s: binds %s: port outside 5550-5599", file, ep)
			}
			if other, dup := owner[p]; dup && other != file {
				t.Errorf("%s: port %d is already used by %s", file, p, other)
			}
			owner[p] = file
		}
	}
	// pipeline 1, poller 2, mtserver 1, syncpub 2, envelope 1, identity 1,
	// sharedqueue 2, lbbroker 1, pubsub-proxy 2, secured-lbbroker 2.
	if got, want := len(owner), 15; got != want {
		t.Errorf("tcp ports bound by the catalogue: got %d, want %d", got, want)
	}
}

// TestGraphsRender draws every example, as `ztopo graph FILE | dot -Tsvg`
// would, and checks that Graphviz takes it without a complaint.
func TestGraphsRender(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("graphviz is not installed")
	}
	for _, file := range catalogue {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			topo := load(t, file)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, dot, "-Tsvg")
			src := graph.DOT(topo)
			cmd.Stdin = strings.NewReader(src)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("dot -Tsvg: %v: %s", err, stderr.String())
			}
			// One graph node per topology node, whatever the replicas, plus
			// the external endpoints.
			bases := map[string]bool{}
			for _, n := range topo.Nodes {
				bases[n.Base] = true
			}
			want := len(bases) + strings.Count(src, "shape=plaintext")
			if got := strings.Count(string(out), `class="node"`); got != want {
				t.Errorf("svg nodes: got %d, want %d", got, want)
			}
		})
	}
}

func tcpPort(ep string) (int, bool) {
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "tcp" {
		return 0, false
	}
	p, err := strconv.Atoi(u.Port())
	return p, err == nil
}

// upperHarness drives py/upper_worker.py from real pyzmq peers: it binds
// the worker's two endpoints, runs the worker with the environment ztopo
// gives a command node, and reports what came out.
const upperHarness = `
import os, signal, subprocess, sys, time
import zmq

d, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = zmq.Context()
src = ctx.socket(zmq.PUSH); src.setsockopt(zmq.LINGER, 0); src.bind("ipc://%s/in" % d)
dst = ctx.socket(zmq.PULL); dst.setsockopt(zmq.LINGER, 0); dst.bind("ipc://%s/out" % d)
dst.setsockopt(zmq.RCVTIMEO, 20000)
env = dict(os.environ, ZTOPO_IN_CONNECT="ipc://%s/in" % d, ZTOPO_OUT_CONNECT="ipc://%s/out" % d,
           ZTOPO_NODE="upper", ZTOPO_REPLICA="0", ZTOPO_TOPOLOGY="mixed")

# A batch, then END: every message upper-cased, in order, END passed on, exit 0.
p = subprocess.Popen([sys.executable, worker], env=env, stderr=subprocess.PIPE)
for i in range(n):
    src.send_multipart([b"topic", b"hello %d" % i])
src.send(b"END")
bad, got = 0, 0
while True:
    frames = dst.recv_multipart()
    if frames == [b"END"]:
        break
    if frames != [b"topic", b"HELLO %d" % got]:
        bad += 1
    got += 1
rc = p.wait(timeout=20)
print("batch: got %d, bad %d, exit %d" % (got, bad, rc))
print(p.stderr.read().decode().strip())

# SIGTERM while idle: a clean exit 0. The worker installs its signal
# handlers before it connects, so its connection reaching src is the
# event that says a SIGTERM now tests the handler (not Python's start-up).
mon = src.get_monitor_socket(zmq.EVENT_ACCEPTED)
p = subprocess.Popen([sys.executable, worker], env=env, stderr=subprocess.DEVNULL)
if not mon.poll(20000):
    sys.exit("worker never connected")
mon.recv_multipart()
src.disable_monitor(); mon.close(linger=0)
p.send_signal(signal.SIGTERM)
print("sigterm: exit %d" % p.wait(timeout=20))

# No endpoints: refuses to start, says why.
env = {k: v for k, v in env.items() if not k.startswith("ZTOPO_")}
p = subprocess.run([sys.executable, worker], env=env, stderr=subprocess.PIPE, timeout=20)
print("no env: exit %d: %s" % (p.returncode, p.stderr.decode().strip()))
`

func TestUpperWorkerPy(t *testing.T) {
	const python = testutil.Python
	testutil.NeedPyzmq(t)
	// ipc paths must stay under 107 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	worker, err := filepath.Abs("py/upper_worker.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 1000
	out, err := exec.CommandContext(ctx, python, "-c", upperHarness, dir, worker, strconv.Itoa(n)).CombinedOutput()
	if err != nil {
		t.Fatalf("harness: %v\n%s", err, out)
	}
	want := fmt.Sprintf("batch: got %d, bad 0, exit 0\n"+
		"upper: upper-cased %d messages\n"+
		"sigterm: exit 0\n"+
		"no env: exit 1: upper_worker: no endpoint for socket 'in': set ZTOPO_IN_CONNECT or _BIND\n", n, n)
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}
