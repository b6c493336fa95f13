package exechandler_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/exechandler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
	"github.com/ztopo/ztopo/spec"
)

type env struct {
	t    *testing.T
	log  hclog.Logger
	logs *testutil.Buffer
	pids map[int]bool // every child seen, checked dead at the end
	mu   sync.Mutex
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, pids: map[int]bool{}}
	e.log, e.logs = testutil.Logger(t, "test")
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for pid := range e.pids {
			if testutil.Alive(pid) {
				t.Errorf("child %d outlived its handler", pid)
			}
		}
	})
	return e
}

func (e *env) logger() hclog.Logger {
	return e.log
}

func (e *env) note(x *exechandler.Exec) {
	if pid := x.PID(); pid != 0 {
		e.mu.Lock()
		e.pids[pid] = true
		e.mu.Unlock()
	}
}

func (e *env) start(cfg exechandler.Config) *exechandler.Exec {
	e.t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = e.logger()
	}
	x, err := exechandler.New(context.Background(), cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.note(x)
	e.t.Cleanup(func() { e.close(x) })
	return x
}

func (e *env) close(x *exechandler.Exec) {
	e.note(x)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.Close(ctx); err != nil {
		e.t.Errorf("close: %v", err)
	}
}

var msg = handlertest.Msg

func q(fs [][]byte) string { return fmt.Sprintf("%q", fs) }

func script(t *testing.T) string {
	p, err := filepath.Abs("testdata/upper.py")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSed(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sed", "-u", "s/a/b/"}})
	out, err := x.Handle(context.Background(), msg("topic", "banana"))
	if err != nil || q(out) != `["topic" "bbnana"]` {
		t.Fatalf("got %s, %v; want [\"topic\" \"bbnana\"]", q(out), err)
	}
	got := handlertest.Drive(t, x, 1000, func(i int) handler.Msg { return msg(fmt.Sprintf("a%d", i)) })
	for tag, r := range got {
		if want := fmt.Sprintf(`["b%d"]`, tag); r.Err != nil || q(r.Frames) != want {
			t.Fatalf("tag %d: got %s, %v; want %s", tag, q(r.Frames), r.Err, want)
		}
	}
}

func TestPythonScript(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"/usr/bin/python3", script(t)}})
	got := handlertest.Drive(t, x, 1000, func(i int) handler.Msg { return msg("t", fmt.Sprintf("msg-%d", i)) })
	for tag, r := range got {
		if want := fmt.Sprintf(`["t" "MSG-%d"]`, tag); r.Err != nil || q(r.Frames) != want {
			t.Fatalf("tag %d: got %s, %v; want %s", tag, q(r.Frames), r.Err, want)
		}
	}
}

// A payload with a newline is refused alone; the stream stays in step.
func TestNewlineKeepsStreamInSync(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{script(t)}})
	payloads := []string{"one", "two\nthree", "four", "\n", "five"}
	got := handlertest.Drive(t, x, len(payloads), func(i int) handler.Msg { return msg(payloads[i]) })
	want := []string{`["ONE"]`, "error", `["FOUR"]`, "error", `["FIVE"]`}
	for i, w := range want {
		r := got[uint64(i)]
		if w == "error" {
			if !errors.Is(r.Err, exechandler.ErrNewline) {
				t.Fatalf("payload %q: got %s, %v; want ErrNewline", payloads[i], q(r.Frames), r.Err)
			}
			continue
		}
		if r.Err != nil || q(r.Frames) != w {
			t.Fatalf("payload %q: got %s, %v; want %s", payloads[i], q(r.Frames), r.Err, w)
		}
	}
}

func TestLongLine(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"cat"}})
	long := strings.Repeat("0123456789", 30000) // 300 kB, several reader buffers
	out, err := x.Handle(context.Background(), msg(long))
	if err != nil || len(out) != 1 || string(out[0]) != long {
		t.Fatalf("got %d frames, err %v; want the 300 kB line back", len(out), err)
	}
	out, err = x.Handle(context.Background(), msg("")) // an empty line is a line
	if err != nil || q(out) != `[""]` {
		t.Fatalf("empty payload: got %s, %v", q(out), err)
	}
}

