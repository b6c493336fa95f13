package spec

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const spreadSrc = `version: 1
name: spread
hosts:
  edge: {address: 10.0.0.1}
  core: {address: "fd00::2"}
  store: {address: store.internal}
ports: {from: 7000, to: 7099}
defaults: {host: core}
nodes:
  ventilator:
    host: edge
    handler: generate
    config: {count: 10}
    sockets:
      out: {type: PUSH, bind: "tcp://*:5557"}
      back: {type: PULL, connect: [collector.in]}
  worker:
    replicas: 2
    handler: forward
    sockets:
      in: {type: PULL, connect: ventilator.out}
      out: {type: PUSH, connect: sink.in}
  collector:
    handler: log
    sockets:
      in: {type: PUSH, bind: auto}
  local:
    handler: log
    sockets:
      in: {type: PULL, bind: auto}
  feeder:
    handler: generate
    sockets:
      out: {type: PUSH, connect: local.in}
  sink:
    host: store
    handler: count
    sync: {expect: 1}
    sockets:
      in: {type: PULL, bind: auto}
  starter:
    host: edge
    handler: log
    sync: {connect: sink}
    sockets:
      in: {type: PULL, bind: "tcp://0.0.0.0:5560"}
`

func loadShare(t *testing.T, src, host string) *Topology {
	t.Helper()
	topo, ds := Parse("/topo/t.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir, Host: host})
	if ds.HasErrors() {
		t.Fatalf("host %q: got errors:\n%v", host, ds)
	}
	return topo
}

func nodeNames(topo *Topology) []string {
	var out []string
	for _, n := range topo.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// portOf is the port of a tcp endpoint.
func portOf(t *testing.T, ep string) int {
	t.Helper()
	e, err := ParseEndpoint(ep, true)
	if err != nil || e.Transport != "tcp" {
		t.Fatalf("%q is not a tcp endpoint", ep)
	}
	p, err := strconv.Atoi(e.Port)
	if err != nil {
		t.Fatalf("%q: no port number", ep)
	}
	return p
}

func TestShares(t *testing.T) {
	all := loadShare(t, spreadSrc, "")
	edge := loadShare(t, spreadSrc, "edge")
	core := loadShare(t, spreadSrc, "core")
	store := loadShare(t, spreadSrc, "store")

	for _, tc := range []struct {
		topo *Topology
		want []string
	}{
		{all, []string{"collector", "feeder", "local", "sink", "starter", "ventilator", "worker.0", "worker.1"}},
		{edge, []string{"starter", "ventilator"}},
		{core, []string{"collector", "feeder", "local", "worker.0", "worker.1"}},
		{store, []string{"sink"}},
	} {
		if got := nodeNames(tc.topo); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("share %q: nodes %v, want %v", tc.topo.Share, got, tc.want)
		}
	}
	if want := []Host{{"core", "fd00::2"}, {"edge", "10.0.0.1"}, {"store", "store.internal"}}; !reflect.DeepEqual(core.Hosts, want) {
		t.Errorf("hosts: got %v, want %v", core.Hosts, want)
	}

	sinkPort := portOf(t, sock(t, store, "sink", "in").Bind[0])
	collPort := portOf(t, sock(t, core, "collector", "in").Bind[0])
	syncPort := portOf(t, store.Node("sink").Sync.Bind)
	for _, p := range []int{sinkPort, collPort, syncPort} {
		if p < 7000 || p > 7099 {
			t.Errorf("auto port %d outside ports 7000-7099", p)
		}
	}
	if sinkPort == collPort || sinkPort == syncPort || collPort == syncPort {
		t.Errorf("auto ports not distinct: %d %d %d", sinkPort, collPort, syncPort)
	}
	checks := []struct {
		name      string
		got, want []string
	}{
		// A share: binds on the wildcard, references to other hosts at
		// their addresses (IPv6 in brackets), same host as before.
		{"store sink bind", sock(t, store, "sink", "in").Bind, []string{fmt.Sprintf("tcp://*:%d", sinkPort)}},
		{"store sink sync", []string{store.Node("sink").Sync.Bind}, []string{fmt.Sprintf("tcp://*:%d", syncPort)}},
		{"core worker in", sock(t, core, "worker.1", "in").Connect, []string{"tcp://10.0.0.1:5557"}},
		{"core worker out", sock(t, core, "worker.0", "out").Connect, []string{fmt.Sprintf("tcp://store.internal:%d", sinkPort)}},
		{"core collector bind", sock(t, core, "collector", "in").Bind, []string{fmt.Sprintf("tcp://*:%d", collPort)}},
		{"edge ventilator back", sock(t, edge, "ventilator", "back").Connect, []string{fmt.Sprintf("tcp://[fd00::2]:%d", collPort)}},
		{"edge starter sync", []string{edge.Node("starter").Sync.Connect}, []string{fmt.Sprintf("tcp://store.internal:%d", syncPort)}},
		{"core local bind", sock(t, core, "local", "in").Bind, []string{"inproc://spread/local/in"}},
		{"core feeder out", sock(t, core, "feeder", "out").Connect, []string{"inproc://spread/local/in"}},
		// The whole file on one machine: loopback, the same ports.
		{"all sink bind", sock(t, all, "sink", "in").Bind, []string{fmt.Sprintf("tcp://127.0.0.1:%d", sinkPort)}},
		{"all worker in", sock(t, all, "worker.0", "in").Connect, []string{"tcp://127.0.0.1:5557"}},
		{"all worker out", sock(t, all, "worker.0", "out").Connect, []string{fmt.Sprintf("tcp://127.0.0.1:%d", sinkPort)}},
		{"all starter sync", []string{all.Node("starter").Sync.Connect}, []string{fmt.Sprintf("tcp://127.0.0.1:%d", syncPort)}},
		{"all local bind", sock(t, all, "local", "in").Bind, []string{"inproc://spread/local/in"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := all.Node("sink").Host; got != "store" {
		t.Errorf("sink host: got %q, want store", got)
	}
}

// TestPortsFromTheFileAlone: every host computes the same ports, and an
// edit elsewhere in the file does not move them.
func TestPortsFromTheFileAlone(t *testing.T) {
	ports := func(src string) map[string]string {
		out := map[string]string{}
		for _, h := range []string{"", "core", "store"} {
			topo := loadShare(t, src, h)
			for _, n := range topo.Nodes {
				for _, s := range n.Sockets {
					for _, b := range s.Bind {
						if e, _ := ParseEndpoint(b, true); e.Transport == "tcp" {
							out[n.Name+"."+s.Name] = e.Port
						}
					}
				}
			}
		}
		return out
	}
	before := ports(spreadSrc)
	if again := ports(spreadSrc); !reflect.DeepEqual(before, again) {
		t.Fatalf("two loads differ: %v and %v", before, again)
	}
	edited := strings.Replace(spreadSrc, "  sink:\n", `  added:
    host: store
    replicas: 3
    handler: log
    sockets:
      in: {type: PULL, bind: auto}
  adder:
    host: edge
    handler: generate
    sockets:
      out: {type: PUSH, connect: added.in}
  sink:
`, 1)
	after := ports(edited)
	for k, p := range before {
		if after[k] != p {
			t.Errorf("%s: port %s moved to %s by an unrelated edit", k, p, after[k])
		}
	}
	if len(after) != len(before)+3 {
		t.Errorf("got %d tcp binds after the edit, want %d", len(after), len(before)+3)
	}
}

// TestShareDiff: an edit on one host changes nothing in another's share
// unless an endpoint that crosses over changed.
func TestShareDiff(t *testing.T) {
	edits := []struct {
		name      string
		from, to  string
		wantEdge  Plan
		wantCore  Plan
		wantStore Plan
	}{
		{"ventilator config", "config: {count: 10}", "config: {count: 20}",
			Plan{HandlerOnly: []string{"ventilator"}, Unchanged: []string{"starter"}},
			Plan{Unchanged: []string{"collector", "feeder", "local", "worker.0", "worker.1"}},
			Plan{Unchanged: []string{"sink"}}},
		{"ventilator port", `bind: "tcp://*:5557"`, `bind: "tcp://*:5567"`,
			Plan{Changed: []string{"ventilator"}, Unchanged: []string{"starter"}},
			Plan{Changed: []string{"worker.0", "worker.1"}, Unchanged: []string{"collector", "feeder", "local"}},
			Plan{Unchanged: []string{"sink"}}},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			edited := strings.Replace(spreadSrc, e.from, e.to, 1)
			for _, c := range []struct {
				host string
				want Plan
			}{{"edge", e.wantEdge}, {"core", e.wantCore}, {"store", e.wantStore}} {
				got := Diff(loadShare(t, spreadSrc, c.host), loadShare(t, edited, c.host))
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("host %s: plan %+v, want %+v", c.host, got, c.want)
				}
			}
		})
	}
}

func TestShareRuntimeDir(t *testing.T) {
	env := mapEnv(map[string]string{"XDG_RUNTIME_DIR": "/run/user/7"})
	for _, tc := range []struct{ host, want string }{
		{"", "/run/user/7/ztopo/spread"},
		{"edge", "/run/user/7/ztopo/spread@edge"},
	} {
		topo, ds := Parse("t.yaml", []byte(spreadSrc), LoadOptions{Env: env, Host: tc.host})
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		if topo.RuntimeDir != tc.want {
			t.Errorf("host %q: runtime dir %q, want %q", tc.host, topo.RuntimeDir, tc.want)
		}
	}
}

// TestImmediateAcross: in a share, a PUSH that connects to a node on
// another host gets immediate (messages queue only for connections that
// are up), unless the file sets it; a PUSH to its own host, and the whole
// file on one machine, are left as written.
func TestImmediateAcross(t *testing.T) {
	opt := func(topo *Topology, node, sock string) any {
		t.Helper()
		for _, s := range topo.Node(node).Sockets {
			if s.Name == sock {
				for _, o := range s.Options {
					if o.Name == "immediate" {
						return o.Value
					}
				}
				return nil
			}
		}
		t.Fatalf("no socket %s.%s", node, sock)
		return nil
	}
	core := loadShare(t, spreadSrc, "core")
	if got := opt(core, "worker.0", "out"); got != 1 {
		t.Errorf("worker.0.out (to store) immediate: got %v, want 1", got)
	}
	if got := opt(core, "feeder", "out"); got != nil {
		t.Errorf("feeder.out (to its own host) immediate: got %v, want unset", got)
	}
	if got := opt(loadShare(t, spreadSrc, ""), "worker.0", "out"); got != nil {
		t.Errorf("worker.0.out on one machine: immediate %v, want unset", got)
	}
	edited := strings.Replace(spreadSrc, "out: {type: PUSH, connect: sink.in}", "out: {type: PUSH, connect: sink.in, options: {immediate: false, sndhwm: 10}}", 1)
	if got := opt(loadShare(t, edited, "core"), "worker.0", "out"); got != 0 {
		t.Errorf("worker.0.out with immediate: false: got %v, want 0", got)
	}
}
