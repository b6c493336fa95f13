package main

import (
	"fmt"
	"io"
	"os"

	"github.com/ztopo/ztopo/spec"
)

// loadOptions are the same for every verb: the process environment
// overrides a file's vars, and ipc endpoints go to the default runtime
// directory of the topology's name (of its share, for a host), so that
// `plan` resolves `bind: auto` exactly as the running `up` did. host is
// the --host of the verb: "" for every node on this machine. The programs
// of command, exec and plugin nodes must exist: a typo fails validation
// (and up) rather than crash-looping at run time.
func loadOptions(host string) spec.LoadOptions {
	return spec.LoadOptions{Env: os.LookupEnv, Host: host, CheckExecutables: true}
}

// printDiags writes diagnostics, warnings included, one per line, sorted.
func printDiags(w io.Writer, ds spec.Diags) {
	s := append(spec.Diags(nil), ds...)
	s.Sort()
	for _, d := range s {
		fmt.Fprintln(w, d.String())
	}
}
