package main

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary double as the ztopo command: testscript
// puts a copy named ztopo on the scripts' PATH, and running it runs main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ztopo": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			// git reads user and system config; give the scripts a home of
			// their own and no system config, so the host's cannot leak in.
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			// The loader's default runtime directory depends on it.
			env.Setenv("XDG_RUNTIME_DIR", env.WorkDir+"/run")
			// The example catalogue, for scripts that check it end to end.
			topologies, err := filepath.Abs("../../topologies")
			if err != nil {
				return err
			}
			env.Setenv("TOPOLOGIES", topologies)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
			"unhex": cmdUnhex,
		},
	})
}

// cmdUnhex writes a binary file from hex digits (whitespace ignored), for
// the WebAssembly modules a script needs: a txtar file holds text.
//
//	unhex empty.wasm.hex empty.wasm
func cmdUnhex(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: unhex FILE.hex FILE")
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(ts.ReadFile(args[0])), ""))
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
}

// cmdExits runs a program like exec and checks its exact exit status:
//
//	exits 2 ztopo graph
//
// (testscript's `! exec` only knows "not zero"; the CLI promises 1 for an
// invalid topology and 2 for wrong usage, and scripts must tell them apart.)
// stdout and stderr are kept for the following stdout/stderr commands.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: exits CODE program [args...] (no !)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad exit code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status: got %d, want %d", got, want)
	}
}
