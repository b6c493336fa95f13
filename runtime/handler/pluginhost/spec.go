package pluginhost

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// ConfigFor is the Config of a resolved `handler: {plugin: path}` node
// instance: the executable, ZTOPO_NODE and ZTOPO_TOPOLOGY, the endpoints in
// the topology's private runtime directory, the node's restart policy, and
// the `timeout`, `inflight` and `max_message` config keys. The caller adds Logger and WatchFile.
func ConfigFor(n *spec.Node, t *spec.Topology) Config {
	cfg := Config{Path: n.Handler.Path, Node: n.Name, Restart: n.Restart}
	if t != nil {
		cfg.Topology, cfg.Dir = t.Name, t.RuntimeDir
	}
	if d, ok := n.Config["timeout"].(time.Duration); ok {
		cfg.Timeout = d
	}
	if i, ok := n.Config["inflight"].(int); ok {
		cfg.Inflight = i
	}
	if i, ok := n.Config["max_message"].(int); ok {
		cfg.MaxMessage = int64(i)
	}
	return cfg
}

func init() {
	handler.Kinds.Register(string(spec.HandlerPlugin), NewFactory(true))
}

// NewFactory returns the handler.Factory of `handler: {plugin: path}`
// nodes, registered in handler.Kinds with watch on; `ztopo up --no-watch`
// registers one with watch off in its own registry. The factory returns
// once the plugin is READY; an error wrapping ErrHandshake means it cannot
// work as configured.
//
// All hosts of the process share one ZeroMQ context of their own: plugins
// talk over ipc, so they need nothing from the nodes' context, and one
// context means one I/O thread however many plugin nodes there are. Every
// socket in it has linger 0; it is never terminated.
func NewFactory(watch bool) handler.Factory {
	return func(_ map[string]any, env handler.Env) (any, error) {
		zctx, err := sharedContext()
		if err != nil {
			return nil, err
		}
		cfg := ConfigFor(env.Node, env.Topo)
		cfg.Logger, cfg.WatchFile = env.Logger, watch
		return New(context.Background(), zctx, cfg)
	}
}

var shared struct {
	once sync.Once
	zctx *zmq4.Context
	err  error
}

func sharedContext() (*zmq4.Context, error) {
	shared.once.Do(func() {
		shared.zctx, shared.err = zmq4.NewContext()
		if shared.err != nil {
			shared.err = fmt.Errorf("pluginhost: zeromq context: %w", shared.err)
		}
	})
	return shared.zctx, shared.err
}
