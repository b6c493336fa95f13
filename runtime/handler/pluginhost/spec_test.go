package pluginhost_test

import (
	"context"
	"errors"
	"github.com/ztopo/ztopo/internal/testutil"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
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

// The factory the engine finds in handler.Kinds builds a READY host from a
// resolved node.
func TestFactory(t *testing.T) {
	e := newEnv(t)
	f := handlertest.KindFactory(t, spec.HandlerPlugin)
	n := &spec.Node{Name: "shout", Handler: spec.HandlerRef{Kind: spec.HandlerPlugin, Path: testutil.RepoPath(t, "plugins/examples/python/upper_plugin.py")}, Config: map[string]any{}}
	h, err := f(n.Config, handler.Env{Node: n, Topo: &spec.Topology{Name: "plugins", RuntimeDir: e.dir}, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	host := h.(*pluginhost.Host)
	defer closeHost(t, host)
	out, err := host.Handle(context.Background(), msg("hi"))
	if err != nil || frames(out) != `["HI"]` {
		t.Fatalf("got %s, %v", frames(out), err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "shout.plugin.1.sock")); err != nil {
		t.Fatalf("endpoint not in the runtime dir: %v", err)
	}
	// A handshake failure comes out of the factory, for the engine to fail
	// the node without restarting it.
	n.Handler.Path = "/nonexistent"
	if _, err := f(n.Config, handler.Env{Node: n, Topo: &spec.Topology{Name: "plugins", RuntimeDir: e.dir}}); !errors.Is(err, pluginhost.ErrHandshake) {
		t.Fatalf("got %v, want ErrHandshake", err)
	}
}
