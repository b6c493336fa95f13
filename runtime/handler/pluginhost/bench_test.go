package pluginhost_test

import (
	"context"
	"github.com/ztopo/ztopo/internal/testutil"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/pluginhost"
)

var payload16 = []byte("0123456789abcdef")

// benchAsync pushes b.N 16-byte messages through h the way a node does:
// one goroutine submits and drains Results, up to window in flight.
func benchAsync(b *testing.B, h handler.Async, window int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	sent, got := 0, 0
	for got < b.N {
		for sent < b.N && sent-got < window {
			m := handler.Msg{Frames: [][]byte{append([]byte(nil), payload16...)}}
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func benchPlugin(b *testing.B, path string, env []string, window int) {
	zctx, err := zmq4.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	defer zctx.Term()
	h, err := pluginhost.New(context.Background(), zctx, pluginhost.Config{Path: path, Env: env})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	benchAsync(b, h, window)
}

// The Go SDK plugin (the test binary in "upper" mode), many in flight.
func BenchmarkPluginGo(b *testing.B) {
	benchPlugin(b, self(b), []string{modeEnv + "=upper"}, 1000)
}

// The Go SDK plugin handling one message at a time (Workers: 1).
func BenchmarkPluginGoOneWorker(b *testing.B) {
	benchPlugin(b, self(b), []string{modeEnv + "=upper1"}, 1000)
}

// One message at a time: the round-trip latency.
func BenchmarkPluginGoLockstep(b *testing.B) {
	benchPlugin(b, self(b), []string{modeEnv + "=upper"}, 1)
}

// The same transformation in-process, through the same Async interface.
func BenchmarkInProcess(b *testing.B) {
	benchAsync(b, newInProcess(1000), 1000)
}

// inProcess is an Async that answers at once: the floor of the comparison.
type inProcess struct{ results chan handler.Result }

func newInProcess(n int) *inProcess { return &inProcess{results: make(chan handler.Result, n)} }

func (p *inProcess) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	upperASCII(m.Frames[len(m.Frames)-1])
	return m.Frames, nil
}

func (p *inProcess) Submit(ctx context.Context, m handler.Msg, tag uint64) error {
	out, err := p.Handle(ctx, m)
	p.results <- handler.Result{Tag: tag, Frames: out, Err: err}
	return nil
}

func (p *inProcess) Results() <-chan handler.Result { return p.results }
func (p *inProcess) Pending() int                   { return len(p.results) }

func BenchmarkPluginGoOneWorkerLockstep(b *testing.B) {
	benchPlugin(b, self(b), []string{modeEnv + "=upper1"}, 1)
}

// The Python example plugin, many in flight and one at a time.
func BenchmarkPluginPython(b *testing.B) {
	benchPlugin(b, testutil.RepoPath(b, "plugins/examples/python/upper_plugin.py"), nil, 1000)
}

func BenchmarkPluginPythonLockstep(b *testing.B) {
	benchPlugin(b, testutil.RepoPath(b, "plugins/examples/python/upper_plugin.py"), nil, 1)
}
