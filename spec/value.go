package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Limits that keep a hostile or broken file from costing more than a moment:
// yaml.v3 builds the node tree without expanding aliases, so the expansion
// below is where a "billion laughs" file would explode, and is where it stops.
const (
	maxFileSize = 4 << 20 // bytes of YAML
	maxNodes    = 100_000 // values after alias expansion
	maxDepth    = 64      // nesting of maps and lists
)

// Shape is the structural kind of a Value.
type Shape int

const (
	ShapeNull   Shape = iota // `key:` with nothing, or `~`, or `null`
	ShapeScalar              // a string, number or boolean as written
	ShapeList
	ShapeMap
)

func (s Shape) String() string {
	switch s {
	case ShapeScalar:
		return "a scalar"
	case ShapeList:
		return "a list"
	case ShapeMap:
		return "a map"
	}
	return "null"
}

// Value is a YAML value as written, with its position: the tree the File
// model is decoded from, free of yaml.v3 types so that only this package
// knows YAML. Aliases are expanded and merge keys (`<<: *base`) applied.
type Value struct {
	Shape Shape
	// Tag is the YAML tag of a scalar as yaml.v3 resolved it ("!!str",
	// "!!int", "!!bool", "!!float", "!!null", ...).
	Tag     string
	Text    string   // a scalar's text, before ${VAR} interpolation
	Items   []*Value // a list's items
	Entries []Entry  // a map's entries in file order, keys unique
	Pos     Pos
}

// Entry is one key of a map.
type Entry struct {
	Key    string
	KeyPos Pos
	Value  *Value
}

// Get returns the value of key in a map, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil {
		return nil
	}
	for _, e := range v.Entries {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

// IsNull reports whether v is absent or an explicit null.
func (v *Value) IsNull() bool { return v == nil || v.Shape == ShapeNull }

// parseYAML reads the single YAML document in data into a Value tree.
// Every problem is returned as a positioned diagnostic; the tree is nil
// when the document could not be read at all.
func parseYAML(filename string, data []byte) (*Value, Diags) {
	at := func(line, col int) Pos { return Pos{File: filename, Line: line, Col: col} }
	if len(data) > maxFileSize {
		return nil, Diags{{Pos: at(1, 1), Msg: fmt.Sprintf("file is too large (%d bytes, at most %d)", len(data), maxFileSize)}}
	}
	if d, bad := invalidUTF8(filename, data); bad {
		return nil, Diags{d}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Diags{{Pos: at(1, 1), Msg: "file is empty: a topology needs version, name and nodes"}}
		}
		return nil, Diags{syntaxDiag(filename, data, err)}
	}
	var ds Diags
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		ds = append(ds, Diag{Pos: at(next.Line, next.Column), Msg: "a topology file holds one YAML document; found another"})
	case !errors.Is(err, io.EOF):
		ds = append(ds, syntaxDiag(filename, data, err))
	}
	c := converter{file: filename}
	v := c.convert(&doc, 0)
	ds = append(ds, c.diags...)
	if c.stopped {
		return nil, ds
	}
	return v, ds
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxDiag turns a yaml.v3 error into a diagnostic at the line the parser
// names (it gives no column). A few errors carry no line; the common one,
// a tab in indentation, is located by looking for it.
func syntaxDiag(filename string, data []byte, err error) Diag {
	msg := err.Error()
	d := Diag{Pos: Pos{File: filename, Line: 1, Col: 1}}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			d.Pos.Line = n
		}
		msg = msg[len(m[0]):]
		// yaml.v3 adds one to the 0-based line of scanner errors only;
		// a parser error names the line before the construct it was in.
		for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML", "found undefined tag"} {
			if strings.HasPrefix(msg, p) {
				d.Pos.Line++
				break
			}
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if strings.Contains(msg, "cannot start any token") {
		for i, line := range strings.Split(string(data), "\n") {
			indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
			if k := strings.IndexByte(indent, '\t'); k >= 0 {
				d.Pos.Line, d.Pos.Col = i+1, k+1
				d.Hint = "YAML indentation must use spaces, not tabs"
				break
			}
		}
	}
	if strings.Contains(msg, "did not find expected ',' or '}'") {
		unquotedVarInFlow(data, &d)
	}
	d.Msg = "yaml: " + msg
	return d
}

// unquotedVarInFlow points a flow-map syntax error at its usual cause, a
// ${VAR} written unquoted inside {...} (its '}' ends the map), and says to
// quote it. yaml.v3 names the line after the map, without a column.
func unquotedVarInFlow(data []byte, d *Diag) {
	lines := strings.Split(string(data), "\n")
	for _, i := range []int{d.Pos.Line - 1, d.Pos.Line - 2, d.Pos.Line} {
		if i < 0 || i >= len(lines) {
			continue
		}
		line := lines[i]
		depth, dq, sq := 0, false, false
		for j := 0; j < len(line); j++ {
			switch c := line[j]; {
			case c == '"' && !sq:
				dq = !dq
			case c == '\'' && !dq:
				sq = !sq
			case dq || sq:
			case c == '#' && (j == 0 || line[j-1] == ' '):
				j = len(line) // a comment
			case c == '{' && j > 0 && line[j-1] == '$':
			case c == '{':
				depth++
			case c == '}':
				depth--
			case c == '$' && depth > 0 && j+1 < len(line) && line[j+1] == '{':
				d.Pos.Line, d.Pos.Col = i+1, j+1
				d.Hint = "quote a value holding ${...} inside {...}, e.g. \"w-${REPLICA}\": its } ends the map"
				return
			}
		}
	}
}

