package graph

import (
	"strings"

	"github.com/ztopo/ztopo/spec"
)

var dotShapes = map[string]string{
	shapeBuiltin: "box",
	shapeBroker:  "hexagon",
	shapeExec:    "cds",
	shapePlugin:  "component",
	shapeWasm:    "tab", // a module file, run inside the process
	shapeCommand: "box3d",
}

// DOT renders t as a Graphviz digraph (`dot -Tsvg` draws it). Process nodes
// have a double border; an edge's label names its sockets and types, then
// the node that binds and every endpoint it binds ("broker binds
// tcp://127.0.0.1:5572") — in the label, not as a head or tail label,
// because Graphviz does not keep end labels of edges that meet at one node
// apart (they overlapped at lbbroker's broker). Sync edges are dotted;
// external endpoints are plain text. With hosts, each host's nodes are a
// dashed cluster labelled with its address.
func DOT(t *spec.Topology) string {
	m := build(t)
	var b strings.Builder
	b.WriteString("digraph " + dotQuote(m.name) + " {\n")
	b.WriteString("\trankdir=LR;\n\tnodesep=0.4;\n")
	b.WriteString("\tnode [fontname=\"Helvetica\", fontsize=11, style=rounded];\n")
	b.WriteString("\tedge [fontname=\"Helvetica\", fontsize=9, labelfontsize=8];\n")
	labels, groups := m.groups()
	for i, ns := range groups {
		indent := "\t"
		if labels[i] != "" {
			// A cluster per host: Graphviz draws the box only for
			// subgraphs whose name starts with "cluster".
			b.WriteString("\tsubgraph " + dotQuote("cluster_"+ns[0].host) + " {\n")
			b.WriteString("\t\tlabel=" + dotQuote(labels[i]) + ";\n\t\tstyle=dashed;\n")
			indent = "\t\t"
		}
		for _, n := range ns {
			b.WriteString(indent + dotQuote(n.id) + " [label=" + dotLabel(n.lines) + ", shape=" + dotShapes[n.shape])
			if n.process {
				b.WriteString(", peripheries=2")
			}
			b.WriteString("];\n")
		}
		if labels[i] != "" {
			b.WriteString("\t}\n")
		}
	}
	for _, ep := range m.externals {
		b.WriteString("\t" + dotQuote(ep) + " [label=" + dotLabel(strings.Split(ep, "\n")) + ", shape=plaintext];\n")
	}
	for _, e := range m.edges {
		attrs := []string{"label=" + dotLabel(e.lines)}
		switch e.flow {
		case flowBoth:
			attrs = append(attrs, "dir=both")
		case flowNone:
			attrs = append(attrs, "dir=none")
		}
		if e.sync {
			attrs = append(attrs, "style=dotted")
		}
		b.WriteString("\t" + dotQuote(e.from) + " -> " + dotQuote(e.to) + " [" + strings.Join(attrs, ", ") + "];\n")
	}
	b.WriteString("}\n")
	return b.String()
}

var dotEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func dotQuote(s string) string { return `"` + dotEscaper.Replace(s) + `"` }

// dotLabel joins lines with DOT's \n escape, after escaping each line so
// that a backslash in a name cannot become an escape sequence.
func dotLabel(lines []string) string {
	esc := make([]string, len(lines))
	for i, l := range lines {
		esc[i] = dotEscaper.Replace(l)
	}
	return `"` + strings.Join(esc, `\n`) + `"`
}
