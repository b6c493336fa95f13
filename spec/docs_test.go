package spec

import (
	"os"
	"strings"
	"testing"
)

// TestDocsNameEveryBuiltinAndOption: the reference pages list what the
// validator accepts: every builtin handler and its config keys
// (docs/builtins.md), every socket option (docs/file-format.md).
func TestDocsNameEveryBuiltinAndOption(t *testing.T) {
	builtins, err := os.ReadFile("../docs/builtins.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range BuiltinHandlers() {
		if !strings.Contains(string(builtins), "| `"+h.Name+"` |") {
			t.Errorf("docs/builtins.md has no row for builtin %q", h.Name)
		}
		for _, k := range h.Keys {
			if !strings.Contains(string(builtins), "`"+k.Name+"`") {
				t.Errorf("docs/builtins.md does not name config key %q of %q", k.Name, h.Name)
			}
		}
	}
	format, err := os.ReadFile("../docs/file-format.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range SocketOptions() {
		if strings.HasPrefix(name, "curve_") || strings.HasPrefix(name, "plain_") || strings.HasPrefix(name, "gssapi_") {
			name = name[:strings.IndexByte(name, '_')+1] + "*"
		}
		if !strings.Contains(string(format), "`"+name+"`") {
			t.Errorf("docs/file-format.md does not name socket option %q", name)
		}
	}
}
