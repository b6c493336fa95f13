package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/plugins/plugintest"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
	"github.com/ztopo/ztopo/runtime/handler/pluginhost"
	"github.com/ztopo/ztopo/spec"
)

type env struct {
	t       *testing.T
	zctx    *zmq4.Context
	log     hclog.Logger
	logs    *testutil.Buffer
	pidFile string
	dir     string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.ShortDir(t)
	e := &env{t: t, zctx: zctx, pidFile: filepath.Join(dir, "pids"), dir: dir}
	e.log, e.logs = testutil.Logger(t, "test")
	t.Cleanup(func() {
		// Every plugin process any test started must be gone.
		for _, pid := range e.pids() {
			if testutil.Alive(pid) {
				t.Errorf("plugin process %d outlived its host", pid)
			}
		}
		if err := zctx.Term(); err != nil {
			t.Errorf("term: %v", err)
		}
	})
	return e
}

func (e *env) logger() hclog.Logger {
	return e.log
}

// config runs the test binary as the plugin in the given mode.
func (e *env) config(mode string) pluginhost.Config {
	return pluginhost.Config{
		Path:   self(e.t),
		Env:    []string{modeEnv + "=" + mode, pidFileEnv + "=" + e.pidFile},
		Node:   "worker.1",
		Dir:    filepath.Join(e.dir, "run"),
		Logger: e.logger(),
	}
}

