package main

import "os"

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
