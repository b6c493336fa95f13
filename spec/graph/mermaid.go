package graph

import (
	"strconv"
	"strings"

	"github.com/ztopo/ztopo/spec"
)

// mermaidShapes are the opening and closing brackets of each shape class.
var mermaidShapes = map[string][2]string{
	shapeBuiltin: {"(", ")"},
	shapeBroker:  {"{{", "}}"},
	shapeExec:    {"[/", "/]"},
	shapePlugin:  {"[[", "]]"},
	shapeWasm:    {"[\\", "\\]"},
	shapeCommand: {"([", "])"},
}

// Mermaid renders t as a Mermaid `flowchart LR` with the same content as
// DOT. Node ids are n0, n1, ... in name order and ep0, ep1, ... for external
// endpoints, because topology names may be Mermaid keywords ("end") or hold
// characters Mermaid ids do not take (and an id starting with x or o can
// turn "---x" into a cross edge); the labels carry the names. Edge labels
// are DOT's: socket names and types, the node that binds and its endpoints.
// With hosts, each host's nodes are a subgraph h0, h1, ... labelled with
// the host's name and address.
func Mermaid(t *spec.Topology) string {
	m := build(t)
	ids := map[string]string{}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	var procs []string
	for i, n := range m.nodes {
		ids[n.id] = "n" + strconv.Itoa(i)
	}
	labels, groups := m.groups()
	for g, ns := range groups {
		indent := "    "
		if labels[g] != "" {
			b.WriteString("    subgraph h" + strconv.Itoa(g) + "[" + mermaidLabel(labels[g]) + "]\n")
			indent = "        "
		}
		for _, n := range ns {
			id := ids[n.id]
			br := mermaidShapes[n.shape]
			b.WriteString(indent + id + br[0] + mermaidLabel(n.lines...) + br[1] + "\n")
			if n.process {
				procs = append(procs, id)
			}
		}
		if labels[g] != "" {
			b.WriteString("    end\n")
		}
	}
	for i, ep := range m.externals {
		id := "ep" + strconv.Itoa(i)
		ids[ep] = id
		b.WriteString("    " + id + ">" + mermaidLabel(strings.Split(ep, "\n")...) + "]\n")
	}
	for _, e := range m.edges {
		var op string
		switch {
		case e.sync:
			op = "-.->"
		case e.flow == flowBoth:
			op = "<-->"
		case e.flow == flowNone:
			op = "---"
		default:
			op = "-->"
		}
		b.WriteString("    " + ids[e.from] + " " + op + "|" + mermaidLabel(e.lines...) + "| " + ids[e.to] + "\n")
	}
	if len(procs) > 0 {
		b.WriteString("    classDef process stroke-width:3px\n")
		b.WriteString("    class " + strings.Join(procs, ",") + " process\n")
	}
	return b.String()
}

// Mermaid reads entity codes inside quoted labels; quotes and angle
// brackets would otherwise end the label or start HTML.
var mermaidEscaper = strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")

func mermaidLabel(lines ...string) string {
	esc := make([]string, len(lines))
	for i, l := range lines {
		esc[i] = mermaidEscaper.Replace(l)
	}
	return `"` + strings.Join(esc, "<br/>") + `"`
}
