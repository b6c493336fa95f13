package pluginhost_test

import (
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler/pluginhost"
	"github.com/ztopo/ztopo/spec"
)

func TestConfigFor(t *testing.T) {
	topo := &spec.Topology{Name: "plugins", RuntimeDir: "/run/zt"}
	n := &spec.Node{
		Name:    "shout.1",
		Handler: spec.HandlerRef{Kind: spec.HandlerPlugin, Path: "/srv/upper"},
		Config:  map[string]any{"timeout": 5 * time.Second, "inflight": 64},
	}
	got := pluginhost.ConfigFor(n, topo)
	want := pluginhost.Config{Path: "/srv/upper", Node: "shout.1", Topology: "plugins", Dir: "/run/zt", Timeout: 5 * time.Second, Inflight: 64}
	if got.Path != want.Path || got.Node != want.Node || got.Topology != want.Topology || got.Dir != want.Dir ||
		got.Timeout != want.Timeout || got.Inflight != want.Inflight {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
