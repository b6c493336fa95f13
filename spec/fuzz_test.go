package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// FuzzParse feeds arbitrary bytes to the loader, seeded with every good and
// bad test file: it must never panic or hang, must return a topology iff
// there are no errors, and every diagnostic must have a position.
func FuzzParse(f *testing.F) {
	good, _ := filepath.Glob("testdata/good/*.yaml")
	for _, p := range good {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	bad, _ := filepath.Glob("testdata/bad/*.txtar")
	for _, p := range bad {
		if ar, err := txtar.ParseFile(p); err == nil {
			if data, ok := section(ar, "topology.yaml"); ok {
				f.Add(data)
			}
		}
	}
	env := mapEnv(map[string]string{"WORKERS": "3", "PORT": "5555"})
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, ds := Parse("f.yaml", data, LoadOptions{Env: env, RuntimeDir: testRuntimeDir})
		if ds.HasErrors() != (topo == nil) {
			t.Fatalf("got topology %v with errors %v", topo != nil, ds.HasErrors())
		}
		for _, d := range ds {
			if d.Pos.File != "f.yaml" || d.Pos.Line < 1 || d.Pos.Col < 1 || d.Msg == "" {
				t.Fatalf("diagnostic without a position or message: %#v", d)
			}
		}
		if topo != nil {
			// A valid topology diffs to nothing against itself.
			if p := Diff(topo, topo); !p.Empty() {
				t.Fatalf("self-diff not empty: %+v", p)
			}
		}
	})
}
