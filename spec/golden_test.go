package spec

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/bad/*.txtar")

// testRuntimeDir keeps auto ipc paths the same on every machine.
const testRuntimeDir = "/run/ztopo-test"

// mapEnv is an environment for tests: only what the test says, never the
// real one.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func section(ar *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// keyDir makes the working directory a temporary one holding keys/: the
// test-only pairs of testdata/keys, secrets with mode 0600 (git keeps no
// modes), plus the archive's own "keys/NAME" sections; a section named
// "keys/NAME 0644" is written with that mode.
func keyDir(t *testing.T, ar *txtar.Archive) {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(keys, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	shared, _ := filepath.Glob("testdata/keys/*")
	for _, p := range shared {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".key_secret") {
			mode = 0o600
		}
		write(filepath.Base(p), data, mode)
	}
	for _, f := range ar.Files {
		name, ok := strings.CutPrefix(f.Name, "keys/")
		if !ok {
			continue
		}
		mode := os.FileMode(0o600)
		if n, m, ok := strings.Cut(name, " "); ok {
			v, err := strconv.ParseUint(m, 8, 32)
			if err != nil {
				t.Fatalf("section %q: bad mode", f.Name)
			}
			name, mode = n, os.FileMode(v)
		}
		write(name, f.Data, mode)
	}
	t.Chdir(dir)
}

func render(ds Diags) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestBadFiles loads each testdata/bad archive's topology.yaml (with the
// variables of its optional env section as the whole environment, for the
// share of its optional host section) and
// compares the diagnostics with its want section, line for line.
func TestBadFiles(t *testing.T) {
	paths, err := filepath.Glob("testdata/bad/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 30 {
		t.Fatalf("got %d bad files, want at least 30", len(paths))
	}
	for _, path := range paths {
		path, _ := filepath.Abs(path) // keyDir changes the working directory
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			src, ok := section(ar, "topology.yaml")
			if !ok {
				t.Fatal("no topology.yaml section")
			}
			env := map[string]string{}
			if e, ok := section(ar, "env"); ok {
				for _, line := range strings.Split(strings.TrimSpace(string(e)), "\n") {
					k, v, _ := strings.Cut(line, "=")
					env[k] = v
				}
			}
			if bytes.Contains(src, []byte("security:")) {
				keyDir(t, ar)
			}
			// Other sections are files beside the topology (wasm
			// modules, ...): written to a temporary directory, a NAME.hex
			// section as NAME with the bytes its hex digits spell; such
			// an archive is loaded with CheckExecutables, as `up` does.
			filename, dir := "topology.yaml", ""
			for _, f := range ar.Files {
				switch f.Name {
				case "topology.yaml", "want", "env", "host":
					continue
				}
				if strings.HasPrefix(f.Name, "keys/") {
					continue // keyDir's
				}
				if dir == "" {
					dir = t.TempDir()
					filename = filepath.Join(dir, "topology.yaml")
				}
				name, data := f.Name, f.Data
				if strings.HasSuffix(name, ".hex") {
					name = strings.TrimSuffix(name, ".hex")
					if data, err = hex.DecodeString(strings.Join(strings.Fields(string(f.Data)), "")); err != nil {
						t.Fatalf("section %s: %v", f.Name, err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// An optional host section runs the load as `up --host` would.
			host, _ := section(ar, "host")
			topo, ds := Parse(filename, src, LoadOptions{Env: mapEnv(env), RuntimeDir: testRuntimeDir, Host: strings.TrimSpace(string(host)), CheckExecutables: dir != ""})
			got := render(ds)
			if dir != "" {
				got = strings.ReplaceAll(got, dir+string(filepath.Separator), "")
			}
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "want" {
						ar.Files[i].Data = []byte(got)
					}
				}
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, _ := section(ar, "want")
			if got != string(want) {
				t.Errorf("diagnostics differ\ngot:\n%s\nwant:\n%s", got, want)
			}
			if len(ds) == 0 {
				t.Errorf("got no diagnostics, want at least one")
			}
			if ds.HasErrors() != (topo == nil) {
				t.Errorf("got topology %v with errors %v; want a topology iff there are no errors", topo != nil, ds.HasErrors())
			}
			sorted := tidy(append(Diags(nil), ds...)).Error() + "\n"
			if dir != "" {
				sorted = strings.ReplaceAll(sorted, dir+string(filepath.Separator), "")
			}
			if !bytes.Equal([]byte(got), []byte(sorted)) {
				t.Errorf("diagnostics are not sorted and unique:\n%s", got)
			}
		})
	}
}
