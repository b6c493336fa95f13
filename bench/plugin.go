package main

// The plugin paths of issue 6 and 7: a stage whose handler runs outside
// ztopo, as a ZeroMQ plugin (plugins/examples/upper-go) or as an exec line
// filter, upper-casing 16-byte messages like the in-process `upper` stage
// (stage/upper/inproc) does, so that the two figures compare directly.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/ztopo/ztopo/internal/wasmabi"
	"github.com/ztopo/ztopo/internal/wasmabi/wasmabitest"
	"github.com/ztopo/ztopo/runtime/handler/wasmhost"

	// The "exec" and "plugin" handler kinds register in their init
	// ("wasm" too, imported above).
	_ "github.com/ztopo/ztopo/runtime/handler/exechandler"
	_ "github.com/ztopo/ztopo/runtime/handler/pluginhost"
)

// upperPlugin builds the example Go plugin into a temporary directory that
// remove deletes. The go command's build cache makes this quick after the
// first time; it happens before the run's clock starts.
//
// A suite builds it once (buildUpperPlugin) and hands the path to its
// children in pluginEnv: a child's CPU time then counts the run alone, not
// the compiler and linker it waited for.
func upperPlugin() (bin string, remove func(), err error) {
	if bin := os.Getenv(pluginEnv); bin != "" {
		return bin, func() {}, nil
	}
	return buildUpperPlugin("")
}

// pluginEnv names the upper-go plugin a suite built for its children.
const pluginEnv = "ZTOPO_BENCH_UPPER_GO"

// buildUpperPlugin builds the plugin from the module in dir ("": the
// current directory's).
func buildUpperPlugin(src string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "zbp")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "upper-go")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ztopo/ztopo/plugins/examples/upper-go")
	cmd.Dir = src
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building the upper-go plugin: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func ztopoPluginStage(p Params) (Result, error) {
	bin, remove, err := upperPlugin()
	if err != nil {
		return Result{}, err
	}
	defer remove()
	return ztopoStage(p, 1, fmt.Sprintf("{plugin: %q}", bin), "in", "out", true)
}

func ztopoExecStage(p Params) (Result, error) {
	// stdbuf -oL: tr writes each line as it is done, as the lines codec needs.
	return ztopoStage(p, 1, "{exec: [stdbuf, -oL, tr, a-z, A-Z]}", "in", "out", true)
}

// ztopoPluginReqRep is reqrep/direct/tcp with the plugin as the REP's
// handler: one request in flight at a time, so each round trip waits for
// the plugin's answer to wake the node.
func ztopoPluginReqRep(p Params) (Result, error) {
	bin, remove, err := upperPlugin()
	if err != nil {
		return Result{}, err
	}
	defer remove()
	return serve(p, "plugin-reqrep", func(ep string) string {
		return fmt.Sprintf(`version: 1
name: bench-plugin-reqrep
nodes:
  server:
    handler: {plugin: %q}
    sockets:
      in: {type: REP, bind: %q}
`, bin, ep)
	}, bytes.ToUpper)
}

// upperWasm builds the example WebAssembly handler (wasm/examples/upper)
// into a temporary directory that remove deletes, and compiles it once
// before the run's clock starts (as a validation at `up` would).
//
// A suite builds the module once (buildUpperWasm) and hands its path to its
// children in wasmEnv: the first build compiles Go's standard library for
// wasip1, close to a minute on a small machine, which would otherwise eat
// into a child's time bound.
func upperWasm(guarded bool) (path string, remove func(), err error) {
	remove = func() {}
	if path = os.Getenv(wasmEnv); path == "" {
		if path, remove, err = buildUpperWasm(); err != nil {
			return "", nil, err
		}
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = wasmabi.Check(data, 0, guarded)
	}
	if err != nil {
		remove()
		return "", nil, err
	}
	return path, remove, nil
}

// wasmEnv names the upper wasm module a suite built for its children.
const wasmEnv = "ZTOPO_BENCH_UPPER_WASM"

// buildUpperWasm builds wasm/examples/upper for wasip1 into a temporary
// directory that remove deletes.
func buildUpperWasm() (path string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "zbw")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "upper.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", path, "github.com/ztopo/ztopo/wasm/examples/upper")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building the upper wasm module: %w", err)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// ztopoWasmStage is stage/upper/inproc with the upper-casing done by the
// example WebAssembly module instead of the builtin, with the default
// per-message time limit (guarded code).
func ztopoWasmStage(p Params) (Result, error) { return wasmStage(p, true) }

// ztopoWasmUnguardedStage is ztopoWasmStage with `timeout: 0`: no time
// limit, so code without termination checks.
func ztopoWasmUnguardedStage(p Params) (Result, error) { return wasmStage(p, false) }

// ztopoWasmMinimalStage is ztopoWasmUnguardedStage with a module written
// out by hand (internal/wasmabi/wasmabitest), as a C or Rust handler
// compiles: no language runtime in the module. It shows the host's own cost.
func ztopoWasmMinimalStage(p Params) (Result, error) {
	dir, err := os.MkdirTemp("", "zbw")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "minimal.wasm")
	if err := os.WriteFile(path, wasmabitest.MinimalUpper(), 0o644); err != nil {
		return Result{}, err
	}
	return wasmStageAt(p, path, false)
}

func wasmStage(p Params, guarded bool) (Result, error) {
	path, remove, err := upperWasm(guarded)
	if err != nil {
		return Result{}, err
	}
	defer remove()
	return wasmStageAt(p, path, guarded)
}

func wasmStageAt(p Params, path string, guarded bool) (Result, error) {
	h := fmt.Sprintf("{wasm: %q}", path)
	if !guarded {
		h += "\n    config: {timeout: 0}"
	}
	c0 := wasmhost.FramesCopied()
	r, err := ztopoStage(p, 1, h, "in", "out", true)
	if r.Msgs > 0 {
		r.CopiesPerMsg = float64(wasmhost.FramesCopied()-c0) / float64(r.Msgs)
	}
	return r, err
}
