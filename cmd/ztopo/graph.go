package main

import (
	"fmt"
	"io"

	"github.com/ztopo/ztopo/spec"
	"github.com/ztopo/ztopo/spec/graph"
)

const graphUsage = `usage: ztopo graph [--format dot|mermaid] FILE

Prints the wiring of a topology on stdout: one box per node (replicas shown
as ×N), one edge per connection in the direction data flows, labelled with
the socket names and types, then the node that binds and every endpoint it
binds, each replica's ("out PUSH→PULL in", "worker binds
tcp://127.0.0.1:6500 :6510"); endpoints that nobody in the file binds or
connects to appear as external endpoints; start barriers (sync) are
dotted. A file with hosts is drawn with each host's nodes grouped (DOT
clusters, Mermaid subgraphs).

    ztopo graph topologies/pipeline.yaml | dot -Tsvg > pipeline.svg

Flags:
  --format dot|mermaid   output format (default dot): Graphviz DOT, or a
                         Mermaid flowchart for Markdown pages
  --env-file FILE        variables for ${VAR} from FILE (KEY=value lines)
                         instead of the .env beside the topology file;
                         repeatable, a later file wins; the environment
                         overrides both

Exit status: 0 ok, 1 invalid topology, 2 wrong usage.
`

func runGraph(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("graph")
	envFiles := addEnvFileFlag(fs)
	format := fs.String("format", "dot", "dot or mermaid")
	files, code, ok := parseArgs(fs, "graph", graphUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	files, _ = withDefaultFile(files)
	var render func(*spec.Topology) string
	switch *format {
	case "dot":
		render = graph.DOT
	case "mermaid":
		render = graph.Mermaid
	default:
		return usageError(stderr, "graph", graphUsage, "unknown format %q%s", *format, didYouMean(*format, []string{"dot", "mermaid"}))
	}
	switch len(files) {
	case 0:
		return usageError(stderr, "graph", graphUsage, noFileGiven)
	case 1:
	default:
		return usageError(stderr, "graph", graphUsage, "one topology file at a time, got %d", len(files))
	}
	t, ds := spec.Load(files[0], loadOptions("", *envFiles))
	printDiags(stderr, ds)
	if t == nil || ds.HasErrors() {
		return exitFailure
	}
	fmt.Fprint(stdout, render(t))
	return exitOK
}
