package exechandler

import "github.com/ztopo/ztopo/spec"

// ConfigFor is the Config of a resolved `handler: {exec: [...]}` node
// instance. The child runs in the topology file's directory, so that a
// script named relative to the file is found. The caller adds Logger and
// WatchFile.
func ConfigFor(n *spec.Node, t *spec.Topology) Config {
	cfg := Config{Argv: append([]string(nil), n.Handler.Argv...), Node: n.Name}
	if t != nil {
		cfg.Dir = t.Dir
		cfg.Env = []string{"ZTOPO_TOPOLOGY=" + t.Name}
	}
	return cfg
}
