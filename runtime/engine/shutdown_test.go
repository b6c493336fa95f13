package engine

import (
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
