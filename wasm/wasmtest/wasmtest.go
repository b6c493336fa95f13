// Package wasmtest runs a WebAssembly handler module the way ztopo does,
// for the tests of the module's author: Build compiles a Go package for
// WASI with the Go toolchain that runs the tests, and a Host sends it
// messages through ztopo's own wasm host (the same ABI, limits and fault
// handling as `handler: {wasm: ...}` in a topology).
//
//	func TestUpper(t *testing.T) {
//		h := wasmtest.New(t, wasmtest.Build(t, "."), wasmtest.Config{})
//		got, err := h.Call("hello")
//		// got: ["HELLO"]
//	}
//
// This package runs on the host (it is not built for wasip1).
package wasmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/wasmhost"
)

// Config is a module's sandbox, as a node's config sets it.
type Config struct {
	Memory  int64         // bytes; 0: 64MiB
	Timeout time.Duration // per message; 0: 1s
	Clock   bool
	Random  bool
	Env     []string // KEY=value
	Dirs    []string // HOST:GUEST, read-only
	Logger  hclog.Logger
}

// Build compiles the Go package in dir (a path the go command accepts,
// relative to the test's directory) as a WASI reactor module into the
// test's temporary directory and returns the module's path:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o NAME.wasm
func Build(t testing.TB, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(filepath.Clean(dir))+".wasm")
	if err := BuildModule(dir, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildModule is Build outside a test: the module goes to out.
func BuildModule(dir, out string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-o", abs, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("wasmtest: building %s for wasip1: %v\n%s", dir, err, b)
	}
	return nil
}

// Host runs one module instance.
type Host struct {
	h *wasmhost.Handler
}

// New starts the module at path (compiled, checked against the ABI,
// instantiated) and closes it when the test ends.
func New(t testing.TB, path string, cfg Config) *Host {
	t.Helper()
	h, err := Start(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// Start is New outside a test; Close the Host when done.
func Start(path string, cfg Config) (*Host, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	h, err := wasmhost.New(wasmhost.Config{
		Path: abs, Node: "wasmtest", Memory: cfg.Memory, Timeout: cfg.Timeout,
		Clock: cfg.Clock, Random: cfg.Random, Env: cfg.Env, Dirs: cfg.Dirs, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Host{h: h}, nil
}

// CallFrames sends one message and returns the module's frames (nil: the
// message was dropped). The error is a *wasmhost.GuestError when the
// module failed the message itself, a *wasmhost.Fault when it trapped or
// ran out of time (the Host then runs a fresh instance, as ztopo does).
func (h *Host) CallFrames(frames ...[]byte) ([][]byte, error) {
	in := make([][]byte, len(frames))
	for i, f := range frames {
		in[i] = append([]byte(nil), f...) // the host may reuse them
	}
	return h.h.Handle(context.Background(), handler.Msg{Frames: in, Socket: "in"})
}

// Call is CallFrames for text frames.
func (h *Host) Call(frames ...string) ([]string, error) {
	in := make([][]byte, len(frames))
	for i, f := range frames {
		in[i] = []byte(f)
	}
	out, err := h.CallFrames(in...)
	if out == nil {
		return nil, err
	}
	s := make([]string, len(out))
	for i, f := range out {
		s[i] = string(f)
	}
	return s, err
}

// Stats are the host's counters: calls, errors, faults, timeouts.
func (h *Host) Stats() wasmhost.Stats { return h.h.Stats() }

// Close ends the instance.
func (h *Host) Close() { h.h.Close(context.Background()) }
