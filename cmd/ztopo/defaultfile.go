package main

import (
	"flag"
	"io"
	"os"
)

// defaultFiles are the topology files a verb takes from the current
// directory when none is given, in order (compose: compose.yaml, then
// docker-compose.yml).
var defaultFiles = []string{"ztopo.yaml", "topology.yaml"}

// withDefaultFile returns pos, or the first default file that exists when
// pos is empty; ok is false when there is none (the caller reports "no
// topology file given").
func withDefaultFile(pos []string) ([]string, bool) {
	if len(pos) > 0 {
		return pos, true
	}
	for _, f := range defaultFiles {
		if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
			return []string{f}, true
		}
	}
	return nil, false
}

// noFileGiven is the usage error when no file is given and no default one
// exists.
const noFileGiven = "no topology file given, and neither ztopo.yaml nor topology.yaml is in the current directory"

// parseFile is parseArgs for a verb that takes one topology file: the one
// given, else the default file; a usage error when there is none or more.
func parseFile(fs *flag.FlagSet, verb, usage string, args []string, stdout, stderr io.Writer) (file string, code int, ok bool) {
	pos, code, ok := parseArgs(fs, verb, usage, args, stdout, stderr)
	if !ok {
		return "", code, false
	}
	pos, _ = withDefaultFile(pos)
	switch {
	case len(pos) == 0:
		return "", usageError(stderr, verb, usage, noFileGiven), false
	case len(pos) > 1:
		return "", usageError(stderr, verb, usage, "want one topology file, got %d", len(pos)), false
	}
	return pos[0], exitOK, true
}
