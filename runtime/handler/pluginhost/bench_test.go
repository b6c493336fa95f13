package pluginhost_test

import (
	"context"
	"github.com/ztopo/ztopo/internal/testutil"
	"testing"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
	"github.com/ztopo/ztopo/runtime/handler/pluginhost"
)

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
	handlertest.BenchAsync(b, h, window, "msg/s")
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
	handlertest.BenchAsync(b, newInProcess(1000), 1000, "msg/s")
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
