package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
	"github.com/ztopo/ztopo/runtime/handler/wasmhost"
	"github.com/ztopo/ztopo/spec"
)

func newHandler(t *testing.T, cfg wasmhost.Config) (*wasmhost.Handler, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}).With("node", cfg.Node)
	h, err := wasmhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, logs
}

var msg = handlertest.Msg

func show(frames [][]byte) string { return fmt.Sprintf("%q", frames) }

func call(t *testing.T, h *wasmhost.Handler, frames ...string) string {
	t.Helper()
	out, err := h.Handle(context.Background(), msg(frames...))
	if err != nil {
		t.Fatalf("%q: %v", frames, err)
	}
	return show(out)
}

func TestUpper(t *testing.T) {
	h, _ := newHandler(t, wasmhost.Config{Path: upperWasm, Node: "up"})
	cases := []struct {
		in   []string
		want string
	}{
		{[]string{"hello"}, `["HELLO"]`},
		{[]string{"topic", "mixed Case 123"}, `["topic" "MIXED CASE 123"]`},
		{[]string{""}, `[""]`},
		{[]string{"a", "", "z"}, `["a" "" "Z"]`},
		{[]string{strings.Repeat("x", 100000)}, fmt.Sprintf("[%q]", strings.Repeat("X", 100000))},
		{[]string{"after a big one"}, `["AFTER A BIG ONE"]`},
	}
	for _, c := range cases {
		if got := call(t, h, c.in...); got != c.want {
			if len(got) > 80 {
				got = got[:80]
			}
			t.Errorf("%.20q: got %s, want %.80s", c.in, got, c.want)
		}
	}
	if s := h.Stats(); s.Calls != int64(len(cases)) || s.Faults != 0 || s.Errors != 0 {
		t.Fatalf("got %+v", s)
	}
}

// Outputs of every shape: dropped, more frames than came in, frames
// larger than the input's.
func TestOutputs(t *testing.T) {
	h, _ := newHandler(t, wasmhost.Config{Path: faultsWasm, Node: "out"})
	out, err := h.Handle(context.Background(), msg("drop"))
	if err != nil || out != nil {
		t.Fatalf("drop: got %s, %v; want nil, nil", show(out), err)
	}
	if got := call(t, h, "split:a bb ccc dddd"); got != `["a" "bb" "ccc" "dddd"]` {
		t.Fatalf("split: got %s", got)
	}
	out, err = h.Handle(context.Background(), msg("big:70000"))
	if err != nil || len(out) != 2 || string(out[0]) != "x" || len(out[1]) != 70000 {
		t.Fatalf("big: got %d frames, %v", len(out), err)
	}
}

// A message the module fails itself fails alone, with the module's text;
// the instance stays (its count of calls goes on).
func TestGuestErrors(t *testing.T) {
	h, _ := newHandler(t, wasmhost.Config{Path: faultsWasm, Node: "g"})
	for _, c := range []struct{ in, want string }{
		{"fail:no thanks", "refused: no thanks"},
		{"panic", "panic: boom"},
	} {
		_, err := h.Handle(context.Background(), msg(c.in))
		var ge *wasmhost.GuestError
		if !errors.As(err, &ge) || ge.Text != c.want {
			t.Fatalf("%s: got %v, want a GuestError %q", c.in, err, c.want)
		}
		if r := show(handler.ErrorReply(err)); r != show([][]byte{[]byte("ERR"), []byte(c.want)}) {
			t.Fatalf("%s: error reply %s", c.in, r)
		}
	}
	if got := call(t, h, "calls"); got != `["3"]` {
		t.Fatalf("calls after two errors: got %s, want [\"3\"] (the same instance)", got)
	}
	if s := h.Stats(); s.Errors != 2 || s.Faults != 0 || s.Restarts != 0 {
		t.Fatalf("got %+v", s)
	}
}

// Each fault fails its message only: it is reported (error, log line with
// the node's name, counter), the instance is replaced, and the next
// message is served by a fresh one.
func TestFaults(t *testing.T) {
	h, logs := newHandler(t, wasmhost.Config{Path: faultsWasm, Node: "faulty.1", Memory: 32 << 20, Timeout: 300 * time.Millisecond})
	cases := []struct {
		in, want string
		timeout  bool
	}{
		{"trap", "wasm: trap: wasm error: unreachable", false},
		{"oob", "wasm: trap: wasm error: out of bounds memory access", false},
		// Go's runtime aborts when memory.grow fails, after saying why
		// on stderr.
		{"oom", "wasm: trap: wasm error: unreachable", false},
		{"loop", "wasm: message timed out: stopped after 300ms", true},
	}
	for i, c := range cases {
		if got := call(t, h, "calls"); got != `["1"]` {
			t.Fatalf("before %s: got %s, want a fresh instance", c.in, got)
		}
		_, err := h.Handle(context.Background(), msg(c.in))
		var f *wasmhost.Fault
		if !errors.As(err, &f) || f.Timeout != c.timeout || err.Error() != c.want {
			t.Fatalf("%s: got %v, want %q", c.in, err, c.want)
		}
		if r := handler.ErrorReply(err); len(r) != 2 || string(r[0]) != "ERR" || string(r[1]) != c.want {
			t.Fatalf("%s: error reply %s", c.in, show(r))
		}
		if got := call(t, h, "keeps serving"); got != `["V2:KEEPS SERVING"]` {
			t.Fatalf("after %s: got %s", c.in, got)
		}
		s := h.Stats()
		if s.Restarts != int64(2*i+1) {
			t.Fatalf("after %s: %d restarts, want %d", c.in, s.Restarts, 2*i+1)
		}
		// The next loop's "calls" sees a fresh instance only if this
		// one was replaced: it has served "keeps serving" already.
		if got := call(t, h, "calls"); got != `["2"]` {
			t.Fatalf("after %s: got %s", c.in, got)
		}
		h.Handle(context.Background(), msg("trap")) // start the next case fresh
	}
	s := h.Stats()
	if s.Faults != 3+4 || s.TimedOut != 1 {
		t.Fatalf("got %+v, want 7 faults and 1 timeout", s)
	}
	l := logs.String()
	if n := strings.Count(l, "wasm message failed, replacing the instance"); n != 8 {
		t.Fatalf("got %d fault log lines, want 8:\n%s", n, l)
	}
	if !strings.Contains(l, "out of memory") {
		t.Fatalf("the module's stderr is not in the log:\n%s", l)
	}
	if !strings.Contains(l, "node=faulty.1") {
		t.Fatalf("log lines do not name the node:\n%s", l)
	}
}

