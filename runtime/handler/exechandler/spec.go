package exechandler

import (
	"context"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// ConfigFor is the Config of a resolved `handler: {exec: [...]}` node
// instance: its argv, its restart policy and the `config` keys `timeout`,
// `max_line` and `drop`. The child runs in the topology file's directory,
// so that a script named relative to the file is found. The caller adds
// Logger and WatchFile.
func ConfigFor(n *spec.Node, t *spec.Topology) Config {
	cfg := Config{Argv: append([]string(nil), n.Handler.Argv...), Node: n.Name, Restart: n.Restart}
	if d, ok := n.Config["timeout"].(time.Duration); ok {
		cfg.Timeout = d
	}
	if i, ok := n.Config["max_line"].(int); ok {
		cfg.MaxLine = i
	}
	if s, ok := n.Config["drop"].(string); ok {
		cfg.Drop, cfg.DropSet = s, true
	}
	if t != nil {
		cfg.Dir = t.Dir
		cfg.Env = []string{"ZTOPO_TOPOLOGY=" + t.Name}
	}
	return cfg
}

func init() {
	handler.Kinds.Register(string(spec.HandlerExec), NewFactory(true))
}

// NewFactory returns the handler.Factory of `handler: {exec: [...]}`
// nodes, registered in handler.Kinds with watch on (the script file swaps
// the child when it changes); `ztopo up --no-watch` registers one with
// watch off in its own registry. An error wrapping ErrStart means the
// program cannot be started.
func NewFactory(watch bool) handler.Factory {
	return func(_ map[string]any, env handler.Env) (any, error) {
		cfg := ConfigFor(env.Node, env.Topo)
		cfg.Logger, cfg.WatchFile = env.Logger, watch
		return New(context.Background(), cfg)
	}
}
