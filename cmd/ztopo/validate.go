package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

const validateUsage = `usage: ztopo validate [--strict] [--json] FILE|DIR|-...

Checks each topology file without running it: the YAML, every field, socket
types and options, references between nodes, handler config, endpoints and
the ports they use. Every problem is printed to stderr, sorted, as

    FILE:LINE:COL: message
    FILE:LINE:COL: warning: message (hint)

and each valid file (warnings allowed) prints "FILE: ok" on stdout.
${VAR} references are resolved from the environment, then the file's vars.

A DIR validates the topology files directly in it: each *.yaml or *.yml
file with a top-level version or nodes key. - reads one topology from
stdin (named <stdin>; relative paths in it are taken from the current
directory).

Flags:
  --strict   warnings fail validation too (for CI)
  --json     print the result as one JSON object on stdout, nothing on
             stderr: {"ok": bool, "files": [{"file", "ok", "diagnostics":
             [{"file", "line", "col", "severity", "message", "hint"}]}]}
  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both

Exit status: 0 when every file is valid, 1 when any has errors (or
warnings, with --strict), 2 on wrong usage.
`

// stdinName names a topology read from stdin in positions.
const stdinName = "<stdin>"

type validateDiag struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Hint     string `json:"hint,omitempty"`
}

type validateFile struct {
	File        string         `json:"file"`
	OK          bool           `json:"ok"`
	Diagnostics []validateDiag `json:"diagnostics"`
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate")
	envFiles := addEnvFileFlag(fs)
	strict := fs.Bool("strict", false, "")
	asJSON := fs.Bool("json", false, "")
	targets, code, ok := parseArgs(fs, "validate", validateUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	targets, _ = withDefaultFile(targets)
	if len(targets) == 0 {
		return usageError(stderr, "validate", validateUsage, noFileGiven)
	}
	stdinUsed := false
	var results []validateFile
	for _, a := range targets {
		var files []string
		var ds spec.Diags
		switch fi, err := os.Stat(a); {
		case a == "-":
			if stdinUsed {
				return usageError(stderr, "validate", validateUsage, "- (stdin) given twice")
			}
			stdinUsed = true
			results = append(results, validateOne(stdinName, *strict, func() (*spec.Topology, spec.Diags) {
				data, err := spec.ReadTopologyFrom(os.Stdin)
				if err != nil {
					return nil, spec.Diags{{Pos: spec.Pos{File: stdinName}, Msg: err.Error()}}
				}
				return spec.Parse(stdinName, data, loadOptions("", *envFiles))
			}))
			continue
		case err == nil && fi.IsDir():
			files, ds = topologyFiles(a)
			if ds != nil {
				results = append(results, validateFile{File: a, Diagnostics: jsonDiags(ds)})
				continue
			}
		default:
			files = []string{a}
		}
		for _, f := range files {
			results = append(results, validateOne(f, *strict, func() (*spec.Topology, spec.Diags) {
				return spec.Load(f, loadOptions("", *envFiles))
			}))
		}
	}
	code = exitOK
	for _, r := range results {
		if !r.OK {
			code = exitFailure
		}
	}
	if *asJSON {
		out := struct {
			OK    bool           `json:"ok"`
			Files []validateFile `json:"files"`
		}{OK: code == exitOK, Files: results}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fail(stderr, "validate", err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return code
	}
	for _, r := range results {
		for _, d := range r.Diagnostics {
			fmt.Fprintln(stderr, d.text())
		}
		if r.OK {
			fmt.Fprintf(stdout, "%s: ok\n", r.File)
		}
	}
	return code
}

// validateOne loads one topology; ok means no errors, nor warnings when
// strict.
func validateOne(name string, strict bool, load func() (*spec.Topology, spec.Diags)) validateFile {
	t, ds := load()
	ok := t != nil && !ds.HasErrors() && !(strict && len(ds) > 0)
	return validateFile{File: name, OK: ok, Diagnostics: jsonDiags(ds)}
}

func jsonDiags(ds spec.Diags) []validateDiag {
	s := append(spec.Diags(nil), ds...)
	s.Sort()
	out := make([]validateDiag, 0, len(s))
	for _, d := range s {
		sev := "error"
		if d.Severity == spec.Warning {
			sev = "warning"
		}
		out = append(out, validateDiag{File: d.Pos.File, Line: d.Pos.Line, Col: d.Pos.Col, Severity: sev, Message: d.Msg, Hint: d.Hint})
	}
	return out
}

// text renders a diagnostic exactly as spec.Diag.String does.
func (d validateDiag) text() string {
	sd := spec.Diag{Pos: spec.Pos{File: d.File, Line: d.Line, Col: d.Col}, Msg: d.Message, Hint: d.Hint}
	if d.Severity == "warning" {
		sd.Severity = spec.Warning
	}
	return sd.String()
}

// topologyKeyRE tells a topology file from other YAML (CI configs,
// compose files) in a directory: a top-level version or nodes key.
var topologyKeyRE = regexp.MustCompile(`(?m)^(version|nodes)[ \t]*:`)

// topologyFiles lists the topology files directly in dir, sorted. A
// directory without any is an error: `ztopo validate topologies/` that
// checks nothing must not pass.
func topologyFiles(dir string) ([]string, spec.Diags) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, spec.Diags{{Pos: spec.Pos{File: dir}, Msg: fmt.Sprintf("cannot read directory: %v", err)}}
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := spec.ReadTopology(path)
		if err == nil && !topologyKeyRE.Match(data) {
			continue
		}
		files = append(files, path) // unreadable: Load reports why
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, spec.Diags{{Pos: spec.Pos{File: dir}, Msg: "no topology files in this directory (*.yaml or *.yml with a top-level version or nodes key)"}}
	}
	return files, nil
}