// Swap takes the new module at the next message; a broken one is refused
// and the running one stays.
func TestSwap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.wasm")
	copyFile(t, upperWasm, path)
	h, _ := newHandler(t, wasmhost.Config{Path: path, Node: "s"})
	if got := call(t, h, "calls"); got != `["CALLS"]` {
		t.Fatalf("got %s", got)
	}
	testutil.ReplaceFile(t, path, []byte("not wasm"), 0o644)
	if err := h.Swap(); err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Fatalf("swap to a broken module: got %v", err)
	}
	if got := call(t, h, "still upper"); got != `["STILL UPPER"]` {
		t.Fatalf("after a refused swap: got %s", got)
	}
	copyTo(t, faultsWasm, path)
	if err := h.Swap(); err != nil {
		t.Fatal(err)
	}
	if got := call(t, h, "calls"); got != `["1"]` {
		t.Fatalf("after the swap: got %s, want the new module's first call", got)
	}
	if s := h.Stats(); s.Swaps != 1 || s.Refused != 1 {
		t.Fatalf("got %+v", s)
	}
}

// Saving the file swaps with WatchFile.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.wasm")
	copyFile(t, upperWasm, path)
	h, _ := newHandler(t, wasmhost.Config{Path: path, Node: "w", WatchFile: true})
	copyTo(t, faultsWasm, path)
	deadline := time.Now().Add(30 * time.Second)
	for h.Stats().Swaps == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no swap within 30s of saving the module")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := call(t, h, "calls"); got != `["1"]` {
		t.Fatalf("got %s", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTo replaces to with from's content by rename, as a build does.
func copyTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ReplaceFile(t, to, b, 0o644)
}

func TestConfigFor(t *testing.T) {
	n := &spec.Node{Name: "w.1", Handler: spec.HandlerRef{Kind: spec.HandlerWasm, Path: "/m.wasm"}, Config: map[string]any{
		"memory": "32MiB", "timeout": 250 * time.Millisecond, "clock": true, "env": []string{"A=1"}, "dirs": []string{"/d:/data"},
	}}
	got := wasmhost.ConfigFor(n)
	if got.Path != "/m.wasm" || got.Node != "w.1" || got.Memory != 32<<20 || got.Timeout != 250*time.Millisecond || !got.Clock || got.Random ||
		fmt.Sprint(got.Env) != "[A=1]" || fmt.Sprint(got.Dirs) != "[/d:/data]" {
		t.Fatalf("got %+v", got)
	}
	n.Config = map[string]any{"timeout": time.Duration(0)}
	if got := wasmhost.ConfigFor(n); got.Timeout != wasmhost.NoTimeout {
		t.Fatalf("timeout 0: got %v, want NoTimeout", got.Timeout)
	}
}

// Without a time limit the module runs unguarded: it works the same.
func TestUnguarded(t *testing.T) {
	h, _ := newHandler(t, wasmhost.Config{Path: faultsWasm, Node: "u", Timeout: wasmhost.NoTimeout})
	if got := call(t, h, "hi"); got != `["V2:HI"]` {
		t.Fatalf("got %s", got)
	}
	if _, err := h.Handle(context.Background(), msg("trap")); err == nil {
		t.Fatal("trap: got no error")
	}
	if got := call(t, h, "calls"); got != `["1"]` {
		t.Fatalf("after a trap: got %s, want a fresh instance", got)
	}
}

// An endless loop is stopped while the process collects garbage: a
// collection stops every goroutine, and one running module code can stop
// only where that code goes back into Go, which a guarded module does
// every few thousand loop iterations. Without that the collection waits
// for the loop, the watchdog waits for the collection, and the process
// hangs.
func TestLoopUnderGC(t *testing.T) {
	h, _ := newHandler(t, wasmhost.Config{Path: faultsWasm, Node: "gc", Timeout: 100 * time.Millisecond})
	stop := make(chan struct{})
	gcs := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				gcs <- n
				return
			default:
				runtime.GC()
				n++
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		for range 3 {
			if _, err := h.Handle(context.Background(), msg("loop")); err == nil || !strings.Contains(err.Error(), "timed out") {
				done <- fmt.Errorf("got %v, want a timeout", err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		close(stop)
		if n := <-gcs; n == 0 {
			t.Fatal("no collection ran during the loops")
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the loops were not stopped within 60s: the process hangs in a collection")
	}
	if s := h.Stats(); s.TimedOut != 3 {
		t.Fatalf("got %d timeouts, want 3", s.TimedOut)
	}
}
