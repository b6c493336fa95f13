package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// quiet is how long "no event" is waited for: the only fixed wait in these
// tests, five times the debounce.
const quiet = 500 * time.Millisecond

type harness struct {
	t   *testing.T
	ctx context.Context
	w   *Watcher
}

// start runs a watcher on path until the test ends, and checks that Run
// then returns nil and closes Events.
func start(t *testing.T, path string, opts ...Option) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	logger := hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
	w, err := New(path, logger, opts...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-ctx.Done():
			t.Error("Run did not return after cancel")
		}
		for range w.Events() {
			// Drain: the channel must be closed, not merely empty.
		}
		cancel()
	})
	return &harness{t: t, ctx: ctx, w: w}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// expect waits for exactly one event, for path, then for quiet.
func (h *harness) expect(path string) {
	h.t.Helper()
	select {
	case got := <-h.w.Events():
		if got != path {
			h.t.Fatalf("event for %q, want %q", got, path)
		}
	case <-h.ctx.Done():
		h.t.Fatalf("no event for %q: %v", path, h.ctx.Err())
	}
	h.expectNone()
}

// expectNone asserts that no event comes within quiet.
func (h *harness) expectNone() {
	h.t.Helper()
	select {
	case got := <-h.w.Events():
		h.t.Fatalf("unexpected event for %q", got)
	case <-time.After(quiet):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func setup(t *testing.T) (dir, path string) {
	dir = t.TempDir()
	path = filepath.Join(dir, "topology.yaml")
	write(t, path, "version: 1\n")
	return dir, path
}

func TestPlainWrite(t *testing.T) {
	t.Parallel()
	_, path := setup(t)
	h := start(t, path)
	write(t, path, "version: 1\nname: a\n")
	h.expect(path)
	write(t, path, "version: 1\nname: b\n")
	h.expect(path)
}

func TestRelativePathIsReportedAbsolute(t *testing.T) {
	dir, path := setup(t)
	t.Chdir(dir)
	h := start(t, "topology.yaml")
	write(t, path, "changed\n")
	h.expect(path)
}

func TestEditorSaveByRename(t *testing.T) {
	t.Parallel()
	dir, path := setup(t)
	h := start(t, path)
	// What vim's :w does with backupcopy=no: the new content goes to
	// another file, which replaces the original by rename.
	tmp := filepath.Join(dir, ".topology.yaml.swp")
	for _, name := range []string{"vim", "vim2"} {
		// The second save is seen too: the watch survived the rename.
		write(t, tmp, "version: 1\nname: "+name+"\n")
		rename(t, tmp, path)
		h.expect(path)
	}
}

func TestMoveOver(t *testing.T) {
	t.Parallel()
	dir, path := setup(t)
	h := start(t, path)
	// `mv other topology.yaml`, from another directory of the same file
	// system, as `git checkout` does from its object store.
	sub := filepath.Join(dir, "elsewhere")
	mkdir(t, sub)
	other := filepath.Join(sub, "other.yaml")
	write(t, other, "version: 1\nname: other\n")
	rename(t, other, path)
	h.expect(path)
}

func TestBurstIsOneChange(t *testing.T) {
	t.Parallel()
	_, path := setup(t)
	// A burst is writes closer together than the debounce; a long debounce
	// keeps that true when a loaded machine stalls this loop for a while
	// (the 100 ms default made this test flaky under load). The burst stays
	// well inside maxWait.
	h := start(t, path, WithDebounce(400*time.Millisecond))
	var last string
	for i := range 20 {
		last = fmt.Sprintf("version: 1\n# write %d\n", i)
		write(t, path, last)
	}
	h.expect(path)
	// The event came after the burst: the file holds its final content.
	if b, _ := os.ReadFile(path); string(b) != last {
		t.Errorf("content at event time: got %q, want %q", b, last)
	}
}

// Events that leave the content as it was are no change.
func TestNoChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, path string)
	}{
		{"touch", func(t *testing.T, path string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		}},
		{"chmod", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"same content", func(t *testing.T, path string) { write(t, path, "version: 1\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, path := setup(t)
			h := start(t, path)
			tc.do(t, path)
			h.expectNone()
		})
	}
}