// A child that exits mid-stream: the lines it held are reported lost,
// exactly once each; it is restarted and later messages are answered.
func TestCrashMidStream(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{script(t)}, Env: []string{"EXIT_AFTER=100"}})
	first := x.PID()
	got := handlertest.Drive(t, x, 150, func(i int) handler.Msg { return msg(fmt.Sprintf("m%d", i)) })
	handlertest.Crash{
		Lost:     exechandler.ErrLost,
		Want:     func(tag uint64) string { return fmt.Sprintf(`["M%d"]`, tag) },
		Stats:    func() (int64, int64) { s := x.Stats(); return s.Lost, s.Restarts },
		FirstPID: first,
	}.Check(t, x, got)
	e.note(x)
}

// A child that keeps exiting is restarted as the node's restart policy
// allows, then the handler fails for good (ErrGiveUp): the node must not
// apply the same limit a second time.
func TestCrashLimitFailsHandler(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c", "exit 1"}, Restart: spec.Restart{
		Policy: spec.RestartOnFailure, MaxRestarts: 3, Within: time.Minute, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case <-x.Done():
	case <-ctx.Done():
		t.Fatal("a child that always exits did not fail the handler")
	}
	err := x.Err()
	want := "exec handler sh exited (exit status 1) after 3 restarts within 1m0s: fatal handler error: the node's restart policy allows no more restarts"
	if !errors.Is(err, handler.ErrGiveUp) || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if _, err := x.Handle(ctx, msg("x")); !errors.Is(err, handler.ErrFatal) {
		t.Fatalf("Handle after failure: got %v, want ErrFatal", err)
	}
	if s := x.Stats(); s.Restarts != 3 {
		t.Fatalf("Stats().Restarts = %d, want 3", s.Restarts)
	}
}

// Under `restart: no` a child that exits is not restarted.
func TestRestartPolicyNo(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c", "exit 0"}, Restart: spec.Restart{Policy: spec.RestartNo}})
	select {
	case <-x.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("handler did not fail")
	}
	want := `exec handler sh exited (exit status 0) and the node's restart policy is "no": fatal handler error: the node's restart policy allows no more restarts`
	if err := x.Err(); !errors.Is(err, handler.ErrGiveUp) || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if s := x.Stats(); s.Restarts != 0 {
		t.Fatalf("Stats().Restarts = %d, want 0", s.Restarts)
	}
}

func TestStartErrors(t *testing.T) {
	e := newEnv(t)
	_, err := exechandler.New(context.Background(), exechandler.Config{Argv: []string{"/nonexistent/filter"}, Logger: e.logger()})
	want := "exec handler cannot start: /nonexistent/filter: fork/exec /nonexistent/filter: no such file or directory"
	if !errors.Is(err, exechandler.ErrStart) || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	_, err = exechandler.New(context.Background(), exechandler.Config{})
	if !errors.Is(err, exechandler.ErrStart) || err.Error() != "exec handler cannot start: empty argv" {
		t.Fatalf("got %v", err)
	}
}

// A child that ignores EOF and SIGTERM is killed; so are its children.
func TestCloseEscalates(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "sleep.pid")
	x := e.start(exechandler.Config{
		Argv:  []string{"sh", "-c", `trap "" TERM; sleep 600 & echo $! > ` + pidFile + `; while :; do sleep 1; done`},
		Grace: 100 * time.Millisecond,
	})
	testutil.WaitFor(t, "the grandchild", func() bool { _, err := os.Stat(pidFile); return err == nil })
	var grandchild int
	testutil.WaitFor(t, "the grandchild's pid", func() bool {
		data, _ := os.ReadFile(pidFile)
		_, err := fmt.Sscan(string(data), &grandchild)
		return err == nil
	})
	pid := x.PID()
	e.close(x)
	if testutil.Alive(pid) {
		t.Fatalf("child %d alive after Close", pid)
	}
	// The group's SIGKILL was sent before Close returned, but the
	// grandchild (not ours to reap) dies when the kernel gets to it.
	testutil.WaitFor(t, "the grandchild's death", func() bool { return !testutil.Alive(grandchild) })
	if _, err := x.Handle(context.Background(), msg("late")); !errors.Is(err, exechandler.ErrClosed) {
		t.Fatalf("Handle after Close: got %v, want ErrClosed", err)
	}
}

