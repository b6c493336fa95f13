package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkExecutables reports the argv[0] of command and exec handlers, and
// the path of plugins, that do not name an executable file: `command:
// [pythn3, ...]` must fail validation, not crash-loop at run time. A name
// without '/' is looked up in PATH as the runtime's exec does; a path was
// made absolute against the file's directory by the resolver. Only the
// nodes of this share are checked: the others run on another machine.
func (r *resolver) checkExecutables() {
	type key struct {
		prog string
		pos  Pos
	}
	seen := map[key]bool{}
	for _, in := range r.insts {
		n := in.n
		if r.share != "" && n.Host != r.share {
			continue
		}
		var prog, what string
		var pos Pos
		switch n.Handler.Kind {
		case HandlerExec:
			if len(n.Handler.Argv) == 0 {
				continue
			}
			prog, what = n.Handler.Argv[0], "exec handler"
			pos = firstItemPos(in.fn.Handler.Get("exec"))
		case HandlerPlugin:
			prog, what = n.Handler.Path, "plugin"
			pos = firstItemPos(in.fn.Handler.Get("plugin"))
		case HandlerCommand:
			if len(n.Handler.Argv) == 0 {
				continue
			}
			prog, what = n.Handler.Argv[0], "command"
			pos = firstItemPos(in.fn.Command)
		default:
			continue
		}
		if prog == "" || seen[key{prog, pos}] {
			continue
		}
		seen[key{prog, pos}] = true
		if msg, hint := r.executable(prog); msg != "" {
			r.errorf(pos, hint, "%s of node %q: %s", what, in.fn.Name, msg)
		}
	}
}

func firstItemPos(v *Value) Pos {
	if v == nil {
		return Pos{}
	}
	if v.Shape == ShapeList && len(v.Items) > 0 && v.Items[0] != nil {
		return v.Items[0].Pos
	}
	return v.Pos
}

// executable says what is wrong with prog as a program to start, or "".
func (r *resolver) executable(prog string) (msg, hint string) {
	if strings.Contains(prog, "/") {
		return checkExecFile(prog)
	}
	path, _ := r.env("PATH")
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		if m, _ := checkExecFile(filepath.Join(dir, prog)); m == "" {
			return "", ""
		}
	}
	hint = "check the spelling, install it, or give its path"
	if c, ok := closest(prog, pathNames(path, prog)); ok {
		hint = fmt.Sprintf("did you mean %q?", c)
	}
	return fmt.Sprintf("%q not found in PATH", prog), hint
}

func checkExecFile(path string) (msg, hint string) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Sprintf("%s: %v", path, unwrapPathError(err)), ""
	case fi.IsDir():
		return fmt.Sprintf("%s is a directory, not a program", path), ""
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("%s is not executable (mode %04o)", path, fi.Mode().Perm()), "chmod +x it, or run it through its interpreter, e.g. [python3, script.py]"
	}
	return "", ""
}

// pathNames lists the programs in PATH whose names start like prog: the
// candidates for a did-you-mean, without reading every directory whole.
func pathNames(path, prog string) []string {
	var names []string
	if prog == "" {
		return nil
	}
	for _, dir := range filepath.SplitList(path) {
		matches, _ := filepath.Glob(filepath.Join(dir, prog[:1]+"*"))
		for _, m := range matches {
			names = append(names, filepath.Base(m))
			if len(names) > 5000 {
				return names
			}
		}
	}
	return names
}
