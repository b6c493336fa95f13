package exechandler_test

import (
	"fmt"
	"testing"

	"github.com/ztopo/ztopo/runtime/handler/exechandler"
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
