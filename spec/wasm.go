package spec

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztopo/ztopo/internal/wasmabi"
)

// wasm checks the config of a `handler: {wasm: path}` node: memory, env
// and the form of dirs, whose host paths become absolute. checkWasm
// checks the module once hosts are placed.
func (r *resolver) wasm(fn *FileNode, n *Node) {
	cfg := fn.Config
	at := func(key string, fallback Pos) Pos {
		if v := cfg.Get(key); v != nil {
			return v.Pos
		}
		return fallback
	}
	if s, ok := n.Config["memory"].(string); ok {
		if _, err := wasmabi.ParseMemory(s); err != nil {
			r.errorf(at("memory", fn.Pos), "", "%v", err)
		}
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
			if !ok || host == "" || !strings.HasPrefix(guest, "/") {
				r.errorf(itemPos(cfg.Get("dirs"), i), "", "dirs entries are HOST:GUEST with an absolute GUEST path (./data:/data), got %q", d)
				continue
			}
			abs[i] = r.relPath(host) + ":" + guest
		}
		n.Config["dirs"] = abs
	}
}

// checkWasm reads and compiles the module of every wasm node of this share
// (the others run on another machine) and checks its dirs: the module must
// compile under the node's memory limit and export the ztopo-wasm/1 ABI.
// The module is compiled once per process: `up` finds it compiled.
func (r *resolver) checkWasm() {
	for _, in := range r.insts {
		n, fn := in.n, in.fn
		if n.Handler.Kind != HandlerWasm || (r.share != "" && n.Host != r.share) {
			continue
		}
		if dirs, ok := n.Config["dirs"].([]string); ok {
			for i, d := range dirs {
				host, _, _ := strings.Cut(d, ":")
				if host == "" {
					continue // reported
				}
				if st, err := os.Stat(host); err != nil || !st.IsDir() {
					r.errorf(itemPos(fn.Config.Get("dirs"), i), "", "dirs: %s is not a directory", host)
				}
			}
		}
		var memory int64
		if s, ok := n.Config["memory"].(string); ok {
			memory, _ = wasmabi.ParseMemory(s) // 0 after an error, reported: the default
		}
		pos := fn.Pos
		if v := fn.Handler.Get("wasm"); v != nil {
			pos = v.Pos
		}
		if n.Handler.Path == "" {
			continue
		}
		shown := n.Handler.Path
		if rel, err := filepath.Rel(r.dir, shown); err == nil && !strings.HasPrefix(rel, "..") {
			shown = rel
		}
		data, err := wasmabi.ReadFile(n.Handler.Path)
		if err != nil {
			r.errorf(pos, "", "cannot read wasm module %s: %v", shown, unwrapPathError(err))
			continue
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