// Close lets the child answer what it holds: stdin EOF, not a kill.
func TestCloseAnswersHeld(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c", "sleep 0.3; exec cat"}})
	for i := range 3 {
		if err := x.Submit(context.Background(), msg(fmt.Sprint(i)), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	go e.close(x)
	handlertest.WantReplies(t, x, map[uint64]string{0: `["0"]`, 1: `["1"]`, 2: `["2"]`})
}

func TestBackPressure(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c", "sleep 2; exec cat"}, Inflight: 2})
	handlertest.BackPressure(t, x, msg("x"))
}

func TestSwapExplicit(t *testing.T) {
	e := newEnv(t)
	// The old child notes (in marker) that it holds the line, then
	// answers it half a second later: a message still queued at the swap
	// would go to the new child, one held stays with the old.
	marker := filepath.Join(t.TempDir(), "held")
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c",
		`IFS= read -r l; echo x > "$0"; sleep 0.5; printf '%s\n' "$l"; exec cat`, marker}})
	old := x.PID()
	bg := context.Background()
	if err := x.Submit(bg, msg("held"), 0); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old child never got the message")
		}
	}
	if err := x.Swap(exechandler.Config{Argv: []string{script(t)}}); err != nil {
		t.Fatal(err)
	}
	e.note(x)
	handlertest.AfterSwap(t, x, `["held"]`, old, func() (int64, int64) { s := x.Stats(); return s.Swaps, s.Lost })
	if err := x.Swap(exechandler.Config{Argv: []string{"/nonexistent"}}); !errors.Is(err, exechandler.ErrStart) {
		t.Fatalf("swap to a missing program: got %v, want ErrStart", err)
	}
	out, err := x.Handle(bg, msg("still"))
	if err != nil || q(out) != `["STILL"]` {
		t.Fatalf("after a failed swap: got %s, %v", q(out), err)
	}
}

// The script is replaced while a client keeps sending: every message is
// answered by the old or the new script, none lost.
func TestSwapOnFileChange(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "filter.py")
	writeFilter(t, path, "line.upper()")
	x := e.start(exechandler.Config{Argv: []string{"/usr/bin/python3", path}, WatchFile: true})
	old := x.PID()

	handlertest.DriveThroughSwap(t, x, 32, 300, func(text string) handler.Msg { return msg(text) }, 0, func() {
		writeFilter(t, path, "line[::-1]")
	})
	e.note(x)
	if s := x.Stats(); s.Swaps != 1 || s.Lost != 0 {
		t.Fatalf("stats %+v: want one swap, nothing lost", s)
	}
	testutil.WaitFor(t, "the old child's exit", func() bool { return !testutil.Alive(old) })
}

// writeFilter writes a Python lines filter applying expr to each line
// (without its newline), replacing path by rename.
func writeFilter(t *testing.T, path, expr string) {
	t.Helper()
	body := "import sys\nfor line in sys.stdin.buffer:\n    line = line[:-1]\n    sys.stdout.buffer.write(" + expr + " + b'\\n')\n    sys.stdout.buffer.flush()\n"
	testutil.ReplaceFile(t, path, []byte(body), 0o644)
}

func TestStderrToLog(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c", "echo 'starting up' >&2; exec cat"}, Node: "worker.3"})
	if _, err := x.Handle(context.Background(), msg("x")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the stderr line in the log", func() bool {
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, "starting up:") && strings.Contains(l, "node=worker.3") && strings.Contains(l, "stream=stderr") {
				return true
			}
		}
		return false
	})
}

// A filter with buffered input and line-buffered output keeps the 1:1
// stream as well as sed -u does.
func TestStdbufSed(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"stdbuf", "-oL", "sed", "s/a/b/"}})
	out, err := x.Handle(context.Background(), msg("banana"))
	if err != nil || q(out) != `["bbnana"]` {
		t.Fatalf("got %s, %v", q(out), err)
	}
	got := handlertest.Drive(t, x, 1000, func(i int) handler.Msg { return msg(fmt.Sprintf("a%d", i)) })
	for tag, r := range got {
		if want := fmt.Sprintf(`["b%d"]`, tag); r.Err != nil || q(r.Frames) != want {
			t.Fatalf("tag %d: got %s, %v; want %s", tag, q(r.Frames), r.Err, want)
		}
	}
}
