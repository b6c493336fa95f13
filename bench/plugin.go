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

	// The "exec" and "plugin" handler kinds register in their init.
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
	port, err := freePort()
	if err != nil {
		return Result{}, err
	}
	ep := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	yaml := fmt.Sprintf(`version: 1
name: bench-plugin-reqrep
nodes:
  server:
    handler: {plugin: %q}
    sockets:
      in: {type: REP, bind: %q}
`, bin, ep)
	return serve(p, "plugin-reqrep", yaml, ep, bytes.ToUpper)
}
