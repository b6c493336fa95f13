package procnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/ztopo/ztopo/spec"
)

// wireVersion is the version of the child spec. Parent and child are the
// same executable, so a mismatch means a ztopo binary replaced under a
// running topology; the child refuses rather than guessing.
const wireVersion = 1

// maxSpecBytes bounds the encoded spec: it travels in one environment
// variable, and Linux refuses a single variable over 128 KiB at exec.
const maxSpecBytes = 120 << 10

// childSpec is what a `ztopo _node` child is told: the resolved node and
// the parts of its topology that handlers may need. Only the node's own
// instance is sent (Topology.Nodes holds just it): a child runs one node.
type childSpec struct {
	Version    int        `json:"version"`
	Topology   wireTopo   `json:"topology"`
	Node       *spec.Node `json:"node"`
	DrainNanos int64      `json:"drain_ns"`
}

type wireTopo struct {
	Version    int    `json:"version"`
	Name       string `json:"name"`
	File       string `json:"file"`
	Dir        string `json:"dir"`
	RuntimeDir string `json:"runtime_dir"`
}

// encodeSpec renders what the child needs as JSON. spec.Node is encoded as
// is (every exported field, so fields added to it later travel too), except
// for its `any` values — handler config and socket option values — which
// go through a tagged form, since plain JSON would turn an int or a
// time.Duration into a float64 and a []string into a []any.
func encodeSpec(t *spec.Topology, n *spec.Node, drain time.Duration) (string, error) {
	cp := *n
	cp.Config = make(map[string]any, len(n.Config))
	for k, v := range n.Config {
		tv, err := tagValue(v)
		if err != nil {
			return "", fmt.Errorf("config %q: %w", k, err)
		}
		cp.Config[k] = tv
	}
	cp.Sockets = make([]*spec.Socket, len(n.Sockets))
	for i, s := range n.Sockets {
		sc := *s
		sc.Options = make([]spec.Option, len(s.Options))
		for j, o := range s.Options {
			tv, err := tagValue(o.Value)
			if err != nil {
				return "", fmt.Errorf("socket %q: option %q: %w", s.Name, o.Name, err)
			}
			sc.Options[j] = spec.Option{Name: o.Name, Value: tv}
		}
		if s.Options == nil {
			sc.Options = nil
		}
		cp.Sockets[i] = &sc
	}
	if n.Sockets == nil {
		cp.Sockets = nil
	}
	cs := childSpec{
		Version: wireVersion,
		Topology: wireTopo{
			Version: t.Version, Name: t.Name, File: t.File, Dir: t.Dir, RuntimeDir: t.RuntimeDir,
		},
		Node:       &cp,
		DrainNanos: int64(drain),
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return "", err
	}
	if len(b) > maxSpecBytes {
		return "", fmt.Errorf("node spec is %d bytes encoded, more than the %d a child process can be given; make its config smaller", len(b), maxSpecBytes)
	}
	return string(b), nil
}

// decodeSpec is encodeSpec's inverse.
func decodeSpec(s string) (*spec.Topology, *spec.Node, time.Duration, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var cs childSpec
	if err := dec.Decode(&cs); err != nil {
		return nil, nil, 0, fmt.Errorf("node spec: %w", err)
	}
	if cs.Version != wireVersion {
		return nil, nil, 0, fmt.Errorf("node spec: version %d, this ztopo reads version %d (was the binary replaced while running?)", cs.Version, wireVersion)
	}
	n := cs.Node
	if n == nil {
		return nil, nil, 0, fmt.Errorf("node spec: no node")
	}
	cfg := make(map[string]any, len(n.Config))
	for k, v := range n.Config {
		pv, err := untagValue(v)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("node spec: config %q: %w", k, err)
		}
		cfg[k] = pv
	}
	n.Config = cfg
	for _, sock := range n.Sockets {
		for j := range sock.Options {
			pv, err := untagValue(sock.Options[j].Value)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("node spec: socket %q: option %q: %w", sock.Name, sock.Options[j].Name, err)
			}
			sock.Options[j].Value = pv
		}
	}
	t := &spec.Topology{
		Version:    cs.Topology.Version,
		Name:       cs.Topology.Name,
		File:       cs.Topology.File,
		Dir:        cs.Topology.Dir,
		RuntimeDir: cs.Topology.RuntimeDir,
		Nodes:      []*spec.Node{n},
	}
	return t, n, time.Duration(cs.DrainNanos), nil
}

// tagValue wraps a config or option value in a one-key object naming its Go
// type: {"int":42}, {"dur":250000000}, {"strs":["a"]}, {"list":[...]},
// {"map":{...}}, {"float":"1.5"} (text, so that every float64 round-trips
// exactly), {"str":...}, {"bool":...}, {"nil":true}.
func tagValue(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return map[string]any{"nil": true}, nil
	case bool:
		return map[string]any{"bool": x}, nil
	case int:
		return map[string]any{"int": x}, nil
	case float64:
		return map[string]any{"float": strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case string:
		return map[string]any{"str": x}, nil
	case time.Duration:
		return map[string]any{"dur": int64(x)}, nil
	case []string:
		if x == nil {
			return map[string]any{"strs": nil}, nil
		}
		return map[string]any{"strs": x}, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			tv, err := tagValue(e)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = tv
		}
		return map[string]any{"list": out}, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			tv, err := tagValue(e)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = tv
		}
		return map[string]any{"map": out}, nil
	}
	return nil, fmt.Errorf("cannot pass a value of type %T to a child process", v)
}

// untagValue reads what tagValue wrote, as decoded with UseNumber.
func untagValue(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("malformed value %v", v)
	}
	var tag string
	var raw any
	for k, e := range m {
		tag, raw = k, e
	}
	switch tag {
	case "nil":
		return nil, nil
	case "bool":
		if b, ok := raw.(bool); ok {
			return b, nil
		}
	case "int":
		if n, ok := raw.(json.Number); ok {
			i, err := strconv.ParseInt(string(n), 10, 64)
			if err == nil && i >= math.MinInt && i <= math.MaxInt {
				return int(i), nil
			}
		}
	case "float":
		if s, ok := raw.(string); ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return f, nil
			}
		}
	case "str":
		if s, ok := raw.(string); ok {
			return s, nil
		}
	case "dur":
		if n, ok := raw.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return time.Duration(i), nil
			}
		}
	case "strs":
		if raw == nil {
			return []string(nil), nil
		}
		if l, ok := raw.([]any); ok {
			out := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("malformed string list item %v", e)
				}
				out[i] = s
			}
			return out, nil
		}
	case "list":
		if l, ok := raw.([]any); ok {
			out := make([]any, len(l))
			for i, e := range l {
				pv, err := untagValue(e)
				if err != nil {
					return nil, err
				}
				out[i] = pv
			}
			return out, nil
		}
	case "map":
		if mm, ok := raw.(map[string]any); ok {
			out := make(map[string]any, len(mm))
			keys := make([]string, 0, len(mm))
			for k := range mm {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				pv, err := untagValue(mm[k])
				if err != nil {
					return nil, err
				}
				out[k] = pv
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("malformed value %v", v)
}
