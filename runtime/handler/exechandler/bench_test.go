package exechandler_test

import (
	"context"
	"testing"

	"github.com/ztopo/ztopo/runtime/handler/exechandler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
)

// benchLines pushes b.N 16-byte lines through argv the way a node does:
// one goroutine submits and drains Results, Inflight (256) in flight.
func benchLines(b *testing.B, argv ...string) {
	x, err := exechandler.New(context.Background(), exechandler.Config{Argv: argv})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close(context.Background())
	handlertest.BenchAsync(b, x, 256, "lines/s")
}

func BenchmarkExecCat(b *testing.B)    { benchLines(b, "cat") }
func BenchmarkExecSedU(b *testing.B)   { benchLines(b, "sed", "-u", "s/a/b/") }
func BenchmarkExecPython(b *testing.B) { benchLines(b, "/usr/bin/python3", "testdata/upper.py") }

// The same transformation in-process (sed's s/a/b/ on the line), for
// comparison: what the child and the pipes cost.
func BenchmarkInProcess(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		line := append([]byte(nil), handlertest.Payload16...)
		for i, c := range line {
			if c == 'a' {
				line[i] = 'b'
				break
			}
		}
		_ = [][]byte{line}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// sed with buffered input and line-buffered output: sed -u reads its input
// one byte at a time, stdbuf -oL only flushes each line.
func BenchmarkExecStdbufSed(b *testing.B) { benchLines(b, "stdbuf", "-oL", "sed", "s/a/b/") }
