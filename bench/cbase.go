package main

// The C baseline: bench/c/zbench.c, compiled at run time with the system
// compiler against the libzmq pkg-config finds, the same library cgo links
// ztopo and pebbe/zmq4 against.

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed c/zbench.c
var zbenchC []byte

// buildC compiles zbench.c into a new temporary directory that remove
// deletes. CC names the compiler (default cc).
func buildC() (bin string, remove func(), err error) {
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libzmq").Output()
	if err != nil {
		return "", nil, fmt.Errorf("pkg-config libzmq: %w", err)
	}
	dir, err := os.MkdirTemp("", "zbc")
	if err != nil {
		return "", nil, err
	}
	remove = func() { os.RemoveAll(dir) }
	src := filepath.Join(dir, "zbench.c")
	bin = filepath.Join(dir, "zbench")
	if err := os.WriteFile(src, zbenchC, 0o644); err != nil {
		remove()
		return "", nil, err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	args := append([]string{"-O2", "-o", bin, src}, strings.Fields(string(flags))...)
	out, err := exec.Command(cc, append(args, "-lpthread")...).CombinedOutput()
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, out)
	}
	return bin, remove, nil
}