// A deleted file is no change; when it comes back, its content says
// whether it changed.
func TestDeleteThenRecreate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content string
		change        bool
	}{
		{"new content", "version: 1\nname: back\n", true},
		{"same content", "version: 1\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, path := setup(t)
			h := start(t, path)
			remove(t, path)
			h.expectNone() // a missing file is not a change
			write(t, path, tc.content)
			if tc.change {
				h.expect(path)
			} else {
				h.expectNone()
			}
		})
	}
}

func TestMissingAtStartThenCreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "topology.yaml")
	h := start(t, path)
	write(t, path, "version: 1\n")
	h.expect(path)
}

func TestMissingDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope", "topology.yaml")
	_, err := New(path, nil)
	want := "watch " + path + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestDirectoryReplaced(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "conf")
	mkdir(t, dir)
	path := filepath.Join(dir, "topology.yaml")
	write(t, path, "version: 1\n")
	h := start(t, path)

	// The directory is renamed away (its watch would follow it) and a new
	// one takes its name, the way a deploy swaps a release directory.
	rename(t, dir, filepath.Join(root, "old"))
	h.expectNone()
	// Writes to the old directory are not the file any more.
	write(t, filepath.Join(root, "old", "topology.yaml"), "stale\n")
	h.expectNone()
	next := filepath.Join(root, "next")
	mkdir(t, next)
	write(t, filepath.Join(next, "topology.yaml"), "version: 1\nname: new\n")
	rename(t, next, dir)
	h.expect(path)
	// And the new directory is watched from now on.
	write(t, path, "version: 1\nname: newer\n")
	h.expect(path)
}

func TestAddedFilesReportTheirPath(t *testing.T) {
	t.Parallel()
	_, path := setup(t)
	h := start(t, path)
	pluginDir := t.TempDir()
	plugin := filepath.Join(pluginDir, "upper-plugin")
	write(t, plugin, "#!/bin/sh\n")
	if err := h.w.Add(plugin); err != nil {
		t.Fatal(err)
	}
	write(t, plugin, "#!/bin/sh\necho v2\n")
	h.expect(plugin)
	write(t, path, "version: 1\nname: x\n")
	h.expect(path)

	// Two files changed at once: each reported once.
	write(t, plugin, "#!/bin/sh\necho v3\n")
	write(t, path, "version: 1\nname: y\n")
	got := map[string]int{}
	for range 2 {
		select {
		case p := <-h.w.Events():
			got[p]++
		case <-h.ctx.Done():
			t.Fatalf("got events %v, want both files", got)
		}
	}
	if got[plugin] != 1 || got[path] != 1 {
		t.Errorf("got events %v, want one for each file", got)
	}
	h.expectNone()

	if err := h.w.Remove(plugin); err != nil {
		t.Fatal(err)
	}
	write(t, plugin, "#!/bin/sh\necho v4\n")
	h.expectNone()
}

func TestAddSameDirectory(t *testing.T) {
	t.Parallel()
	dir, path := setup(t)
	h := start(t, path)
	other := filepath.Join(dir, "plugin.sh")
	if err := h.w.Add(other); err != nil {
		t.Fatal(err)
	}
	// Removing one file of a directory keeps the other watched.
	if err := h.w.Remove(other); err != nil {
		t.Fatal(err)
	}
	write(t, other, "x\n")
	h.expectNone()
	write(t, path, "version: 1\nname: z\n")
	h.expect(path)
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	_, path := setup(t)
	w, err := New(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("first Run: got %v, want nil", err)
	}
	if _, open := <-w.Events(); open {
		t.Error("Events still open after Run returned")
	}
	if err := w.Run(ctx); err == nil || err.Error() != "watch: Run called twice" {
		t.Errorf("second Run: got %v, want %q", err, "watch: Run called twice")
	}
	if err := w.Add(path + ".other"); err == nil || err.Error() != "watch "+path+".other: watcher closed" {
		t.Errorf("Add after Run: got %v, want watcher closed", err)
	}
}
