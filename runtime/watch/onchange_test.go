package watch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestOnChange follows what a handler host sees of its executable: one
// call per burst of writes, none for touch, chmod or a neighbour, one per
// replacement by rename, and none after stop.
func TestOnChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin")
	if err := os.WriteFile(path, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var calls atomic.Int32
	changed := make(chan struct{}, 10)
	stop, err := OnChange(ctx, path, nil, func() {
		calls.Add(1)
		changed <- struct{}{}
	}, WithDebounce(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no change reported for %s", what)
		}
	}
	// settle waits out the debounce a few times over, to show that
	// nothing is reported.
	settle := func() { time.Sleep(700 * time.Millisecond) }

	for _, s := range []string{"v2a", "v2b", "v2"} {
		if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wait("a burst of writes")
	settle()
	if n := calls.Load(); n != 1 {
		t.Fatalf("a burst: got %d calls, want 1", n)
	}

	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle()
	if n := calls.Load(); n != 1 {
		t.Fatalf("touch, chmod or another file: got %d calls, want 1", n)
	}

	// Replacing by rename, as installers and editors do, twice: the watch
	// survives the first.
	tmp := filepath.Join(dir, "plugin.new")
	for i, s := range []string{"v3", "v4"} {
		if err := os.WriteFile(tmp, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		wait("rename " + s)
		if n := calls.Load(); n != int32(2+i) {
			t.Fatalf("after rename %s: got %d calls, want %d", s, n, 2+i)
		}
	}

	stop()
	stop() // a second stop does nothing
	if err := os.WriteFile(path, []byte("v5"), 0o755); err != nil {
		t.Fatal(err)
	}
	settle()
	if n := calls.Load(); n != 3 {
		t.Fatalf("after stop: got %d calls, want 3", n)
	}
}

// TestOnChangeStopWaitsForCall shows that stop returns only once a call of
// changed in progress has returned, so a host can tear down what changed
// uses right after stop.
func TestOnChangeStopWaitsForCall(t *testing.T) {
	t.Parallel()
	_, path := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var returned atomic.Bool
	stop, err := OnChange(ctx, path, nil, func() {
		close(entered)
		<-release
		returned.Store(true)
	})
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "version: 1\nname: a\n")
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("changed was not called")
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	close(release)
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("stop did not return")
	}
	if !returned.Load() {
		t.Error("stop returned before changed did")
	}
}

func TestOnChangeMissingDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope", "plugin")
	stop, err := OnChange(context.Background(), path, nil, func() {})
	want := "watch " + path + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if stop != nil {
		t.Error("got a stop func with an error, want nil")
	}
}
