package wasmhost_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztopo/ztopo/internal/wasmabi/wasmabitest"
	"github.com/ztopo/ztopo/runtime/handler/wasmhost"
)

func minimalPath(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "minimal.wasm")
	if err := os.WriteFile(path, wasmabitest.MinimalUpper(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The hand-written module works like the Go one.
func TestMinimalModule(t *testing.T) {
	h, err := wasmhost.New(wasmhost.Config{Path: minimalPath(t), Node: "min"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if got := call(t, h, "hello, wasm"); got != `["HELLO, WASM"]` {
		t.Fatalf("got %s", got)
	}
}

// BenchmarkHandleMinimal is BenchmarkHandle with the hand-written module.
func BenchmarkHandleMinimal(b *testing.B) {
	b.Run("guarded", func(b *testing.B) { benchHandlePath(b, minimalPath(b), 0) })
	b.Run("unguarded", func(b *testing.B) { benchHandlePath(b, minimalPath(b), wasmhost.NoTimeout) })
}
