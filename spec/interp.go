package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Placeholders known inside a node without being defined anywhere: each
// replica gets its own value, so they are expanded per instance.
const (
	placeholderReplica = "REPLICA" // the replica index: 0 … replicas-1 (0 for a node without replicas)
	placeholderNode    = "NODE"    // the instance name: "worker.2", or "sink"
)

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// varRefRE finds the names of the ${VAR} and ${VAR:-default} in a text.
var varRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}`)

// scope is what ${...} can see at one place in the file.
type scope struct {
	env  func(string) (string, bool)
	vars map[string]string
	// inNode is set while resolving one node instance, which defines
	// ${REPLICA} and ${NODE}.
	inNode  bool
	replica int
	node    string
}

// interpolate expands a scalar's text:
//
//	${VAR}            the environment's VAR, else vars' VAR; undefined is an error
//	${VAR:-default}   the same, or default when VAR is undefined or empty
//	${REPLICA}        inside a node: the replica index
//	${NODE}           inside a node: the instance name
//	$$                a literal $
//
// A $ followed by anything else stays as written. Expansion is one pass:
// values substituted in are not expanded again.
//
// The result holds at most max bytes (max < 0: no bound); beyond, the
// error is an *expansionTooLarge.
func (sc scope) interpolate(s string, max int) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if max >= 0 && b.Len() > max {
			return "", &expansionTooLarge{max: max}
		}
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+2+end]
		i += 2 + end
		name, def, hasDef := strings.Cut(expr, ":-")
		if !varNameRE.MatchString(name) {
			return "", fmt.Errorf("bad variable name %q in %q", name, s)
		}
		val, err := sc.lookup(name, def, hasDef)
		if err != nil {
			return "", err
		}
		if max >= 0 && b.Len()+len(val) > max {
			return "", &expansionTooLarge{max: max}
		}
		b.WriteString(val)
	}
	if max >= 0 && b.Len() > max {
		return "", &expansionTooLarge{max: max}
	}
	return b.String(), nil
}

// maxExpanded bounds the text that ${VAR} expansion may produce over a
// whole topology: a 4 MiB file of ${A}${A}... with a large A would
// otherwise cost gigabytes and minutes in validate, plan and graph.
const maxExpanded = 16 << 20

type expansionTooLarge struct{ max int }

func (e *expansionTooLarge) Error() string {
	return fmt.Sprintf("${...} expansion too large: the topology's values would exceed %d bytes (16 MiB) once variables are expanded", maxExpanded)
}

func (sc scope) lookup(name, def string, hasDef bool) (string, error) {
	switch name {
	case placeholderReplica, placeholderNode:
		if !sc.inNode {
			return "", fmt.Errorf("${%s} cannot be used here: it is set per replica, in a node's sockets, config, command and sync", name)
		}
		if name == placeholderReplica {
			return strconv.Itoa(sc.replica), nil
		}
		return sc.node, nil
	}
	val, ok := sc.env(name)
	if !ok {
		val, ok = sc.vars[name]
	}
	if hasDef && (!ok || val == "") {
		return def, nil
	}
	if !ok {
		return "", &undefinedVar{name: name}
	}
	return val, nil
}

type undefinedVar struct{ name string }

func (e *undefinedVar) Error() string { return fmt.Sprintf("undefined variable %q", e.name) }