func (e *env) pids() []int {
	data, _ := os.ReadFile(e.pidFile)
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

func (e *env) start(cfg pluginhost.Config) *pluginhost.Host {
	e.t.Helper()
	h, err := pluginhost.New(context.Background(), e.zctx, cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(func() { closeHost(e.t, h) })
	return h
}

func closeHost(t *testing.T, h *pluginhost.Host) {
	pid := h.PID()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if pid != 0 && testutil.Alive(pid) {
		t.Errorf("plugin %d still alive after Close", pid)
	}
}

var msg = handlertest.Msg

func frames(fs [][]byte) string { return fmt.Sprintf("%q", fs) }

func numbered(i int) handler.Msg { return msg("topic", fmt.Sprintf("msg-%d", i)) }

func checkUpper(t *testing.T, got map[uint64]handler.Result) {
	t.Helper()
	for tag, r := range got {
		want := frames([][]byte{[]byte("topic"), []byte(fmt.Sprintf("MSG-%d", tag))})
		if r.Err != nil || frames(r.Frames) != want {
			t.Fatalf("tag %d: got %s, %v; want %s", tag, frames(r.Frames), r.Err, want)
		}
	}
}

func testAnswers(t *testing.T, e *env, cfg pluginhost.Config) {
	h := e.start(cfg)
	out, err := h.Handle(context.Background(), msg("news", "hello, World"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := frames(out), `["news" "HELLO, WORLD"]`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	checkUpper(t, handlertest.Drive(t, h, 1000, numbered))
	if s := h.Stats(); s != (pluginhost.Stats{}) {
		t.Fatalf("stats %+v, want all zero", s)
	}
}

func TestGoPluginAnswers(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("")
	cfg.Path = buildExample(t, "upper-go")
	testAnswers(t, e, cfg)
}

func TestPythonPluginAnswers(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("")
	cfg.Path = testutil.RepoPath(t, "plugins/examples/python/upper_plugin.py")
	testAnswers(t, e, cfg)
}

func TestPluginErrAndDrop(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("")
	cfg.Path = buildExample(t, "reverse-go")
	h := e.start(cfg)
	out, err := h.Handle(context.Background(), msg("stressed"))
	if err != nil || frames(out) != `["desserts"]` {
		t.Fatalf("got %s, %v; want [\"desserts\"]", frames(out), err)
	}
	_, err = h.Handle(context.Background(), msg(""))
	var perr *pluginhost.PluginError
	if !errors.As(err, &perr) || err.Error() != "plugin error: nothing to reverse" {
		t.Fatalf("got %v, want plugin error: nothing to reverse", err)
	}
}

// REP with no frame after the id drops the message: a nil Result.
func TestPluginDrops(t *testing.T) {
	e := newEnv(t)
	h := e.start(e.config("drop-empty"))
	bg := context.Background()
	if err := h.Submit(bg, msg("t", ""), 7); err != nil {
		t.Fatal(err)
	}
	if r := testutil.Recv(t, "a result", h.Results(), 1)[0]; r.Tag != 7 || r.Err != nil || r.Frames != nil {
		t.Fatalf("got %+v, want tag 7 with nil frames and no error", r)
	}
	out, err := h.Handle(bg, msg("t", "kept"))
	if err != nil || frames(out) != `["t" "kept"]` {
		t.Fatalf("got %s, %v", frames(out), err)
	}
}

func TestPluginEnvironment(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("env")
	cfg.Topology = "pipeline"
	cfg.Env = append(cfg.Env, "EXTRA=yes")
	h := e.start(cfg)
	out, err := h.Handle(context.Background(), msg("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := frames(out), `["worker.1" "pipeline" "yes"]`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// The endpoint lives in the private directory, mode 0700.
	fi, err := os.Stat(cfg.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir %s: %v, %v; want mode 0700", cfg.Dir, fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "worker.1.plugin.1.sock")); err != nil {
		t.Fatalf("endpoint: %v", err)
	}
}

func TestHandshakeFailures(t *testing.T) {
	tests := []struct {
		mode, want string
	}{
		{"no-ready", "plugin handshake failed: no READY within 2s"},
		{"wrong-protocol", `plugin handshake failed: plugin speaks "ztopo-plugin/2", want "ztopo-plugin/1"`},
		{"garbage", `plugin handshake failed: plugin sent "HELLO" before READY`},
		{"exit=4", "plugin handshake failed: plugin exited before READY: exit status 4"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.config(tc.mode)
			cfg.ReadyTimeout = 2 * time.Second
			h, err := pluginhost.New(context.Background(), e.zctx, cfg)
			if err == nil {
				closeHost(t, h)
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, pluginhost.ErrHandshake) || err.Error() != tc.want {
				t.Fatalf("got %v, want %s (wrapping ErrHandshake)", err, tc.want)
			}
			if len(e.pids()) != 1 {
				t.Fatalf("plugin started %d times, want 1 (no restart loop)", len(e.pids()))
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		e := newEnv(t)
		cfg := e.config("")
		cfg.Path = "/nonexistent/plugin"
		_, err := pluginhost.New(context.Background(), e.zctx, cfg)
		want := "plugin handshake failed: start /nonexistent/plugin: fork/exec /nonexistent/plugin: no such file or directory"
		if !errors.Is(err, pluginhost.ErrHandshake) || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
	t.Run("relative", func(t *testing.T) {
		e := newEnv(t)
		cfg := e.config("")
		cfg.Path = "bin/plugin"
		_, err := pluginhost.New(context.Background(), e.zctx, cfg)
		if err == nil || err.Error() != `pluginhost: plugin path "bin/plugin" is not absolute` {
			t.Fatalf("got %v", err)
		}
	})
}

// A plugin that exits mid-stream: what it held is reported lost, exactly
// once per message; it is restarted and later messages are answered.
func TestCrashMidStream(t *testing.T) {
	e := newEnv(t)
	h := e.start(e.config("crash-after=100"))
	firstPid := h.PID()
	got := handlertest.Drive(t, h, 150, numbered)
	handlertest.Crash{
		Lost:     pluginhost.ErrLost,
		Want:     func(tag uint64) string { return fmt.Sprintf(`["topic" "MSG-%d"]`, tag) },
		Stats:    func() (int64, int64) { s := h.Stats(); return s.Lost, s.Restarts },
		FirstPID: firstPid,
	}.Check(t, h, got)
}

// A plugin that stops answering: its requests time out, it is killed and
// restarted, and the next requests are answered.
func TestHangKilledAndRestarted(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("hang-after=5")
	cfg.Timeout = 500 * time.Millisecond
	h := e.start(cfg)
	firstPid := h.PID()
	got := handlertest.Drive(t, h, 10, numbered)
	ok, failed := 0, 0
	for tag, r := range got {
		switch {
		case r.Err == nil:
			ok++
			if tag >= 5 {
				t.Fatalf("tag %d answered by a hung plugin", tag)
			}
		case errors.Is(r.Err, pluginhost.ErrTimeout), errors.Is(r.Err, pluginhost.ErrLost):
			failed++
		default:
			t.Fatalf("tag %d: unexpected error %v", tag, r.Err)
		}
	}
	if ok != 5 || failed != 5 {
		t.Fatalf("answered %d, failed %d; want 5 and 5", ok, failed)
	}
	testutil.WaitFor(t, "the hung plugin's restart", func() bool { return h.Stats().Restarts == 1 })
	out, err := h.Handle(context.Background(), msg("again"))
	if err != nil || frames(out) != `["AGAIN"]` {
		t.Fatalf("after restart: got %s, %v", frames(out), err)
	}
	if testutil.Alive(firstPid) {
		t.Fatalf("hung plugin %d still alive", firstPid)
	}
	if s := h.Stats(); s.TimedOut+s.Lost != 5 {
		t.Fatalf("stats %+v: want TimedOut+Lost = 5", s)
	}
}

// One slow request among steady traffic times out alone: the plugin is not
// killed, and its late answer is counted.
func TestSlowRequestTimesOutAlone(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("slow=3000")
	cfg.Timeout = time.Second
	h := e.start(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slow := make(chan error, 1)
	go func() {
		_, err := h.Handle(ctx, msg("slow"))
		slow <- err
	}()
	// Quick requests keep coming until the slow one's late answer is in:
	// a plugin that owes an answer and sends nothing for Timeout hangs.
	var slowErr error
	gotSlow := false
	deadline := time.Now().Add(30 * time.Second)
	for !gotSlow || h.Stats().Late != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no late answer; stats %+v", h.Stats())
		}
		select {
		case slowErr = <-slow:
			gotSlow = true
		case <-time.After(100 * time.Millisecond):
			out, err := h.Handle(ctx, msg("quick"))
			if err != nil || frames(out) != `["quick"]` {
				t.Fatalf("quick: got %s, %v", frames(out), err)
			}
		}
	}
	if !errors.Is(slowErr, pluginhost.ErrTimeout) || slowErr.Error() != "plugin did not answer in time (1s)" {
		t.Fatalf("slow: got %v, want ErrTimeout", slowErr)
	}
	if s := h.Stats(); s.Restarts != 0 || s.TimedOut != 1 {
		t.Fatalf("stats %+v: want no restart, one timeout", s)
	}
}

// More crashes than the node's restart policy allows fail the host for
// good (ErrGiveUp: the node must not apply the limit again): no loop.
func TestCrashLimitFailsHost(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("crash-after=0")
	cfg.Restart = spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 3, Within: time.Minute,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	h := e.start(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 4 {
		_, err := h.Handle(ctx, msg("x"))
		if !errors.Is(err, pluginhost.ErrLost) || !errors.Is(err, handler.ErrReported) {
			t.Fatalf("message %d: got %v, want ErrLost, reported", i, err)
		}
	}
	_, err := h.Handle(ctx, msg("x"))
	if !errors.Is(err, handler.ErrGiveUp) {
		t.Fatalf("got %v, want ErrGiveUp", err)
	}
	want := "plugin " + self(t) + " failed after 3 restarts within 1m0s: fatal handler error: the node's restart policy allows no more restarts"
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	select {
	case <-h.Done():
	case <-ctx.Done():
		t.Fatal("failed host did not stop")
	}
	if n := len(e.pids()); n != 4 {
		t.Fatalf("plugin started %d times, want 4", n)
	}
}

// Under `restart: no` a crashed plugin is not restarted.
func TestRestartPolicyNo(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("crash-after=0")
	cfg.Restart = spec.Restart{Policy: spec.RestartNo}
	h := e.start(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := h.Handle(ctx, msg("x")); !errors.Is(err, pluginhost.ErrLost) {
		t.Fatalf("got %v, want ErrLost", err)
	}
	select {
	case <-h.Done():
	case <-ctx.Done():
		t.Fatal("host did not fail")
	}
	if err := h.Err(); !errors.Is(err, handler.ErrGiveUp) || !strings.Contains(err.Error(), `the node's restart policy is "no"`) {
		t.Fatalf("got %v", err)
	}
	if n := len(e.pids()); n != 1 {
		t.Fatalf("plugin started %d times, want 1", n)
	}
}

// A reply larger than max_message is refused by libzmq (never read into
// memory): the plugin is restarted, the request reported, and the host
// goes on.
func TestOversizedReplyRefused(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(fmt.Sprintf("big=%d", 4<<20))
	cfg.MaxMessage = 1 << 20
	// Long enough for the plugin to build and send its 4 MB on a loaded
	// machine: the refusal, not the timeout, must end the request.
	cfg.Timeout = 20 * time.Second
	cfg.Restart = spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 5, Within: time.Minute,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	h := e.start(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := h.Handle(ctx, msg("big"))
	if err == nil || !errors.Is(err, handler.ErrReported) {
		t.Fatalf("oversized reply: got %d frames, %v; want a reported failure", len(out), err)
	}
	testutil.WaitFor(t, "the plugin's restart", func() bool { return h.Stats().Restarts == 1 })
	if out, err := h.Handle(ctx, msg("small")); err != nil || frames(out) != `["small"]` {
		t.Fatalf("after the refusal: got %s, %v", frames(out), err)
	}
	if n := len(e.pids()); n != 2 {
		t.Fatalf("plugin started %d times, want 2", n)
	}
	if log := e.logs.String(); !strings.Contains(log, "max_message=1048576") {
		t.Fatalf("the log does not say why:\n%s", log)
	}
}

func TestBackPressure(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("slow=2000")
	cfg.Inflight = 2
	h := e.start(cfg)
	handlertest.BackPressure(t, h, msg("slow"))
	handlertest.WantReplies(t, h, map[uint64]string{0: `["slow"]`, 1: `["slow"]`})
}

// Swap with a request held by the old plugin: it answers it after the new
// one took over; nothing is lost.
func TestSwapLetsOldFinish(t *testing.T) {
	e := newEnv(t)
	h := e.start(e.config("slow=1000"))
	oldPid := h.PID()
	bg := context.Background()
	if err := h.Submit(bg, msg("slow"), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Swap(e.config("upper")); err != nil {
		t.Fatalf("swap: %v", err)
	}
	if h.PID() == oldPid {
		t.Fatal("PID unchanged after swap")
	}
	handlertest.AfterSwap(t, h, `["slow"]`, oldPid, func() (int64, int64) { s := h.Stats(); return s.Swaps, s.Lost })
}

func TestSwapFailureKeepsOld(t *testing.T) {
	e := newEnv(t)
	h := e.start(e.config("upper"))
	pid := h.PID()
	bad := e.config("wrong-protocol")
	err := h.Swap(bad)
	if !errors.Is(err, pluginhost.ErrHandshake) {
		t.Fatalf("got %v, want ErrHandshake", err)
	}
	if h.PID() != pid {
		t.Fatal("the running plugin was replaced")
	}
	out, err := h.Handle(context.Background(), msg("still"))
	if err != nil || frames(out) != `["STILL"]` {
		t.Fatalf("got %s, %v", frames(out), err)
	}
	// Also once the refused plugin is gone and the host has closed its
	// ROUTER and monitor (the answer above usually comes first): had the
	// monitor been closed while attached, a late disconnect event would
	// block libzmq's I/O thread, and every plugin's traffic with it
	// (zsock.StopMonitor).
	testutil.WaitFor(t, "the refused plugin's exit", func() bool {
		return strings.Contains(e.logs.String(), "plugin exited: plugin="+bad.Path+" gen=2")
	})
	out, err = h.Handle(context.Background(), msg("again"))
	if err != nil || frames(out) != `["AGAIN"]` {
		t.Fatalf("after the refused plugin's exit: got %s, %v", frames(out), err)
	}
}

// The plugin's file is replaced while a client keeps sending: the host
// swaps by itself, every message is answered by the old or the new plugin.
func TestSwapOnFileChange(t *testing.T) {
	e := newEnv(t)
	script := filepath.Join(e.dir, "plugin.sh")
	writeScript(t, script, "upper")
	cfg := e.config("")
	cfg.Path = script
	cfg.WatchFile = true
	h := e.start(cfg)
	oldPid := h.PID()

	// Keep a window of messages in flight until the new plugin answers.
	handlertest.DriveThroughSwap(t, h, 64, 500, func(text string) handler.Msg { return msg("topic", text) }, 1, func() {
		writeScript(t, script, "reverse")
	})
	if s := h.Stats(); s.Swaps != 1 || s.Lost != 0 || s.TimedOut != 0 {
		t.Fatalf("stats %+v: want one swap, nothing lost", s)
	}
	testutil.WaitFor(t, "the old plugin's exit", func() bool { return !testutil.Alive(oldPid) })
	// A touch changes nothing.
	now := time.Now()
	if err := os.Chtimes(script, now, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if s := h.Stats(); s.Swaps != 1 {
		t.Fatalf("a touch swapped: %+v", s)
	}
}

// writeScript replaces path by a shell script that runs the test binary in
// mode, by rename, as installers do.
func writeScript(t *testing.T, path, mode string) {
	t.Helper()
	body := fmt.Sprintf("#!/bin/sh\n%s=%s exec %s\n", modeEnv, mode, self(t))
	testutil.ReplaceFile(t, path, []byte(body), 0o755)
}

// A plugin that ignores STOP is killed after the grace period.
func TestCloseKillsAfterGrace(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("ignore-stop")
	cfg.Grace = 200 * time.Millisecond
	h, err := pluginhost.New(context.Background(), e.zctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Handle(context.Background(), msg("a"))
	if err != nil || frames(out) != `["a"]` {
		t.Fatalf("got %s, %v", frames(out), err)
	}
	pid := h.PID()
	closeHost(t, h)
	if testutil.Alive(pid) {
		t.Fatalf("plugin %d survived Close", pid)
	}
	if _, err := h.Handle(context.Background(), msg("late")); !errors.Is(err, pluginhost.ErrClosed) {
		t.Fatalf("Handle after Close: got %v, want ErrClosed", err)
	}
}

// Cancelling New's context closes the host like Close.
func TestContextEndsHost(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	h, err := pluginhost.New(ctx, e.zctx, e.config("upper"))
	if err != nil {
		t.Fatal(err)
	}
	pid := h.PID()
	cancel()
	select {
	case <-h.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("host did not stop")
	}
	if !errors.Is(h.Err(), pluginhost.ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", h.Err())
	}
	if testutil.Alive(pid) {
		t.Fatalf("plugin %d alive", pid)
	}
	closeHost(t, h)
}

// A Go plugin whose parent goes away without a STOP (and without the
// parent-death signal ztopo sets) stops by itself.
func TestOrphanedPluginStops(t *testing.T) {
	e := newEnv(t)
	host, err := plugintest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	// sh starts the plugin in the background and exits once the plugin
	// answered (its stdin closed): the plugin, serving by then, is
	// reparented. (An sh that exited on a timer could be gone before a
	// plugin slow to start on a loaded machine had noted its parent.)
	cmd := exec.Command("/bin/sh", "-c", self(t)+" & read x")
	cmd.Env = append(os.Environ(), modeEnv+"=upper", pidFileEnv+"="+e.pidFile)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := host.Call([]byte("x"))
	if err != nil || frames(out) != `["X"]` {
		t.Fatalf("got %s, %v", frames(out), err)
	}
	stdin.Close()
	pids := e.pids()
	if len(pids) != 1 {
		t.Fatalf("pids %v, want one plugin", pids)
	}
	testutil.WaitFor(t, "the orphaned plugin's exit", func() bool { return !testutil.Alive(pids[0]) })
}

// TestLargeFramesPassWhole: frames larger than the host's 64 KB batch
// buffer, in both directions and mixed with small ones in flight, come back
// whole and upper-cased (the oversized and split-message receive paths).
func TestLargeFramesPassWhole(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("")
	cfg.Path = buildExample(t, "upper-go")
	h := e.start(cfg)
	sizes := []int{1, 70_000, 10, 300_000, 65_536, 65_535, 3}
	got := handlertest.Drive(t, h, 60, func(i int) handler.Msg {
		return msg("topic", strings.Repeat("ab", sizes[i%len(sizes)]/2+1))
	})
	if len(got) != 60 {
		t.Fatalf("got %d results, want 60", len(got))
	}
	for tag, r := range got {
		want := strings.Repeat("AB", sizes[int(tag)%len(sizes)]/2+1)
		if r.Err != nil || len(r.Frames) != 2 || string(r.Frames[0]) != "topic" || string(r.Frames[1]) != want {
			t.Fatalf("tag %d: got %d frames (err %v), last %d bytes; want topic + %d bytes upper-cased", tag, len(r.Frames), r.Err, len(r.Frames[len(r.Frames)-1]), len(want))
		}
	}
}
