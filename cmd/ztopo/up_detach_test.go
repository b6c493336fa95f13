package main

import (
	"strings"
	"testing"

	"github.com/ztopo/ztopo/runtime/engine"
)

func TestDetachedArgs(t *testing.T) {
	got := strings.Join(detachedArgs([]string{"-d", "--grace", "2s", "t.yaml", "--detach", "--", "-d"}), " ")
	if want := "--grace 2s t.yaml -- -d"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadiness(t *testing.T) {
	st := func(states ...engine.State) []engine.InstanceStatus {
		var out []engine.InstanceStatus
		for i, s := range states {
			out = append(out, engine.InstanceStatus{Name: string(rune('a' + i)), State: s})
		}
		return out
	}
	cases := []struct {
		name            string
		insts           []engine.InstanceStatus
		ready           bool
		failed, waiting string
	}{
		{"none yet", nil, false, "", ""},
		{"all running", st(engine.StateRunning, engine.StateCompleted), true, "", ""},
		{"one starting", st(engine.StateRunning, engine.StateStarting, engine.StateRestarting), false, "", "b,c"},
		{"one failed", st(engine.StateFailed, engine.StateStarting), false, "a", "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready, failed, waiting := readiness(c.insts)
			if ready != c.ready || strings.Join(failed, ",") != c.failed || strings.Join(waiting, ",") != c.waiting {
				t.Errorf("got %v %v %v, want %v [%s] [%s]", ready, failed, waiting, c.ready, c.failed, c.waiting)
			}
		})
	}
}
