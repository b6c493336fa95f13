package spec

import (
	"reflect"
	"strings"
	"testing"
)

const planBase = `
version: 1
name: p
nodes:
  src:
    handler: generate
    config: {count: 10}
    sockets:
      out: {type: PUSH, bind: tcp://127.0.0.1:5000}
  w:
    replicas: 2
    handler: forward
    sockets:
      in: {type: PULL, connect: src.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: 10}
    sockets:
      in: {type: PULL, bind: auto}
  tap:
    handler: log
    sockets:
      in: {type: PULL, bind: tcp://127.0.0.1:5001}
`

func TestDiff(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		want  Plan
		empty bool
	}{
		{
			name:  "same file",
			edit:  func(s string) string { return s },
			want:  Plan{Unchanged: []string{"sink", "src", "tap", "w.0", "w.1"}},
			empty: true,
		},
		{
			name: "moved and commented only",
			edit: func(s string) string {
				return strings.Replace(s, "nodes:\n", "nodes:\n  # a comment\n\n", 1)
			},
			want:  Plan{Unchanged: []string{"sink", "src", "tap", "w.0", "w.1"}},
			empty: true,
		},
		{
			name: "added",
			edit: func(s string) string {
				return s + "  tap2:\n    handler: log\n    sockets:\n      in: {type: PULL, bind: auto}\n"
			},
			want: Plan{Added: []string{"tap2"}, Unchanged: []string{"sink", "src", "tap", "w.0", "w.1"}},
		},
		{
			name: "removed",
			edit: func(s string) string { return s[:strings.Index(s, "  tap:")] },
			want: Plan{Removed: []string{"tap"}, Unchanged: []string{"sink", "src", "w.0", "w.1"}},
		},
		{
			name: "changed socket",
			edit: func(s string) string { return strings.Replace(s, "tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002", 1) },
			want: Plan{Changed: []string{"tap"}, Unchanged: []string{"sink", "src", "w.0", "w.1"}},
		},
		{
			name: "changed bind moves its peers",
			edit: func(s string) string { return strings.Replace(s, "tcp://127.0.0.1:5000", "tcp://127.0.0.1:5009", 1) },
			want: Plan{Changed: []string{"src", "w.0", "w.1"}, Unchanged: []string{"sink", "tap"}},
		},
		{
			name: "handler only",
			edit: func(s string) string { return strings.Replace(s, "handler: forward", "handler: upper", 1) },
			want: Plan{HandlerOnly: []string{"w.0", "w.1"}, Unchanged: []string{"sink", "src", "tap"}},
		},
		{
			name: "config only",
			edit: func(s string) string { return strings.Replace(s, "config: {expect: 10}", "config: {expect: 20}", 1) },
			want: Plan{HandlerOnly: []string{"sink"}, Unchanged: []string{"src", "tap", "w.0", "w.1"}},
		},
		{
			name: "handler and run",
			edit: func(s string) string {
				return strings.Replace(s, "handler: log", "handler: echo\n    run: process", 1)
			},
			want: Plan{Changed: []string{"tap"}, Unchanged: []string{"sink", "src", "w.0", "w.1"}},
		},
		{
			name: "handler to command",
			edit: func(s string) string {
				return strings.Replace(s, "handler: log", "command: [./tap.sh]", 1)
			},
			want: Plan{Changed: []string{"tap"}, Unchanged: []string{"sink", "src", "w.0", "w.1"}},
		},
		{
			name: "replicas 2 to 3",
			edit: func(s string) string { return strings.Replace(s, "replicas: 2", "replicas: 3", 1) },
			want: Plan{Added: []string{"w.2"}, Unchanged: []string{"sink", "src", "tap", "w.0", "w.1"}},
		},
		{
			name: "replicas 2 to 1",
			edit: func(s string) string { return strings.Replace(s, "replicas: 2", "replicas: 1", 1) },
			want: Plan{Removed: []string{"w.1"}, Unchanged: []string{"sink", "src", "tap", "w.0"}},
		},
		{
			name: "replicas dropped renames the instance",
			edit: func(s string) string { return strings.Replace(s, "    replicas: 2\n", "", 1) },
			want: Plan{Added: []string{"w"}, Removed: []string{"w.0", "w.1"}, Unchanged: []string{"sink", "src", "tap"}},
		},
	}
	old := load(t, planBase, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nw := load(t, tt.edit(planBase), nil)
			got := Diff(old, nw)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Empty() != tt.empty {
				t.Errorf("Empty: got %v, want %v", got.Empty(), tt.empty)
			}
		})
	}
}

func TestDiffNil(t *testing.T) {
	topo := load(t, planBase, nil)
	all := []string{"sink", "src", "tap", "w.0", "w.1"}
	if got := Diff(nil, topo); !reflect.DeepEqual(got, Plan{Added: all}) {
		t.Errorf("from nothing: got %+v, want all added", got)
	}
	if got := Diff(topo, nil); !reflect.DeepEqual(got, Plan{Removed: all}) {
		t.Errorf("to nothing: got %+v, want all removed", got)
	}
	if got := Diff(nil, nil); !got.Empty() || !reflect.DeepEqual(got, Plan{}) {
		t.Errorf("nothing to nothing: got %+v, want an empty plan", got)
	}
}

func TestNodeEqual(t *testing.T) {
	a := load(t, planBase, nil)
	b := load(t, strings.Replace(planBase, "nodes:\n", "nodes:\n\n\n", 1), nil)
	if a.Node("tap").Pos == b.Node("tap").Pos {
		t.Fatal("positions should differ for this test")
	}
	if !a.Node("tap").Equal(b.Node("tap")) {
		t.Error("got unequal nodes that differ only in positions")
	}
	if a.Node("tap").Equal(a.Node("sink")) {
		t.Error("got equal for different nodes")
	}
	var nilNode *Node
	if !nilNode.Equal(nil) || nilNode.Equal(a.Node("tap")) || a.Node("tap").Equal(nil) {
		t.Error("nil handling is wrong")
	}
}

// Instances sort by replica number, not as strings.
func TestInstanceOrder(t *testing.T) {
	topo := load(t, strings.Replace(planBase, "replicas: 2", "replicas: 11", 1), nil)
	var got []string
	for _, n := range topo.Nodes {
		got = append(got, n.Name)
	}
	want := []string{"sink", "src", "tap", "w.0", "w.1", "w.2", "w.3", "w.4", "w.5", "w.6", "w.7", "w.8", "w.9", "w.10"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
