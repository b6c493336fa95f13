// Command ztopo runs ZeroMQ topologies declared in YAML, and checks, draws
// and diffs them.
//
// This package is the only one that knows about flags, exit codes and
// stdout: every verb is a function from arguments and two writers to an exit
// code, so that tests run the whole CLI in-process.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ztopo/ztopo/spec"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes, fixed by the contract: scripts rely on them.
const (
	exitOK      = 0 // success, including a clean stop by signal
	exitFailure = 1 // invalid topology, or a failure doing the work
	exitUsage   = 2 // wrong usage: unknown verb or flag, missing arguments
	// up only: the topology stopped, but messages sent inside it were
	// received by no node (engine.Loss); the log counts them.
	exitLoss = 3
)

// verb is one `ztopo VERB`. Adding a verb is one entry in verbs and one file
// holding its usage text and run function.
type verb struct {
	name    string
	summary string // one line for `ztopo help`
	// usage is the full help text; its first line is the synopsis
	// ("usage: ztopo graph [--format dot|mermaid] FILE"), repeated after a
	// usage error.
	usage string
	run   func(args []string, stdout, stderr io.Writer) int
	// hidden verbs are for ztopo's own use (the node child): left out of
	// help and suggestions.
	hidden bool
}

var verbs = map[string]verb{
	"up":         {name: "up", summary: "run a topology in the foreground, applying edits to its file", usage: upUsage, run: runUp},
	"validate":   {name: "validate", summary: "check topology files without running them", usage: validateUsage, run: runValidate},
	"graph":      {name: "graph", summary: "draw a topology's wiring as Graphviz DOT or Mermaid", usage: graphUsage, run: runGraph},
	"plan":       {name: "plan", summary: "show what a reload from one file or git revision to another would do", usage: planUsage, run: runPlan},
	"ps":         {name: "ps", summary: "list the node instances of a running topology", usage: psUsage, run: runPs},
	"status":     {name: "status", summary: "show the state of a running topology", usage: statusUsage, run: runStatus},
	"reload":     {name: "reload", summary: "make a running topology re-read its file", usage: reloadUsage, run: runReload},
	"down":       {name: "down", summary: "stop a running topology", usage: downUsage, run: runDown},
	"ls":         {name: "ls", summary: "list the topologies running on this machine", usage: lsUsage, run: runLs},
	"restart":    {name: "restart", summary: "restart node instances of a running topology", usage: restartUsage, run: runRestart},
	"config":     {name: "config", summary: "print the resolved topology: vars, defaults, replicas, endpoints", usage: configUsage, run: runConfig},
	"schema":     {name: "schema", summary: "print the JSON Schema of the topology file, for editors", usage: schemaUsage, run: runSchema},
	"completion": {name: "completion", summary: "print a shell completion script (bash, zsh, fish)", usage: completionUsage, run: runCompletion},
	"top":        {name: "top", summary: "a live table of a running topology: rates, restarts, CPU and memory", usage: topUsage, run: runTop},
	"tap":        {name: "tap", summary: "print the messages passing a socket of a running topology", usage: tapUsage, run: runTap},
	"logs":       {name: "logs", summary: "print the log of a running topology, -f to follow", usage: logsUsage, run: runLogs},
	"export":     {name: "export", summary: "print Kubernetes manifests that run a topology on a cluster", usage: exportUsage, run: runExport},
	"keys":       {name: "keys", summary: "make and list CURVE key pairs (security.keys)", usage: keysUsage, run: runKeys},
	"version":    {name: "version", summary: "print versions of ztopo, libzmq and Go, and the builtin handlers", usage: versionUsage, run: runVersion},
	"_node":      {name: "_node", summary: "run one node of a running topology (started by ztopo up)", usage: nodeUsage, run: runNode, hidden: true},
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help":
		return runHelp(args[1:], stdout, stderr)
	case "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(args[1:], stdout, stderr)
	}
	v, ok := verbs[args[0]]
	if !ok {
		if strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "ztopo: unknown flag %s\nRun 'ztopo help' for usage.\n", args[0])
		} else {
			fmt.Fprintf(stderr, "ztopo: unknown command %q%s\nRun 'ztopo help' for usage.\n", args[0], didYouMean(args[0], verbNames()))
		}
		return exitUsage
	}
	return v.run(args[1:], stdout, stderr)
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		printUsage(stdout)
		return exitOK
	case 1:
		v, ok := verbs[args[0]]
		if !ok {
			fmt.Fprintf(stderr, "ztopo help: unknown command %q%s\nRun 'ztopo help' for the list.\n", args[0], didYouMean(args[0], verbNames()))
			return exitUsage
		}
		fmt.Fprint(stdout, v.usage)
		return exitOK
	}
	fmt.Fprint(stderr, "ztopo help: too many arguments\nusage: ztopo help [COMMAND]\n")
	return exitUsage
}

