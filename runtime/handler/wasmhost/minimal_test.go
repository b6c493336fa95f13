package wasmhost_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// An endless loop is stopped at the time limit whichever way the module
// is guarded: by its own stop flag (instrumented) or by wazero's checks
// (a module with SIMD, which the instrumentation does not know). That
// message fails, and the next one gets a fresh instance.
func TestSpinnerStopped(t *testing.T) {
	for _, simd := range []bool{false, true} {
		t.Run(fmt.Sprintf("simd=%v", simd), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spin.wasm")
			if err := os.WriteFile(path, wasmabitest.Spinner(simd), 0o644); err != nil {
				t.Fatal(err)
			}
			h, _ := newHandler(t, wasmhost.Config{Path: path, Node: "spin", Timeout: 50 * time.Millisecond})
			for range 2 {
				_, err := h.Handle(context.Background(), msg("x"))
				if err == nil || err.Error() != "wasm: message timed out: stopped after 50ms" {
					t.Fatalf("got %v, want a timeout", err)
				}
			}
			if s := h.Stats(); s.TimedOut != 2 || s.Restarts != 2 || s.Calls != 2 {
				t.Fatalf("got %+v, want 2 calls, 2 timeouts, 2 restarts", s)
			}
		})
	}
}
