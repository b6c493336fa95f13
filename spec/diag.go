package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a topology file. Line and Col are 1-based; a zero
// Line means "the file as a whole".
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		// The file as a whole (it cannot be read, say): no line to name.
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Severity tells whether a diagnostic fails validation.
type Severity int

const (
	// Error fails validation.
	Error Severity = iota
	// Warning is printed but does not fail validation.
	Warning
)

// Diag is one problem found in a topology, always with a position.
type Diag struct {
	Pos      Pos
	Severity Severity
	Msg      string
	Hint     string // e.g. `did you mean "ventilator"?`; may be empty
}

// String renders the diagnostic exactly as users and scripts see it:
// "FILE:LINE:COL: message", "FILE:LINE:COL: warning: message", with the hint
// in parentheses.
func (d Diag) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Msg)
	if d.Hint != "" {
		b.WriteString(" (")
		b.WriteString(d.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Diags is a list of diagnostics; it is an error when it holds at least one
// Error-severity diagnostic.
type Diags []Diag

// Error renders every diagnostic, one per line, sorted.
func (ds Diags) Error() string {
	s := append(Diags(nil), ds...)
	s.Sort()
	lines := make([]string, len(s))
	for i, d := range s {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any diagnostic is an Error.
func (ds Diags) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err returns ds as an error if it holds errors, else nil.
func (ds Diags) Err() error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}

// Sort orders diagnostics by file, line, column, then message, and drops
// exact duplicates' order dependence.
func (ds Diags) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Msg < b.Msg
	})
}