func verbNames() []string {
	names := make([]string, 0, len(verbs))
	for n, v := range verbs {
		if !v.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("ztopo runs ZeroMQ topologies declared in YAML.\n\n")
	b.WriteString("usage: ztopo COMMAND [ARGUMENTS]\n\nCommands:\n")
	for _, n := range verbNames() {
		fmt.Fprintf(&b, "  %-9s %s\n", n, verbs[n].summary)
	}
	b.WriteString("\nRun 'ztopo help COMMAND' or 'ztopo COMMAND --help' for details.\n")
	b.WriteString("Exit status: 0 success, 1 invalid topology or failure, 2 wrong usage.\n")
	fmt.Fprint(w, b.String())
}

// newFlags returns a verb's flag set. Parse errors are reported by
// parseArgs, in ztopo's own format, so the flag package prints nothing.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ztopo "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses a verb's flags, which may come before, between or after
// its positional arguments (`ztopo graph FILE --format mermaid` reads as
// well as the other order); "--" ends the flags. ok is false when the caller
// must return code: the help was asked for (printed on stdout, exit 0) or
// the flags were wrong (reported on stderr, exit 2).
func parseArgs(fs *flag.FlagSet, name, usage string, args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil, exitOK, false
		}
		if err != nil {
			return nil, usageError(stderr, name, usage, "%s", flagError(fs, err)), false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, exitOK, true
		}
		// The flag package consumed a "--" if the argument just before the
		// rest is one: everything after it is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), exitOK, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseFlags is parseArgs for a verb that takes flags only: a positional
// argument is wrong usage.
func parseFlags(fs *flag.FlagSet, name, usage string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	pos, code, ok := parseArgs(fs, name, usage, args, stdout, stderr)
	if ok && len(pos) > 0 {
		return usageError(stderr, name, usage, "unexpected argument %q", pos[0]), false
	}
	return code, ok
}

// usageError reports wrong usage of a verb and returns exitUsage.
func usageError(stderr io.Writer, name, usage, format string, args ...any) int {
	synopsis, _, _ := strings.Cut(usage, "\n")
	fmt.Fprintf(stderr, "ztopo %s: %s\n%s\nRun 'ztopo help %s' for details.\n", name, fmt.Sprintf(format, args...), synopsis, name)
	return exitUsage
}

// didYouMean is ` (did you mean "x"?)` for the candidate nearest to s, or ""
// when none is a likely typo.
func didYouMean(s string, candidates []string) string {
	if c, ok := spec.Suggest(s, candidates); ok {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

var badValueRE = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): `)

// flagError rewrites the flag package's `invalid value "abc" for flag
// -grace: parse error` into what the user needs: the flag as they write it
// and what a good value looks like.
func flagError(fs *flag.FlagSet, err error) string {
	m := badValueRE.FindStringSubmatch(err.Error())
	if m == nil {
		return strings.Replace(err.Error(), "flag provided but not defined: -", "unknown flag --", 1)
	}
	val, name := m[1], m[2]
	want := "see the flags below"
	if f := fs.Lookup(name); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case time.Duration:
				want = "want a duration such as 2s, 500ms or 1m30s"
			case bool:
				want = "want true or false"
			case int, int64, uint, uint64:
				want = "want an integer"
			}
		}
	}
	return fmt.Sprintf("--%s: bad value %q: %s", name, val, want)
}
