package main

import (
	"fmt"
	"io"

	"github.com/ztopo/ztopo/spec"
)

const validateUsage = `usage: ztopo validate FILE...

Checks each topology file without running it: the YAML, every field, socket
types and options, references between nodes, handler config, endpoints and
the ports they use. Every problem is printed to stderr, sorted, as

    FILE:LINE:COL: message
    FILE:LINE:COL: warning: message (hint)

and each valid file (warnings allowed) prints "FILE: ok" on stdout.
${VAR} references are resolved from the environment, then the file's vars.

Exit status: 0 when every file is valid, 1 when any has errors, 2 on wrong
usage.
`

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate")
	files, code, ok := parseArgs(fs, "validate", validateUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(files) == 0 {
		return usageError(stderr, "validate", validateUsage, "no topology file given")
	}
	code = exitOK
	for _, f := range files {
		t, ds := spec.Load(f, loadOptions(""))
		printDiags(stderr, ds)
		if t == nil || ds.HasErrors() {
			code = exitFailure
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", f)
	}
	return code
}
