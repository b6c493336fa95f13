// Package handlertest drives handlers the way a node does, for the tests
// and benchmarks of the handler kinds (exec, plugin). Tests only.
package handlertest

import (
	"context"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
)

// Payload16 is the 16-byte message of the handler benchmarks.
var Payload16 = []byte("0123456789abcdef")

// BenchAsync pushes b.N copies of Payload16 through h the way a node does:
// one goroutine submits and drains Results, up to window in flight; the
// rate is reported as unit (e.g. "msg/s").
func BenchAsync(b *testing.B, h handler.Async, window int, unit string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	sent, got := 0, 0
	for got < b.N {
		for sent < b.N && sent-got < window {
			m := handler.Msg{Frames: [][]byte{append([]byte(nil), Payload16...)}}
			if err := h.Submit(ctx, m, uint64(sent)); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		select {
		case r := <-h.Results():
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			got++
		case <-ctx.Done():
			b.Fatal("timeout")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}
