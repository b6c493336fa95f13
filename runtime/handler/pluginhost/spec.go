package pluginhost

import (
	"time"

	"github.com/ztopo/ztopo/spec"
)

// ConfigFor is the Config of a resolved `handler: {plugin: path}` node
// instance: the executable, ZTOPO_NODE and ZTOPO_TOPOLOGY, the endpoints in
// the topology's private runtime directory, and the `timeout` and
// `inflight` config keys. The caller adds Logger and WatchFile.
func ConfigFor(n *spec.Node, t *spec.Topology) Config {
	cfg := Config{Path: n.Handler.Path, Node: n.Name}
	if t != nil {
		cfg.Topology, cfg.Dir = t.Name, t.RuntimeDir
	}
	if d, ok := n.Config["timeout"].(time.Duration); ok {
		cfg.Timeout = d
	}
	if i, ok := n.Config["inflight"].(int); ok {
		cfg.Inflight = i
	}
	return cfg
}
