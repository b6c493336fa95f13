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
	shapeCommand: "box3d",
}

// DOT renders t as a Graphviz digraph (`dot -Tsvg` draws it). Process nodes
// have a double border; the end of an edge that binds carries a "bind"
// label; sync edges are dotted; external endpoints are plain text. With
// hosts, each host's nodes are a dashed cluster labelled with its address.
func DOT(t *spec.Topology) string {
	m := build(t)
	var b strings.Builder
	b.WriteString("digraph " + dotQuote(m.name) + " {\n")
	b.WriteString("\trankdir=LR;\n")
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
		b.WriteString("\t" + dotQuote(ep) + " [label=" + dotQuote(ep) + ", shape=plaintext];\n")
	}
	for _, e := range m.edges {
		attrs := []string{"label=" + dotQuote(e.label)}
		switch e.flow {
		case flowBoth:
			attrs = append(attrs, "dir=both")
		case flowNone:
			attrs = append(attrs, "dir=none")
		}
		switch e.binder {
		case "":
		case e.to:
			attrs = append(attrs, `headlabel="bind"`)
		case e.from:
			attrs = append(attrs, `taillabel="bind"`)
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
