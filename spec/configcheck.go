package spec

import (
	"errors"
	"os"
)

// ConfigCheck is what a builtin's HandlerSchema.Check sees of the config of
// one node instance, and how it reports what is wrong: with a position, as
// the resolver's own checks do.
type ConfigCheck struct {
	// Written is the config as written, a map: Written.Get(key) gives the
	// position of a key's value, Written.Pos the map's.
	Written *Value
	// Values are the keys of Written that converted to their kinds (int,
	// string, bool, time.Duration, []string, float64), ${VAR}s expanded; a
	// key that did not convert was reported and is absent. What the check
	// stores here is what the handler gets.
	Values map[string]any

	r       *resolver
	handler string
}

// Errorf reports an error at pos; hint may be "".
func (c *ConfigCheck) Errorf(pos Pos, hint, format string, args ...any) {
	c.r.errorf(pos, hint, format, args...)
}

// DidYouMean is the hint for s when it is a likely typo of one of words
// (`did you mean "in"?`), or "". Pass words sorted for stable output.
func (c *ConfigCheck) DidYouMean(s string, words []string) string {
	return didYouMean(s, words)
}

// File makes p, a path written at pos, absolute against the topology file's
// directory, and returns it. When the loader checks executables
// (LoadOptions.CheckExecutables) it also checks that the path is a file it
// can read; what names the file in those errors: "replay: cannot read
// capture file ...".
func (c *ConfigCheck) File(p string, pos Pos, what string) string {
	abs := c.r.relPath(p)
	c.r.inputFiles = append(c.r.inputFiles, inputFile{abs, p, pos, c.handler, what})
	return abs
}

// inputFile is a file a builtin reads, as ConfigCheck.File recorded it.
type inputFile struct {
	path, written string // resolved, and as the file has it
	pos           Pos
	handler, what string // "replay", "capture file"
}

// checkInputFiles: each file a builtin reads can be read (once per
// position: replicas share it).
func (r *resolver) checkInputFiles() {
	seen := map[inputFile]bool{}
	for _, f := range r.inputFiles {
		if seen[f] {
			continue
		}
		seen[f] = true
		fh, err := os.Open(f.path)
		if err != nil {
			r.errorf(f.pos, "", "%s: cannot read %s %q: %v", f.handler, f.what, f.written, errors.Unwrap(err))
			continue
		}
		st, err := fh.Stat()
		fh.Close()
		if err == nil && st.IsDir() {
			r.errorf(f.pos, "", "%s: %s %q is a directory", f.handler, f.what, f.written)
		}
	}
}
