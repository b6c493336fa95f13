package spec

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Resolved is a Topology as `ztopo config` prints it, like `docker compose
// config`: every variable interpolated, every default applied, replicas
// expanded into instances, every endpoint as it will be bound or
// connected. It is for reading, not a topology file: instances are keyed
// by their names (worker.0), and durations are written as text (250ms).
type Resolved struct {
	Version    int                     `yaml:"version" json:"version"`
	Name       string                  `yaml:"name" json:"name"`
	File       string                  `yaml:"file" json:"file"`
	RuntimeDir string                  `yaml:"runtime_dir" json:"runtime_dir"`
	Nodes      map[string]ResolvedNode `yaml:"nodes" json:"nodes"`
	Order      []string                `yaml:"-" json:"-"`
}

// ResolvedNode is one node instance of Resolved.
type ResolvedNode struct {
	Node     string         `yaml:"node" json:"node"`
	Replica  int            `yaml:"replica" json:"replica"`
	Replicas int            `yaml:"replicas" json:"replicas"`
	Host     string         `yaml:"host,omitempty" json:"host,omitempty"`
	Handler  any            `yaml:"handler,omitempty" json:"handler,omitempty"`
	Command  []string       `yaml:"command,omitempty" json:"command,omitempty"`
	Config   map[string]any `yaml:"config,omitempty" json:"config,omitempty"`
	Run      string         `yaml:"run" json:"run"`
	// Env is what the node's child process gets from the file on top of
	// ztopo's environment: its `env`, and for a command ZTOPO_VAR_<NAME>
	// for each of the file's vars.
	Env     map[string]string         `yaml:"env,omitempty" json:"env,omitempty"`
	Restart ResolvedRestart           `yaml:"restart" json:"restart"`
	Sync    *ResolvedSync             `yaml:"sync,omitempty" json:"sync,omitempty"`
	Sockets map[string]ResolvedSocket `yaml:"sockets,omitempty" json:"sockets,omitempty"`
}

// ResolvedRestart is the long form of a restart policy.
type ResolvedRestart struct {
	Policy      string `yaml:"policy" json:"policy"`
	MaxRestarts int    `yaml:"max_restarts" json:"max_restarts"`
	Within      string `yaml:"within" json:"within"`
	BackoffMin  string `yaml:"backoff_min" json:"backoff_min"`
	BackoffMax  string `yaml:"backoff_max" json:"backoff_max"`
}

// ResolvedSync is a start barrier with its endpoints.
type ResolvedSync struct {
	Expect  int    `yaml:"expect,omitempty" json:"expect,omitempty"`
	Bind    string `yaml:"bind,omitempty" json:"bind,omitempty"`
	Connect string `yaml:"connect,omitempty" json:"connect,omitempty"`
}

// ResolvedSocket is a socket with its endpoints.
type ResolvedSocket struct {
	Type      string         `yaml:"type" json:"type"`
	Role      string         `yaml:"role" json:"role"`
	Bind      []string       `yaml:"bind,omitempty" json:"bind,omitempty"`
	Connect   []string       `yaml:"connect,omitempty" json:"connect,omitempty"`
	Subscribe []string       `yaml:"subscribe,omitempty" json:"subscribe,omitempty"`
	Identity  string         `yaml:"identity,omitempty" json:"identity,omitempty"`
	Options   map[string]any `yaml:"options,omitempty" json:"options,omitempty"`
}

// Resolve gives t as `ztopo config` prints it.
func (t *Topology) Resolve() *Resolved {
	r := &Resolved{Version: t.Version, Name: t.Name, File: t.File, RuntimeDir: t.RuntimeDir, Nodes: map[string]ResolvedNode{}}
	for _, n := range t.Nodes {
		rn := ResolvedNode{
			Node: n.Base, Replica: n.Replica, Replicas: n.Replicas, Host: n.Host,
			Run: string(n.Run),
			Restart: ResolvedRestart{
				Policy: string(n.Restart.Policy), MaxRestarts: n.Restart.MaxRestarts,
				Within: n.Restart.Within.String(), BackoffMin: n.Restart.BackoffMin.String(), BackoffMax: n.Restart.BackoffMax.String(),
			},
		}
		switch n.Handler.Kind {
		case HandlerBuiltin:
			rn.Handler = n.Handler.Name
		case HandlerExec:
			rn.Handler = map[string]any{"exec": n.Handler.Argv}
		case HandlerPlugin:
			rn.Handler = map[string]any{"plugin": n.Handler.Path}
		case HandlerCommand:
			rn.Command = n.Handler.Argv
		default:
			rn.Handler = map[string]any{string(n.Handler.Kind): n.Handler.Path}
		}
		if len(n.Config) > 0 {
			rn.Config = map[string]any{}
			for k, v := range n.Config {
				rn.Config[k] = plainValue(v)
			}
		}
		rn.Env = n.ChildEnv()
		if s := n.Sync; s != nil {
			rn.Sync = &ResolvedSync{Expect: s.Expect, Bind: s.Bind, Connect: s.Connect}
		}
		for _, s := range n.Sockets {
			if rn.Sockets == nil {
				rn.Sockets = map[string]ResolvedSocket{}
			}
			rs := ResolvedSocket{Type: string(s.Type), Role: string(s.EffectiveRole()), Bind: s.Bind, Connect: s.Connect, Subscribe: s.Subscribe, Identity: s.Identity}
			for _, o := range s.Options {
				if rs.Options == nil {
					rs.Options = map[string]any{}
				}
				rs.Options[o.Name] = o.Value
			}
			rn.Sockets[s.Name] = rs
		}
		r.Nodes[n.Name] = rn
		r.Order = append(r.Order, n.Name)
	}
	return r
}

// plainValue makes a config value printable: durations as text.
func plainValue(v any) any {
	switch x := v.(type) {
	case time.Duration:
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainValue(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = plainValue(e)
		}
		return out
	}
	return v
}

// YAML renders r with nodes in the topology's order (worker.2 before
// worker.10), not sorted as text.
func (r *Resolved) YAML() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(r); err != nil {
		return nil, err
	}
	// doc is a mapping; reorder the "nodes" mapping's pairs.
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "nodes" {
			continue
		}
		m := doc.Content[i+1]
		pos := map[string]int{}
		for j, n := range r.Order {
			pos[n] = j
		}
		type pair struct{ k, v *yaml.Node }
		pairs := make([]pair, 0, len(m.Content)/2)
		for j := 0; j+1 < len(m.Content); j += 2 {
			pairs = append(pairs, pair{m.Content[j], m.Content[j+1]})
		}
		sort.SliceStable(pairs, func(a, b int) bool { return pos[pairs[a].k.Value] < pos[pairs[b].k.Value] })
		m.Content = m.Content[:0]
		for _, p := range pairs {
			m.Content = append(m.Content, p.k, p.v)
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}

// JSON renders r with nodes in the topology's order.
func (r *Resolved) JSON() ([]byte, error) {
	var b bytes.Buffer
	head, err := json.Marshal(struct {
		Version    int    `json:"version"`
		Name       string `json:"name"`
		File       string `json:"file"`
		RuntimeDir string `json:"runtime_dir"`
	}{r.Version, r.Name, r.File, r.RuntimeDir})
	if err != nil {
		return nil, err
	}
	b.Write(head[:len(head)-1])
	b.WriteString(`,"nodes":{`)
	for i, n := range r.Order {
		if i > 0 {
			b.WriteByte(',')
		}
		v, err := json.Marshal(r.Nodes[n])
		if err != nil {
			return nil, err
		}
		b.WriteString(strconv.Quote(n))
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteString("}}")
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
