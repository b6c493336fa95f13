package main

import (
	"fmt"
	"io"
)

// notImplemented is the body of a verb whose work has not landed yet: its
// help works, anything else fails with exit 1 so that no script mistakes it
// for success.
func notImplemented(name, usage string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(name)
	if _, code, ok := parseArgs(fs, name, usage, args, stdout, io.Discard); !ok && code == exitOK {
		return code
	}
	fmt.Fprintf(stderr, "ztopo %s: not implemented yet\n", name)
	return exitFailure
}
