package spec

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztopo/ztopo/internal/wasmabi"
)

// wasm checks what can be checked of a `handler: {wasm: path}` node before
// it runs: its config's memory, env and dirs, and the module itself — it
// must compile under the node's memory limit and export the ztopo-wasm/1
// ABI. The module is compiled once per process: `up` finds it compiled.
// Host paths in dirs become absolute.
func (r *resolver) wasm(fn *FileNode, n *Node) {
	cfg := fn.Config
	at := func(key string, fallback Pos) Pos {
		if v := cfg.Get(key); v != nil {
			return v.Pos
		}
		return fallback
	}
	var memory int64
	if s, ok := n.Config["memory"].(string); ok {
		m, err := wasmabi.ParseMemory(s)
		if err != nil {
			r.errorf(at("memory", fn.Pos), "", "%v", err)
		}
		memory = m // 0 after an error: the module is checked under the default
	}
	if env, ok := n.Config["env"].([]string); ok {
		for i, kv := range env {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				r.errorf(itemPos(cfg.Get("env"), i), "", "env entries are KEY=value, got %q", kv)
			}
		}
	}
	if dirs, ok := n.Config["dirs"].([]string); ok {
		abs := make([]string, len(dirs))
		for i, d := range dirs {
			host, guest, ok := strings.Cut(d, ":")
			pos := itemPos(cfg.Get("dirs"), i)
			if !ok || host == "" || !strings.HasPrefix(guest, "/") {
				r.errorf(pos, "", "dirs entries are HOST:GUEST with an absolute GUEST path (./data:/data), got %q", d)
				continue
			}
			host = r.relPath(host)
			if st, err := os.Stat(host); err != nil || !st.IsDir() {
				r.errorf(pos, "", "dirs: %s is not a directory", host)
			}
			abs[i] = host + ":" + guest
		}
		n.Config["dirs"] = abs
	}

	pos := fn.Pos
	if v := fn.Handler.Get("wasm"); v != nil {
		pos = v.Pos
	}
	if n.Handler.Path == "" {
		return
	}
	shown := n.Handler.Path
	if rel, err := filepath.Rel(r.dir, shown); err == nil && !strings.HasPrefix(rel, "..") {
		shown = rel
	}
	data, err := wasmabi.ReadFile(n.Handler.Path)
	if err != nil {
		r.errorf(pos, "", "cannot read wasm module %s: %v", shown, unwrapPathError(err))
		return
	}
	// timeout: 0 turns the time limit off, and the module is compiled
	// without the checks that enforce it.
	guarded := true
	if d, ok := n.Config["timeout"].(time.Duration); ok && d == 0 {
		guarded = false
	}
	if err := wasmabi.Check(data, memory, guarded); err != nil {
		r.errorf(pos, "", "wasm module %s %v", shown, err)
	}
}

// itemPos is the position of a list's i-th item, else of the list.
func itemPos(v *Value, i int) Pos {
	if v == nil {
		return Pos{}
	}
	if i < len(v.Items) {
		return v.Items[i].Pos
	}
	return v.Pos
}
