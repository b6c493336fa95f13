package testutil

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Buffer collects output written from many goroutines (loggers, output
// copiers) for a test to read.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger is a debug-level logger named name writing to a Buffer that the
// test shows only when it failed: goroutines may log after the test ended,
// when t.Log panics.
func Logger(t testing.TB, name string) (hclog.Logger, *Buffer) {
	t.Helper()
	buf := &Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug, Name: name}), buf
}

// ShortDir is a temporary directory with a short path, removed when the
// test ends: ipc endpoint paths must fit in 107 bytes, which t.TempDir's
// long names can overrun.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
