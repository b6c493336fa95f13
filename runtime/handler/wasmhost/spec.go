package wasmhost

import (
	"time"

	"github.com/ztopo/ztopo/internal/wasmabi"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// ConfigFor is the Config of a resolved `handler: {wasm: path}` node
// instance, from its config keys (memory, timeout, clock, random, env,
// dirs; spec has checked them). The caller adds Logger and WatchFile.
func ConfigFor(n *spec.Node) Config {
	cfg := Config{Path: n.Handler.Path, Node: n.Name}
	if s, ok := n.Config["memory"].(string); ok {
		if m, err := wasmabi.ParseMemory(s); err == nil {
			cfg.Memory = m
		}
	}
	if d, ok := n.Config["timeout"].(time.Duration); ok {
		cfg.Timeout = d
		if d == 0 {
			cfg.Timeout = NoTimeout
		}
	}
	cfg.Clock, _ = n.Config["clock"].(bool)
	cfg.Random, _ = n.Config["random"].(bool)
	cfg.Env, _ = n.Config["env"].([]string)
	cfg.Dirs, _ = n.Config["dirs"].([]string)
	return cfg
}

func init() {
	handler.Kinds.Register(string(spec.HandlerWasm), NewFactory(true))
}

// NewFactory returns the handler.Factory of `handler: {wasm: path}` nodes,
// registered in handler.Kinds with watch on; `ztopo up --no-watch`
// registers one with watch off in its own registry.
func NewFactory(watch bool) handler.Factory {
	return func(_ map[string]any, env handler.Env) (any, error) {
		cfg := ConfigFor(env.Node)
		cfg.Logger, cfg.WatchFile = env.Logger, watch
		return New(cfg)
	}
}
