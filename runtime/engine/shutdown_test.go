package engine

import (
	"strings"
	"testing"

	"github.com/ztopo/ztopo/spec"
)

func TestNeedsDrain(t *testing.T) {
	sock := func(name string, typ spec.SocketType, bind, connect string) *spec.Socket {
		s := &spec.Socket{Name: name, Type: typ}
		if bind != "" {
			s.Bind = []string{bind}
		}
		if connect != "" {
			s.Connect = []string{connect}
		}
		return s
	}
	inst := func(name, h string, st State, socks ...*spec.Socket) *instance {
		return &instance{
			spec: &spec.Node{Name: name, Handler: spec.HandlerRef{Kind: spec.HandlerBuiltin, Name: h}, Sockets: socks},
			st:   st,
		}
	}
	pipeline := func(sinkState State, workerOut string) []*instance {
		return []*instance{
			inst("vent", "generate", StateCompleted, sock("out", spec.PUSH, "tcp://127.0.0.1:5000", "")),
			inst("worker.0", "forward", StateRunning, sock("in", spec.PULL, "", "tcp://127.0.0.1:5000"), sock("out", spec.PUSH, "", workerOut)),
			inst("sink", "count", sinkState, sock("in", spec.PULL, "inproc://sink", "")),
		}
	}
	exec := pipeline(StateCompleted, "inproc://sink")
	exec[1].spec.Handler = spec.HandlerRef{Kind: spec.HandlerExec, Argv: []string{"cat"}}
	tests := []struct {
		name  string
		insts []*instance
		want  bool
	}{
		{"all completed", []*instance{inst("g", "generate", StateCompleted, sock("out", spec.PUSH, "inproc://x", "")), inst("c", "count", StateCompleted, sock("in", spec.PULL, "", "inproc://x"))}, false},
		{"finished pipeline", pipeline(StateCompleted, "inproc://sink"), false},
		{"running sink", pipeline(StateRunning, "inproc://sink"), true},
		{"relay to an endpoint outside", pipeline(StateCompleted, "tcp://127.0.0.1:6000"), true},
		{"exec handler", exec, true},
		{"relay bound on tcp", []*instance{inst("echo", "echo", StateRunning, sock("rep", spec.REP, "tcp://127.0.0.1:5001", ""))}, true},
		{"relay chain to a running sink", []*instance{
			inst("a", "forward", StateRunning, sock("in", spec.PULL, "inproc://a", ""), sock("out", spec.PUSH, "", "inproc://b")),
			inst("b", "upper", StateRunning, sock("in", spec.PULL, "inproc://b", ""), sock("out", spec.PUSH, "inproc://c", "")),
			inst("c", "log", StateRunning, sock("in", spec.PULL, "", "inproc://c")),
		}, true},
		{"relay to a completed sink bound on the IPv6 wildcard", []*instance{
			inst("w", "forward", StateRunning, sock("in", spec.PULL, "inproc://w", ""), sock("out", spec.PUSH, "", "tcp://[::1]:5002")),
			inst("c", "count", StateCompleted, sock("in", spec.PULL, "tcp://[::]:5002", "")),
		}, false},
		{"relay chain to a completed sink", []*instance{
			inst("a", "forward", StateRunning, sock("in", spec.PULL, "inproc://a", ""), sock("out", spec.PUSH, "", "inproc://b")),
			inst("b", "upper", StateRunning, sock("in", spec.PULL, "inproc://b", ""), sock("out", spec.PUSH, "inproc://c", "")),
			inst("c", "count", StateCompleted, sock("in", spec.PULL, "", "inproc://c")),
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsDrain(tt.insts); got != tt.want {
				t.Errorf("needsDrain = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLevelsWildcardBinds: a sink bound on a wildcard and the worker that
// reaches it at loopback are one edge, so the sink stops after the worker.
func TestLevelsWildcardBinds(t *testing.T) {
	for _, tc := range []struct{ bind, connect string }{
		{"tcp://*:5003", "tcp://127.0.0.1:5003"},
		{"tcp://0.0.0.0:5003", "tcp://localhost:5003"},
		{"tcp://[::]:5003", "tcp://[::1]:5003"},
	} {
		w := &instance{spec: &spec.Node{Name: "w", Sockets: []*spec.Socket{{Name: "out", Type: spec.PUSH, Connect: []string{tc.connect}}}}}
		c := &instance{spec: &spec.Node{Name: "c", Sockets: []*spec.Socket{{Name: "in", Type: spec.PULL, Bind: []string{tc.bind}}}}}
		ls := levels([]*instance{c, w})
		if len(ls) != 2 || ls[0][0] != w || ls[1][0] != c {
			var got []string
			for _, l := range ls {
				var names []string
				for _, in := range l {
					names = append(names, in.spec.Name)
				}
				got = append(got, strings.Join(names, ","))
			}
			t.Errorf("bind %s, connect %s: levels %q, want [w c]", tc.bind, tc.connect, got)
		}
	}
}
