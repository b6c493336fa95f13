package spec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ztopo/ztopo/internal/testutil"
	"time"
)

// load parses src as /topo/t.yaml with only env as the environment and a
// fixed runtime directory, and fails the test on errors.
func load(t *testing.T, src string, env map[string]string) *Topology {
	t.Helper()
	topo, ds := Parse("/topo/t.yaml", []byte(src), LoadOptions{Env: mapEnv(env), RuntimeDir: testRuntimeDir})
	if ds.HasErrors() {
		t.Fatalf("got errors:\n%v", ds)
	}
	return topo
}

// loadErr parses src and returns the rendered diagnostics.
func loadErr(t *testing.T, src string, env map[string]string) string {
	t.Helper()
	topo, ds := Parse("t.yaml", []byte(src), LoadOptions{Env: mapEnv(env), RuntimeDir: testRuntimeDir})
	if ds.HasErrors() != (topo == nil) {
		t.Fatalf("got topology %v with errors %v", topo != nil, ds.HasErrors())
	}
	return render(ds)
}

func sock(t *testing.T, topo *Topology, node, name string) *Socket {
	t.Helper()
	n := topo.Node(node)
	if n == nil {
		t.Fatalf("no node %q", node)
	}
	s := n.Socket(name)
	if s == nil {
		t.Fatalf("node %q has no socket %q", node, name)
	}
	return s
}

func TestAutoEndpoints(t *testing.T) {
	const tmpl = `
version: 1
name: p
nodes:
  a:
    run: %s
    handler: forward
    sockets:
      out: {type: PUSH, bind: auto}
    sync: {expect: 1}
  b:
    %s
    sync: {connect: a}
    sockets:
      in: {type: PULL, connect: a.out}
`
	tests := []struct {
		name             string
		aRun, b          string
		wantOut, wantSyn string
	}{
		{"all goroutines", "goroutine", "handler: log", "inproc://p/a/out", "inproc://p/a/sync"},
		{"binder is a process", "process", "handler: log", "ipc:///run/ztopo-test/a.out.sock", "ipc:///run/ztopo-test/a.sync.sock"},
		{"connector is a process", "goroutine", "{handler: log, run: process}", "ipc:///run/ztopo-test/a.out.sock", "ipc:///run/ztopo-test/a.sync.sock"},
		{"connector is a command", "goroutine", "command: [./b.sh]", "ipc:///run/ztopo-test/a.out.sock", "ipc:///run/ztopo-test/a.sync.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			if strings.HasPrefix(b, "{") {
				b = "handler: log\n    run: process"
			}
			topo := load(t, fmt.Sprintf(tmpl, tt.aRun, b), nil)
			if got := sock(t, topo, "a", "out").Bind; !reflect.DeepEqual(got, []string{tt.wantOut}) {
				t.Errorf("a.out bind: got %q, want %q", got, tt.wantOut)
			}
			if got := sock(t, topo, "b", "in").Connect; !reflect.DeepEqual(got, []string{tt.wantOut}) {
				t.Errorf("b.in connect: got %q, want %q", got, tt.wantOut)
			}
			if got := topo.Node("a").Sync.Bind; got != tt.wantSyn {
				t.Errorf("a sync bind: got %q, want %q", got, tt.wantSyn)
			}
			if got := topo.Node("b").Sync; got.Connect != tt.wantSyn || got.ConnectNode != "a" {
				t.Errorf("b sync: got connect %q node %q, want %q, a", got.Connect, got.ConnectNode, tt.wantSyn)
			}
		})
	}
}

