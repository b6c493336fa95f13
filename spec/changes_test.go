package spec

import (
	"reflect"
	"strings"
	"testing"
)

// TestChangesAndProcessRestart: a handler change on a run: process node is
// a restart with its reason, not a swap (issue 12 item 12), and every
// change is shown field by field.
func TestChangesAndProcessRestart(t *testing.T) {
	src := `version: 1
name: p
nodes:
  gen:
    handler: generate
    config: {count: 10}
    sockets:
      out: {type: PUSH, bind: "tcp://127.0.0.1:5557"}
  worker:
    run: process
    handler: echo
    sockets:
      in: {type: PULL, connect: gen.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: 10}
    sockets:
      in: {type: PULL, bind: auto, options: {rcvhwm: 10}}
`
	load := func(s string) *Topology {
		t.Helper()
		topo, ds := Parse("topology.yaml", []byte(s), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
		if topo == nil {
			t.Fatal(ds)
		}
		return topo
	}
	old := load(src)
	cur := load(strings.NewReplacer("5557", "6557", "handler: echo", "handler: upper", "expect: 10}", "expect: 20}", "rcvhwm: 10", "rcvhwm: 20").Replace(src))
	p := Diff(old, cur)
	if want := []string{"gen", "sink", "worker"}; !reflect.DeepEqual(p.Changed, want) {
		t.Errorf("changed: got %v, want %v", p.Changed, want)
	}
	for name, want := range map[string][]string{
		"gen":    {"sockets.out.bind: tcp://127.0.0.1:5557 → tcp://127.0.0.1:6557"},
		"sink":   {"config.expect: 10 → 20", "sockets.in.options.rcvhwm: 10 → 20"},
		"worker": {"handler: echo → upper", "sockets.in.connect: tcp://127.0.0.1:5557 → tcp://127.0.0.1:6557"},
	} {
		if got := Changes(old.Node(name), cur.Node(name)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}

	// The handler alone: a goroutine node swaps, a process node restarts.
	swapped := load(strings.Replace(src, "handler: echo", "handler: upper", 1))
	p = Diff(old, swapped)
	if !reflect.DeepEqual(p.Changed, []string{"worker"}) || len(p.HandlerOnly) != 0 {
		t.Errorf("process node: got %+v, want a restart of worker", p)
	}
	want := "its handler runs in a child process (run: process): a new handler means a new process"
	if got := RestartReason(old.Node("worker"), swapped.Node("worker")); got != want {
		t.Errorf("reason: got %q, want %q", got, want)
	}
	gold := load(strings.Replace(src, "run: process", "run: goroutine", 1))
	gnew := load(strings.Replace(strings.Replace(src, "run: process", "run: goroutine", 1), "handler: echo", "handler: upper", 1))
	if p := Diff(gold, gnew); !reflect.DeepEqual(p.HandlerOnly, []string{"worker"}) {
		t.Errorf("goroutine node: got %+v, want a handler swap of worker", p)
	}
}
