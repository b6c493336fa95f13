package wasmhost_test

import (
	"context"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/wasmhost"
)

// BenchmarkHandle is the host's cost per 16-byte message through the
// example module, without sockets.
func BenchmarkHandle(b *testing.B) {
	b.Run("guarded", func(b *testing.B) { benchHandle(b, 0) })
	b.Run("unguarded", func(b *testing.B) { benchHandle(b, wasmhost.NoTimeout) })
}

func benchHandle(b *testing.B, timeout time.Duration) { benchHandlePath(b, upperWasm, timeout) }

func benchHandlePath(b *testing.B, path string, timeout time.Duration) {
	h, err := wasmhost.New(wasmhost.Config{Path: path, Node: "bench", Timeout: timeout})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	frame := []byte("hello, wasm 0123")
	frames := [][]byte{frame}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(frame, "hello, wasm 0123")
		out, err := h.Handle(ctx, handler.Msg{Frames: frames, Socket: "in"})
		if err != nil || len(out) != 1 || out[0][0] != 'H' {
			b.Fatalf("got %q, %v", out, err)
		}
	}
}
