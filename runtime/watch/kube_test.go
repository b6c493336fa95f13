package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 11 item 9: writes every 20 ms that never pause are still looked at
// within about a second (maxWait); without the bound the debounce starves
// for as long as the writes go on.
func TestContinuousWritesAreSeen(t *testing.T) {
	_, path := setup(t)
	// A debounce far longer than the pauses between writes, even on a
	// loaded machine: only the bound can make the look happen.
	h := start(t, path, WithDebounce(500*time.Millisecond))
	stop := time.After(20 * time.Second) // generous: the writes would go on for ever
	for i := 0; ; i++ {
		write(t, path, fmt.Sprintf("version %d\n", i))
		select {
		case got := <-h.w.Events():
			if got != path {
				t.Fatalf("event for %q, want %q", got, path)
			}
			return
		case <-stop:
			t.Fatal("no event while the file was written every 20 ms")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kubeMount lays a directory out as the kubelet mounts a ConfigMap: the
// key is a symlink to ..data/KEY, ..data a symlink to a timestamped
// directory holding the real file.
func kubeMount(t *testing.T, dir, key, content string) {
	t.Helper()
	ts := filepath.Join(dir, "..2026_12_04_10_00_00.000000001")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(ts, key), content)
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
}

// kubeUpdate does what the kubelet's AtomicWriter does on a ConfigMap
// update: a new timestamped directory, a ..data_tmp symlink to it renamed
// over ..data, the old directory removed. The key's symlink is untouched.
func kubeUpdate(t *testing.T, dir, key, content string) {
	t.Helper()
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	ts := filepath.Join(dir, "..2026_12_04_10_05_00.000000002")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(ts, key), content)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

// TestConfigMapUpdate: a topology mounted from a ConfigMap changes by the
// kubelet's ..data symlink swap, and the watcher reports it once.
func TestConfigMapUpdate(t *testing.T) {
	dir := t.TempDir()
	kubeMount(t, dir, "topology.yaml", "version: 1\n")
	path := filepath.Join(dir, "topology.yaml")
	h := start(t, path)
	kubeUpdate(t, dir, "topology.yaml", "version: 2\n")
	h.expect(path)
}
