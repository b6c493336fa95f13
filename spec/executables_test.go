package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckExecutables: command, exec and plugin programs must exist and be
// executable, looked up in PATH for a bare name and from the file's
// directory for a path (issue 12 item 8: `command: [pythn3, ...]`, `{exec:
// [awkk, ...]}` and `{plugin: ./nope-plugin}` validated ok).
func TestCheckExecutables(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"bin/filter": 0o755, "bin/python3": 0o755, "plugin-ok": 0o755, "script.py": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	src := `version: 1
name: p
nodes:
  a:
    command: [pythn3, script.py]
    sockets:
      out: {type: PUSH, bind: "tcp://127.0.0.1:5999"}
  b:
    replicas: 3
    handler: {exec: [filtr]}
    sockets:
      in: {type: PULL, connect: a.out}
      out: {type: PUSH, bind: auto}
  c:
    handler: {plugin: ./nope-plugin}
    sockets:
      in: {type: PULL, connect: b.out}
      out: {type: PUSH, bind: auto}
  d:
    handler: {exec: [./script.py]}
    sockets:
      in: {type: PULL, connect: c.out}
      out: {type: PUSH, bind: auto}
  e:
    handler: {plugin: plugin-ok}
    sockets:
      in: {type: PULL, connect: d.out}
      out: {type: PUSH, bind: auto}
  f:
    command: [python3, script.py]
    sockets:
      in: {type: PULL, connect: e.out}
  g:
    handler: {exec: [bin]}
    sockets:
      in: {type: PULL, bind: auto}
`
	file := filepath.Join(dir, "topology.yaml")
	env := mapEnv(map[string]string{"PATH": bin})
	_, ds := Parse(file, []byte(src), LoadOptions{Env: env, RuntimeDir: testRuntimeDir, CheckExecutables: true})
	want := file + `:5:15: command of node "a": "pythn3" not found in PATH (did you mean "python3"?)
` + file + `:10:22: exec handler of node "b": "filtr" not found in PATH (did you mean "filter"?)
` + file + `:15:23: plugin of node "c": ` + dir + `/nope-plugin: no such file or directory
` + file + `:20:22: exec handler of node "d": ` + dir + `/script.py is not executable (mode 0644) (chmod +x it, or run it through its interpreter, e.g. [python3, script.py])
` + file + `:34:22: exec handler of node "g": "bin" not found in PATH (check the spelling, install it, or give its path)`
	if got := ds.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Off (the default for the library): nothing about programs.
	if _, ds := Parse(file, []byte(src), LoadOptions{Env: env, RuntimeDir: testRuntimeDir}); len(ds) != 0 {
		t.Errorf("without CheckExecutables: got %v, want nothing", ds)
	}
}
