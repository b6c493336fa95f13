package exechandler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/exechandler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
	"github.com/ztopo/ztopo/spec"
)

func TestConfigFor(t *testing.T) {
	topo := &spec.Topology{Name: "plugins", Dir: "/srv/topo"}
	n := &spec.Node{Name: "tidy", Handler: spec.HandlerRef{Kind: spec.HandlerExec, Argv: []string{"sed", "-u", "s/a/b/"}, Codec: "lines"}}
	got := fmt.Sprintf("%q %q %q %q", exechandler.ConfigFor(n, topo).Argv, exechandler.ConfigFor(n, topo).Dir,
		exechandler.ConfigFor(n, topo).Node, exechandler.ConfigFor(n, topo).Env)
	want := `["sed" "-u" "s/a/b/"] "/srv/topo" "tidy" ["ZTOPO_TOPOLOGY=plugins"]`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestFactory(t *testing.T) {
	e := newEnv(t)
	f := handlertest.KindFactory(t, spec.HandlerExec)
	dir, _ := filepath.Abs("testdata")
	// A script named relative to the topology's directory.
	n := &spec.Node{Name: "tidy", Handler: spec.HandlerRef{Kind: spec.HandlerExec, Argv: []string{"/usr/bin/python3", "upper.py"}, Codec: "lines"}}
	h, err := f(map[string]any{}, handler.Env{Node: n, Topo: &spec.Topology{Name: "t", Dir: dir}, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	x := h.(*exechandler.Exec)
	e.note(x)
	defer e.close(x)
	out, err := x.Handle(context.Background(), msg("topic", "abc"))
	if err != nil || q(out) != `["topic" "ABC"]` {
		t.Fatalf("got %s, %v", q(out), err)
	}
}
