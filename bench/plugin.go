package main

// The plugin paths of issue 6 and 7: a stage whose handler runs outside
// ztopo, as a ZeroMQ plugin (plugins/examples/upper-go) or as an exec line
// filter, upper-casing 16-byte messages like the in-process `upper` stage
// (stage/upper/inproc) does, so that the two figures compare directly.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	// The "exec" and "plugin" handler kinds register in their init.
	_ "github.com/ztopo/ztopo/runtime/handler/exechandler"
	_ "github.com/ztopo/ztopo/runtime/handler/pluginhost"
)

// buildUpperPlugin builds the example Go plugin into dir. The go command's
// build cache makes this quick after the first time; it happens before the
// run's clock starts.
func buildUpperPlugin(dir string) (string, error) {
	bin := filepath.Join(dir, "upper-go")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ztopo/ztopo/plugins/examples/upper-go")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the upper-go plugin: %w", err)
	}
	return bin, nil
}

func ztopoPluginStage(p Params) (Result, error) {
	dir, err := os.MkdirTemp("", "zbp")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	bin, err := buildUpperPlugin(dir)
	if err != nil {
		return Result{}, err
	}
	return ztopoHandlerStage(p, fmt.Sprintf("{plugin: %q}", bin))
}

func ztopoExecStage(p Params) (Result, error) {
	// stdbuf -oL: tr writes each line as it is done, as the lines codec needs.
	return ztopoHandlerStage(p, "{exec: [stdbuf, -oL, tr, a-z, A-Z]}")
}

// ztopoHandlerStage runs generate -> a stage with handler h -> count over
// inproc and checks nothing was lost.
func ztopoHandlerStage(p Params, h string) (Result, error) {
	yaml := fmt.Sprintf(`version: 1
name: bench-plugin
nodes:
  source:
    handler: generate
    config: {count: %d, payload: %q}
    sockets:
      out: {type: PUSH, bind: auto}
  stage:
    handler: %s
    sockets:
      in: {type: PULL, connect: source.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: auto}
`, p.Count, payload(p.Size), h, p.Count)
	return throughputRun("plugin", yaml, p.Count, "sink")
}