// converter walks a yaml.Node tree into Values, expanding aliases within the
// node and depth limits and reporting duplicate keys.
type converter struct {
	file    string
	nodes   int
	stopped bool // a limit was hit: stop walking, the tree is useless
	diags   Diags
	// alias is the outermost alias being expanded: a limit hit inside
	// it is reported where the author wrote it, not deep in the anchor.
	alias *yaml.Node
}

func (c *converter) pos(n *yaml.Node) Pos {
	return Pos{File: c.file, Line: n.Line, Col: n.Column}
}

func (c *converter) stop(n *yaml.Node, msg string) *Value {
	if c.alias != nil {
		n = c.alias
	}
	if !c.stopped {
		c.stopped = true
		c.diags = append(c.diags, Diag{Pos: c.pos(n), Msg: msg})
	}
	return nil
}

func (c *converter) convert(n *yaml.Node, depth int) *Value {
	if c.stopped {
		return nil
	}
	c.nodes++
	if c.nodes > maxNodes {
		return c.stop(n, fmt.Sprintf("document too large: more than %d values once aliases are expanded", maxNodes))
	}
	if depth > maxDepth {
		return c.stop(n, fmt.Sprintf("document nested more than %d levels deep", maxDepth))
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &Value{Shape: ShapeNull, Pos: c.pos(n)}
		}
		return c.convert(n.Content[0], depth)
	case yaml.AliasNode:
		if n.Alias == nil {
			return c.stop(n, "alias to an unknown anchor")
		}
		if c.alias == nil {
			c.alias = n
			defer func() { c.alias = nil }()
		}
		v := c.convert(n.Alias, depth+1)
		if v == nil {
			return nil
		}
		// The alias stands where it is written: errors about its value
		// point here, where the author used it.
		cp := *v
		cp.Pos = c.pos(n)
		return &cp
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return &Value{Shape: ShapeNull, Tag: n.Tag, Text: n.Value, Pos: c.pos(n)}
		}
		return &Value{Shape: ShapeScalar, Tag: n.Tag, Text: n.Value, Pos: c.pos(n)}
	case yaml.SequenceNode:
		v := &Value{Shape: ShapeList, Pos: c.pos(n)}
		for _, item := range n.Content {
			iv := c.convert(item, depth+1)
			if c.stopped {
				return nil
			}
			v.Items = append(v.Items, iv)
		}
		return v
	case yaml.MappingNode:
		return c.mapping(n, depth)
	}
	return c.stop(n, fmt.Sprintf("unsupported YAML node kind %d", n.Kind))
}

func (c *converter) mapping(n *yaml.Node, depth int) *Value {
	v := &Value{Shape: ShapeMap, Pos: c.pos(n)}
	seen := map[string]Pos{}
	var merged []Entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.AliasNode && kn.Alias != nil {
			kn = kn.Alias
		}
		if kn.Tag == "!!merge" {
			merged = append(merged, c.mergeSources(vn, depth)...)
			if c.stopped {
				return nil
			}
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			c.diags = append(c.diags, Diag{Pos: c.pos(kn), Msg: "map keys must be plain strings"})
			continue
		}
		kp := c.pos(kn)
		if first, dup := seen[kn.Value]; dup {
			c.diags = append(c.diags, Diag{Pos: kp, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", kn.Value, first.Line)})
			continue
		}
		seen[kn.Value] = kp
		val := c.convert(vn, depth+1)
		if c.stopped {
			return nil
		}
		v.Entries = append(v.Entries, Entry{Key: kn.Value, KeyPos: kp, Value: val})
	}
	// YAML merge keys: keys written in the map win, then earlier sources.
	for _, e := range merged {
		if _, ok := seen[e.Key]; ok {
			continue
		}
		seen[e.Key] = e.KeyPos
		v.Entries = append(v.Entries, e)
	}
	return v
}

// mergeSources returns the entries a `<<` key brings in: one map, or a list
// of maps (earlier maps win).
func (c *converter) mergeSources(vn *yaml.Node, depth int) []Entry {
	src := c.convert(vn, depth+1)
	if src == nil {
		return nil
	}
	var maps []*Value
	switch src.Shape {
	case ShapeMap:
		maps = []*Value{src}
	case ShapeList:
		maps = src.Items
	}
	var out []Entry
	for _, m := range maps {
		if m == nil || m.Shape != ShapeMap {
			c.diags = append(c.diags, Diag{Pos: src.Pos, Msg: "a merge key (<<) takes a map or a list of maps"})
			return nil
		}
		out = append(out, m.Entries...)
	}
	if len(maps) == 0 {
		c.diags = append(c.diags, Diag{Pos: src.Pos, Msg: "a merge key (<<) takes a map or a list of maps"})
	}
	return out
}

// invalidUTF8 locates the first byte of data that is not UTF-8: yaml.v3
// reports it at 1:1 whatever its line. A UTF-16 file (with its byte order
// mark) is left to yaml.v3, which reads it.
func invalidUTF8(filename string, data []byte) (Diag, bool) {
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) || utf8.Valid(data) {
		return Diag{}, false
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return Diag{
				Pos:  Pos{File: filename, Line: line, Col: col},
				Msg:  fmt.Sprintf("invalid UTF-8: byte 0x%02x", data[i]),
				Hint: "a topology file must be UTF-8: convert it, e.g. with iconv -f latin1 -t utf-8",
			}, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return Diag{}, false
}
