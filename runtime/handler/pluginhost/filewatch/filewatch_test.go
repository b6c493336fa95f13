package filewatch_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler/pluginhost/filewatch"
)

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin")
	if err := os.WriteFile(path, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	changed := make(chan struct{}, 10)
	stop, err := filewatch.Start(context.Background(), path, 200*time.Millisecond, nil, func() {
		calls.Add(1)
		changed <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatalf("no change reported for %s", what)
		}
	}
	// settle waits out the debounce a few times over, to show that
	// nothing is reported.
	settle := func() { time.Sleep(700 * time.Millisecond) }

	// A burst of writes is one change.
	for _, s := range []string{"v2a", "v2b", "v2"} {
		if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wait("a burst of writes")
	settle()
	if n := calls.Load(); n != 1 {
		t.Fatalf("a burst gave %d calls, want 1", n)
	}

	// touch and chmod leave the content as it was.
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o700); err != nil {
		t.Fatal(err)
	}
	// Other files in the directory do not count.
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle()
	if n := calls.Load(); n != 1 {
		t.Fatalf("touch, chmod or another file gave %d calls, want 1", n)
	}

	// Replacing by rename, as installers and editors do.
	tmp := filepath.Join(dir, "plugin.new")
	if err := os.WriteFile(tmp, []byte("v3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	wait("a rename")
	// And again: the watch survived the rename.
	if err := os.WriteFile(tmp, []byte("v4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	wait("a second rename")
	settle()
	if n := calls.Load(); n != 3 {
		t.Fatalf("got %d calls, want 3", n)
	}
}
