package spec

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDevices: a device is refused after a stat, before any read
// (issue 11 item 12: /dev/zero ended in a fatal out-of-memory, /dev/urandom
// grew without bound).
func TestLoadDevices(t *testing.T) {
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		t.Run(filepath.Base(dev), func(t *testing.T) {
			topo, ds := Load(dev, LoadOptions{})
			want := dev + ": cannot read topology: not a regular file (a character device)"
			if topo != nil || ds.Error() != want {
				t.Errorf("got %q, want %q", ds.Error(), want)
			}
		})
	}
	_, ds := Load(t.TempDir(), LoadOptions{})
	if !strings.HasSuffix(ds.Error(), ": cannot read topology: is a directory") {
		t.Errorf("got %q for a directory", ds.Error())
	}
}

// TestLoadTooLarge: a regular file over the limit is refused by its size.
func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: a gigabyte that costs no disk.
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, ds := Load(path, LoadOptions{})
	want := path + ": file is too large: 1073741824 bytes, more than 4194304 (4 MiB), the most a topology may hold"
	if ds.Error() != want {
		t.Errorf("got %q, want %q", ds.Error(), want)
	}
}

// countingReader is an endless stream of a byte that counts what was read.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	c.n += int64(len(p))
	return len(p), nil
}

// TestReadTopologyFromStream: a pipe (stdin, git show) is read through the
// limit and no further.
func TestReadTopologyFromStream(t *testing.T) {
	var c countingReader
	_, err := ReadTopologyFrom(&c)
	want := "file is too large: more than 4194304 bytes (4 MiB), the most a topology may hold"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if c.n > MaxFileSize+64<<10 {
		t.Errorf("read %d bytes, want at most about %d", c.n, MaxFileSize+1)
	}
	data, err := ReadTopologyFrom(io.LimitReader(&countingReader{}, 100))
	if err != nil || len(data) != 100 {
		t.Errorf("got %d bytes, %v; want 100, nil", len(data), err)
	}
}

// TestExpansionBound: ${VAR} expansion stops at maxExpanded and says where
// (issue 11 item 13: a 1 MB file cost 2.7 GB and 12 s).
func TestExpansionBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		refs     int // ${A} in one scalar
		replicas int
	}{
		{name: "one scalar", refs: 20000},
		{name: "across replicas", refs: 30, replicas: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reps := ""
			if tc.replicas > 0 {
				reps = fmt.Sprintf("    replicas: %d\n", tc.replicas)
			}
			src := "version: 1\nname: p\nvars:\n  A: " + strings.Repeat("x", 1024) + "\nnodes:\n  g:\n" + reps +
				"    handler: generate\n    config:\n      payload: \"" + strings.Repeat("${A}", tc.refs) + "\"\n" +
				"    sockets:\n      out: {type: PUSH, bind: auto}\n"
			topo, ds := Parse("topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir})
			line := 9
			if tc.replicas > 0 {
				line = 10
			}
			want := fmt.Sprintf("topology.yaml:%d:16: ", line) + "${...} expansion too large: the topology's values would exceed 16777216 bytes (16 MiB) once variables are expanded (a variable is expanded too many times, or is too long)"
			if topo != nil || ds.Error() != want {
				t.Errorf("got %q, want %q", ds.Error(), want)
			}
		})
	}
	// Under the bound, the same shape loads.
	src := "version: 1\nname: p\nvars:\n  A: " + strings.Repeat("x", 1024) + "\nnodes:\n  g:\n    replicas: 100\n" +
		"    handler: generate\n    config:\n      payload: \"" + strings.Repeat("${A}", 30) + "\"\n" +
		"    sockets:\n      out: {type: PUSH, bind: auto}\n"
	if topo, ds := Parse("topology.yaml", []byte(src), LoadOptions{Env: mapEnv(nil), RuntimeDir: testRuntimeDir}); topo == nil {
		t.Errorf("3 MB of expansion refused: %v", ds)
	}
}