func TestReplicas(t *testing.T) {
	topo := load(t, `
version: 1
name: p
vars: {N: 2}
nodes:
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: auto}
  w:
    replicas: ${N}
    handler: forward
    config: {}
    sockets:
      in: {type: PULL, bind: ["auto", "ipc:///tmp/w${REPLICA}.sock"], identity: "w-${REPLICA}-${NODE}"}
      out: {type: PUSH, connect: sink.in}
  one:
    replicas: 1
    handler: log
    sockets:
      in: {type: PUSH, connect: w.in}
`, nil)
	var names []string
	for _, n := range topo.Nodes {
		names = append(names, fmt.Sprintf("%s(%s %d/%d)", n.Name, n.Base, n.Replica, n.Replicas))
	}
	want := []string{"one.0(one 0/1)", "sink(sink 0/1)", "w.0(w 0/2)", "w.1(w 1/2)"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("instances: got %q, want %q", names, want)
	}
	for i := 0; i < 2; i++ {
		s := sock(t, topo, fmt.Sprintf("w.%d", i), "in")
		if want := fmt.Sprintf("w-%d-w.%d", i, i); s.Identity != want {
			t.Errorf("w.%d identity: got %q, want %q", i, s.Identity, want)
		}
		wantBind := []string{fmt.Sprintf("inproc://p/w.%d/in", i), fmt.Sprintf("ipc:///tmp/w%d.sock", i)}
		if !reflect.DeepEqual(s.Bind, wantBind) {
			t.Errorf("w.%d bind: got %q, want %q", i, s.Bind, wantBind)
		}
	}
	wantConn := []string{"inproc://p/w.0/in", "ipc:///tmp/w0.sock", "inproc://p/w.1/in", "ipc:///tmp/w1.sock"}
	if got := sock(t, topo, "one.0", "in").Connect; !reflect.DeepEqual(got, wantConn) {
		t.Errorf("one.0 connect: got %q, want %q", got, wantConn)
	}
	if got := sock(t, topo, "one.0", "in").Peers; !reflect.DeepEqual(got, []string{"w.in"}) {
		t.Errorf("one.0 peers: got %q, want [w.in]", got)
	}
}

func TestReplicasFromEnvironment(t *testing.T) {
	const src = `
version: 1
name: p
vars: {WORKERS: 2}
nodes:
  w:
    replicas: ${WORKERS}
    handler: log
    sockets:
      in: {type: PULL, bind: auto}
`
	if got := len(load(t, src, nil).Nodes); got != 2 {
		t.Errorf("from vars: got %d instances, want 2", got)
	}
	if got := len(load(t, src, map[string]string{"WORKERS": "5"}).Nodes); got != 5 {
		t.Errorf("from the environment: got %d instances, want 5", got)
	}
}

func TestInterpolation(t *testing.T) {
	vars := map[string]string{"V": "fromvars", "E": "", "D": "x"}
	tests := []struct {
		name, in string
		env      map[string]string
		want     string
		wantErr  string
	}{
		{"plain", "abc", nil, "abc", ""},
		{"from vars", "${V}", nil, "fromvars", ""},
		{"environment wins", "${V}", map[string]string{"V": "fromenv"}, "fromenv", ""},
		{"empty environment value still wins", "${V}", map[string]string{"V": ""}, "", ""},
		{"default when undefined", "${NOPE:-dflt}", nil, "dflt", ""},
		{"default when empty", "${E:-dflt}", nil, "dflt", ""},
		{"no default needed", "${D:-dflt}", nil, "x", ""},
		{"empty default", "a${NOPE:-}b", nil, "ab", ""},
		{"escape", "$${V}", nil, "${V}", ""},
		{"double escape", "$$$${V}", nil, "$${V}", ""},
		{"lone dollar", "^a$ $x $", nil, "^a$ $x $", ""},
		{"several", "${D}-${V}-${D}", nil, "x-fromvars-x", ""},
		{"one pass", "${R}", map[string]string{"R": "${V}"}, "${V}", ""},
		{"replica", "w${REPLICA}/${NODE}", map[string]string{"REPLICA": "9"}, "w3/w.3", ""},
		{"undefined", "${NOPE}", nil, "", `undefined variable "NOPE"`},
		{"unterminated", "${V", nil, "", `unterminated ${ in "${V"`},
		{"bad name", "${1A}", nil, "", `bad variable name "1A" in "${1A}"`},
		{"empty name", "${}", nil, "", `bad variable name "" in "${}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scope{env: mapEnv(tt.env), vars: vars, inNode: true, replica: 3, node: "w.3"}
			got, err := sc.interpolate(tt.in, -1)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestDefaultsMerge(t *testing.T) {
	topo := load(t, `
version: 1
name: p
defaults:
  run: process
  restart: {policy: always, max_restarts: 9}
  options: {linger: 0, sndhwm: 10, immediate: true}
nodes:
  a:
    handler: forward
    sockets:
      in: {type: PULL, bind: auto}
      out: {type: PUSH, bind: auto, options: {sndhwm: 20, rcvhwm: 5}}
  b:
    run: goroutine
    restart: no
    handler: log
    sockets:
      in: {type: PULL, connect: a.out}
  c:
    restart: {within: 10s}
    handler: log
    sockets:
      in: {type: PUSH, connect: a.in}
`, nil)
	a, b, c := topo.Node("a"), topo.Node("b"), topo.Node("c")
	if a.Run != RunProcess || b.Run != RunGoroutine {
		t.Errorf("run: got a %s, b %s, want process, goroutine", a.Run, b.Run)
	}
	wantA := Restart{Policy: RestartAlways, MaxRestarts: 9, Within: time.Minute, BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second}
	if a.Restart != wantA {
		t.Errorf("a restart: got %+v, want %+v", a.Restart, wantA)
	}
	wantB := wantA
	wantB.Policy = RestartNo
	if b.Restart != wantB {
		t.Errorf("b restart: got %+v, want %+v", b.Restart, wantB)
	}
	wantC := wantA
	wantC.Within = 10 * time.Second
	if c.Restart != wantC {
		t.Errorf("c restart: got %+v, want %+v", c.Restart, wantC)
	}
	wantIn := []Option{{"immediate", 1}, {"linger", 0}, {"sndhwm", 10}}
	if got := sock(t, topo, "a", "in").Options; !reflect.DeepEqual(got, wantIn) {
		t.Errorf("a.in options: got %v, want %v", got, wantIn)
	}
	wantOut := []Option{{"immediate", 1}, {"linger", 0}, {"rcvhwm", 5}, {"sndhwm", 20}}
	if got := sock(t, topo, "a", "out").Options; !reflect.DeepEqual(got, wantOut) {
		t.Errorf("a.out options: got %v, want %v", got, wantOut)
	}
}

func TestRestartForms(t *testing.T) {
	def := DefaultRestart
	tests := []struct {
		name, restart string
		want          Restart
	}{
		{"nothing said", "", def},
		{"short no", "restart: no", Restart{RestartNo, 5, time.Minute, 100 * time.Millisecond, 5 * time.Second}},
		{"short always", "restart: always", Restart{RestartAlways, 5, time.Minute, 100 * time.Millisecond, 5 * time.Second}},
		{"long, all fields", "restart: {policy: no, max_restarts: 0, within: 2m, backoff_min: 1s, backoff_max: 1s}", Restart{RestartNo, 0, 2 * time.Minute, time.Second, time.Second}},
		{"long, some fields", "restart: {backoff_max: 30s}", Restart{RestartOnFailure, 5, time.Minute, 100 * time.Millisecond, 30 * time.Second}},
		{"milliseconds as integers", "restart: {backoff_min: 250}", Restart{RestartOnFailure, 5, time.Minute, 250 * time.Millisecond, 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := load(t, `
version: 1
name: p
nodes:
  a:
    handler: log
    `+tt.restart+`
    sockets:
      in: {type: PULL, bind: auto}
`, nil)
			if got := topo.Node("a").Restart; got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWildcardToLoopback(t *testing.T) {
	topo := load(t, `
version: 1
name: p
nodes:
  a:
    handler: log
    sockets:
      v4: {type: PULL, bind: "tcp://*:5001"}
      any: {type: PULL, bind: "tcp://0.0.0.0:5002"}
      v6: {type: PULL, bind: "tcp://[::]:5003"}
      lo: {type: PULL, bind: "tcp://localhost:5004"}
      ipc: {type: PULL, bind: "ipc:///tmp/x.sock"}
  b:
    handler: forward
    sockets:
      out: {type: PUSH, connect: [a.v4, a.any, a.v6, a.lo, a.ipc, "tcp://*.example:1"]}
`, nil)
	if got := sock(t, topo, "a", "v4").Bind; !reflect.DeepEqual(got, []string{"tcp://*:5001"}) {
		t.Errorf("the bind side keeps what was written: got %q", got)
	}
	want := []string{"tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002", "tcp://[::1]:5003", "tcp://localhost:5004", "ipc:///tmp/x.sock", "tcp://*.example:1"}
	if got := sock(t, topo, "b", "out").Connect; !reflect.DeepEqual(got, want) {
		t.Errorf("connect: got %q, want %q", got, want)
	}
}

func TestRelativePaths(t *testing.T) {
	topo := load(t, `
version: 1
name: p
nodes:
  plug:
    handler: {plugin: plugins/upper}
    sockets: {in: {type: PULL, bind: auto}}
  abs:
    handler: {plugin: /opt/upper}
    sockets: {in: {type: PULL, bind: auto}}
  ex:
    handler: {exec: [./bin/tr, "-u", ./not/an/argv0]}
    sockets: {in: {type: PULL, bind: auto}}
  expath:
    handler: {exec: python3}
    sockets: {in: {type: PULL, bind: auto}}
  cmd:
    command: ../cmd/run.sh
    sockets: {in: {type: PULL, bind: ipc:///tmp/cmd.sock}}
`, nil)
	tests := []struct {
		node string
		want HandlerRef
	}{
		{"plug", HandlerRef{Kind: HandlerPlugin, Path: "/topo/plugins/upper"}},
		{"abs", HandlerRef{Kind: HandlerPlugin, Path: "/opt/upper"}},
		{"ex", HandlerRef{Kind: HandlerExec, Argv: []string{"/topo/bin/tr", "-u", "./not/an/argv0"}, Codec: "lines"}},
		{"expath", HandlerRef{Kind: HandlerExec, Argv: []string{"python3"}, Codec: "lines"}},
		{"cmd", HandlerRef{Kind: HandlerCommand, Argv: []string{"/cmd/run.sh"}}},
	}
	for _, tt := range tests {
		if got := topo.Node(tt.node).Handler; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.node, got, tt.want)
		}
	}
	if got := topo.Node("cmd").Run; got != RunProcess {
		t.Errorf("command run: got %s, want process", got)
	}
	if topo.File != "/topo/t.yaml" || topo.Dir != "/topo" {
		t.Errorf("got File %q Dir %q, want /topo/t.yaml, /topo", topo.File, topo.Dir)
	}
}

func TestOptionValues(t *testing.T) {
	tests := []struct {
		in   string
		want []Option
	}{
		{"{linger: 250ms}", []Option{{"linger", 250}}},
		{"{linger: 5s}", []Option{{"linger", 5000}}},
		{"{linger: 1m}", []Option{{"linger", 60000}}},
		{"{linger: 100}", []Option{{"linger", 100}}},
		{"{linger: -1}", []Option{{"linger", -1}}},
		{"{sndtimeo: -1, rcvtimeo: 0}", []Option{{"rcvtimeo", 0}, {"sndtimeo", -1}}},
		{"{sndhwm: 0, rcvhwm: -1}", []Option{{"rcvhwm", -1}, {"sndhwm", 0}}},
		{"{immediate: true, conflate: false, ipv6: 1}", []Option{{"conflate", 0}, {"immediate", 1}, {"ipv6", 1}}},
		{"{maxmsgsize: 8589934592}", []Option{{"maxmsgsize", 8589934592}}},
		{"{xpub_welcome_msg: hi}", []Option{{"xpub_welcome_msg", "hi"}}},
		{"{tcp_keepalive: 1, tcp_keepalive_idle: 60}", []Option{{"tcp_keepalive", 1}, {"tcp_keepalive_idle", 60}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			topo := load(t, `
version: 1
name: p
nodes:
  a:
    handler: log
    sockets:
      in: {type: PULL, bind: auto, options: `+tt.in+`}
`, nil)
			if got := sock(t, topo, "a", "in").Options; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdentityOption(t *testing.T) {
	topo := load(t, `
version: 1
name: p
nodes:
  a:
    replicas: 2
    handler: echo
    sockets:
      s: {type: DEALER, connect: tcp://127.0.0.1:5555, options: {routing_id: "d${REPLICA}"}}
      t: {type: DEALER, connect: tcp://127.0.0.1:5555, options: {identity: x}}
`, nil)
	if got := sock(t, topo, "a.1", "s"); got.Identity != "d1" || got.Options != nil {
		t.Errorf("routing_id: got identity %q options %v, want d1 and no options", got.Identity, got.Options)
	}
	if got := sock(t, topo, "a.0", "t").Identity; got != "x" {
		t.Errorf("identity alias: got %q, want x", got)
	}
}

func TestConfigTypes(t *testing.T) {
	topo := load(t, `
version: 1
name: p
vars: {N: 7}
nodes:
  gen:
    handler: generate
    config: {count: "${N}", size: 16, topics: [a, "b${REPLICA}"], interval: 10ms, end: 0}
    sockets: {out: {type: PUSH, bind: auto}}
  ex:
    command: [cat]
    config: {n: 3, f: 1.5, b: true, s: "${N}", l: [1, x], m: {k: v}, z: ~}
    sockets: {in: {type: PULL, connect: gen.out}}
  filter:
    handler: {exec: [cat]}
    config: {timeout: 2s, max_line: 64, drop: "${N}"}
    sockets: {in: {type: PULL, connect: gen.out}}
  plug:
    handler: {plugin: ./p}
    config: {timeout: 2s, inflight: 4}
    sockets: {in: {type: PULL, bind: auto}}
  sink:
    handler: count
    sockets: {in: {type: PUSH, connect: plug.in}}
`, nil)
	tests := []struct {
		node string
		want map[string]any
	}{
		{"gen", map[string]any{"count": 7, "size": 16, "topics": []string{"a", "b0"}, "interval": 10 * time.Millisecond, "end": "0"}},
		{"ex", map[string]any{"n": 3, "f": 1.5, "b": true, "s": "7", "l": []any{1, "x"}, "m": map[string]any{"k": "v"}, "z": nil}},
		{"filter", map[string]any{"timeout": 2 * time.Second, "max_line": 64, "drop": "7"}},
		{"plug", map[string]any{"timeout": 2 * time.Second, "inflight": 4}},
		{"sink", map[string]any{}},
	}
	for _, tt := range tests {
		if got := topo.Node(tt.node).Config; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s config: got %#v, want %#v", tt.node, got, tt.want)
		}
	}
}

func TestMergeKeys(t *testing.T) {
	topo := load(t, `
version: 1
name: p
x-sock: &s {type: PULL, options: {linger: 5}}
x-more: &m {bind: auto, type: PUSH}
nodes:
  a:
    handler: log
    sockets:
      in:
        <<: [*s, *m]
        options: {linger: 7}
`, nil)
	got := sock(t, topo, "a", "in")
	if got.Type != PULL || !reflect.DeepEqual(got.Bind, []string{"inproc://p/a/in"}) || !reflect.DeepEqual(got.Options, []Option{{"linger", 7}}) {
		t.Errorf("got type %s bind %q options %v, want PULL, [inproc://p/a/in], [linger 7]", got.Type, got.Bind, got.Options)
	}
}

func TestWarningsKeepTopology(t *testing.T) {
	topo, ds := Parse("t.yaml", []byte(`
version: 1
name: p
nodes:
  a:
    handler: forward
    sockets:
      in: {type: PULL, bind: auto}
      out: {type: PUB, bind: auto}
  b:
    handler: log
    sockets:
      in: {type: SUB, connect: a.out}
`), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
	if topo == nil {
		t.Fatalf("got no topology for warnings only:\n%v", ds)
	}
	want := `t.yaml:13:7: warning: SUB socket "b.in" subscribes to nothing: it will receive no messages (add subscribe: [""] to receive everything)`
	if len(ds) != 1 || ds[0].String() != want || ds.Err() != nil {
		t.Errorf("got %q, want one warning %q and no error", ds, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	topo, ds := Load(path, LoadOptions{})
	want := path + ": cannot read topology: no such file or directory"
	if topo != nil || len(ds) != 1 || ds.Error() != want {
		t.Errorf("got %v, %q, want nil, %q", topo, ds.Error(), want)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.yaml")
	src := "version: 1\nname: p\nnodes:\n  a: {handler: {plugin: ./pl}, sockets: {in: {type: PULL, bind: auto}}}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, ds := Load(path, LoadOptions{Env: mapEnv(map[string]string{"XDG_RUNTIME_DIR": "/run/user/7"})})
	if ds != nil {
		t.Fatalf("got %v", ds)
	}
	if topo.RuntimeDir != "/run/user/7/ztopo/p" {
		t.Errorf("runtime dir: got %q, want /run/user/7/ztopo/p", topo.RuntimeDir)
	}
	if want := filepath.Join(dir, "pl"); topo.Node("a").Handler.Path != want {
		t.Errorf("plugin path: got %q, want %q", topo.Node("a").Handler.Path, want)
	}
}

func TestDefaultRuntimeDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got := DefaultRuntimeDir("pipe"); got != "/run/user/1000/ztopo/pipe" {
		t.Errorf("got %q, want /run/user/1000/ztopo/pipe", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	want := filepath.Join(os.TempDir(), fmt.Sprintf("ztopo-%d", os.Getuid()), "pipe")
	if got := DefaultRuntimeDir("pipe"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestHostileInput feeds files built to cost time or memory; each must be
// refused with an error, without a panic, long before the bound.
func TestHostileInput(t *testing.T) {
	laughs := "version: 1\nname: p\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	for i, prev := 1, "a"; i < 12; i++ {
		cur := fmt.Sprintf("a%d", i)
		laughs += fmt.Sprintf("%s: &%s [%s]\n", cur, cur, strings.TrimSuffix(strings.Repeat("*"+prev+", ", 10), ", "))
		prev = cur
	}
	laughs += "nodes: *a11\n"
	tests := []struct {
		name, src, wantMsg string
	}{
		{"billion laughs", laughs, "document too large: more than 100000 values once aliases are expanded"},
		{"deep flow nesting", "version: 1\nnodes: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n", "document nested more than 64 levels deep"},
		{"deep block nesting", "version: 1\nnodes:\n" + strings.Repeat("- ", 3000) + "x\n", "document nested more than 64 levels deep"},
		{"parser depth limit", strings.Repeat("[", 20000), "yaml: exceeded max depth of 10000"},
		{"too large", "version: 1\n#" + strings.Repeat("x", maxFileSize) + "\n", "file is too large (4194317 bytes, at most 4194304)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan Diags, 1)
			go func() {
				_, ds := Parse("t.yaml", []byte(tt.src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
				done <- ds
			}()
			select {
			case <-ctx.Done():
				t.Fatal("Parse did not return")
			case ds := <-done:
				if !ds.HasErrors() {
					t.Fatalf("got no error")
				}
				found := false
				for _, d := range ds {
					found = found || d.Msg == tt.wantMsg
				}
				if !found {
					t.Errorf("got %v, want a diagnostic %q", ds, tt.wantMsg)
				}
			}
		})
	}
}

func TestGoodFiles(t *testing.T) {
	paths, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			topo, ds := Load(path, LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
			if len(ds) != 0 {
				t.Fatalf("got diagnostics:\n%v", ds)
			}
			if topo == nil || len(topo.Nodes) == 0 {
				t.Fatal("got no nodes")
			}
		})
	}
}

// TestRepoTopologies loads the example topologies shipped in topologies/.
func TestRepoTopologies(t *testing.T) {
	paths, _ := filepath.Glob("../topologies/*.yaml")
	if len(paths) == 0 {
		t.Skip("no topologies/*.yaml yet")
	}
	// The secured examples read their keys from KEYS: made here, since no
	// secret key is committed.
	t.Setenv("KEYS", testutil.ExampleKeys(t))
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, ds := Load(path, LoadOptions{RuntimeDir: testRuntimeDir}); ds.HasErrors() {
				t.Errorf("got errors:\n%v", ds)
			}
		})
	}
}

func TestIdentityDefaults(t *testing.T) {
	topo := load(t, `
version: 1
name: p
defaults:
  options: {routing_id: "${NODE}"}
nodes:
  a:
    handler: echo
    sockets:
      s: {type: DEALER, connect: tcp://127.0.0.1:5555}
      t: {type: DEALER, connect: tcp://127.0.0.1:5555, identity: own}
`, nil)
	if got := sock(t, topo, "a", "s").Identity; got != "a" {
		t.Errorf("from defaults: got %q, want a", got)
	}
	if got := sock(t, topo, "a", "t").Identity; got != "own" {
		t.Errorf("own identity over defaults: got %q, want own", got)
	}
}

func TestSizeLimits(t *testing.T) {
	const node = "  n%d:\n    replicas: %d\n    handler: forward\n    sockets:\n      in: {type: PULL, bind: auto}\n      out: {type: PUSH, connect: %s}\n"
	tests := []struct {
		name, nodes, want string
	}{
		{"replicas", fmt.Sprintf(node, 0, 2000000000, "n0.in"), "t.yaml:5:15: replicas must be at most 1000, got 2000000000\n"},
		{"instances", func() string {
			var b strings.Builder
			for i := 0; i < 11; i++ {
				fmt.Fprintf(&b, node, i, 1000, fmt.Sprintf("n%d.in", i))
			}
			return b.String()
		}(), "t.yaml:64:3: topology too large: more than 10000 node instances\n"},
		{"connections", fmt.Sprintf(node, 0, 1000, "n1.in") + fmt.Sprintf(node, 1, 1000, "n0.in"), "t.yaml:9:34: topology too large: more than 100000 connections\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadErr(t, "version: 1\nname: p\nnodes:\n"+tt.nodes, nil)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
