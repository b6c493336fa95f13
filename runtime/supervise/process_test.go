package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// helperEnv selects what the re-executed test binary does instead of
// running the tests.
const helperEnv = "ZTOPO_SUPERVISE_HELPER"

// helperLife bounds every helper process, so that a failing test never
// leaves one behind for long.
const helperLife = 2 * time.Minute

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	switch mode {
	case "sleep":
		time.Sleep(helperLife)
		return 0
	case "output":
		fmt.Println("one")
		fmt.Fprintln(os.Stderr, "oops")
		fmt.Print("two\r\n")
		fmt.Print("tail") // no newline: still a line at EOF
		return 3
	case "graceful":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("ready")
		select {
		case <-term:
			fmt.Println("bye")
			return 0
		case <-time.After(helperLife):
			return 1
		}
	case "extra-file":
		// Writes to the first of Config.ExtraFiles.
		f := os.NewFile(3, "extra")
		if _, err := fmt.Fprintln(f, "side channel"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(helperLife)
		return 0
	case "parent":
		// Starts a grandchild through supervise, tells its pid, and waits
		// to be killed.
		p, err := Start(context.Background(), Config{
			Argv: []string{self()},
			Env:  append(os.Environ(), helperEnv+"=sleep"),
			Name: "grandchild",
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("child", p.Pid())
		select {
		case <-p.Done():
		case <-time.After(helperLife):
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func self() string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return exe
}

func helperConfig(mode string, logger hclog.Logger) Config {
	return Config{
		Argv:   []string{self()},
		Env:    append(os.Environ(), helperEnv+"="+mode),
		Logger: logger,
		Name:   "worker.1",
	}
}

func newCapture() (*testutil.LogCapture, hclog.Logger) {
	c := testutil.NewLogCapture(1000)
	return c, hclog.New(&hclog.LoggerOptions{Output: c, JSONFormat: true, Level: hclog.Info})
}

// waitFor waits for a log line whose message is msg.
func waitFor(ctx context.Context, t *testing.T, c *testutil.LogCapture, msg string) {
	t.Helper()
	for {
		select {
		case l := <-c.Lines:
			if l.Str("@message") == msg {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no log line %q: %v", msg, ctx.Err())
		}
	}
}

// messages returns NODE|MESSAGE of the entries of stream ("" for stdout)
// that name a node.
func messages(c *testutil.LogCapture, stream string) []string {
	var out []string
	for _, l := range c.Entries() {
		// "" asks for stdout, which is tagged stream=stdout.
		if st := l.Str("stream"); (st == stream || stream == "" && st == "stdout") && l.Str("node") != "" {
			out = append(out, l.Str("node")+"|"+l.Str("@message"))
		}
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stopOnCleanup makes sure no child outlives a failed test.
func stopOnCleanup(t *testing.T, p *Process) {
	t.Cleanup(func() { p.Stop(0) })
}

// startProcess starts cfg's child, failing the test if it cannot, and
// stops it when the test ends.
func startProcess(ctx context.Context, t *testing.T, cfg Config) *Process {
	t.Helper()
	p, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, p)
	return p
}

func TestOutputIsLoggedLineByLine(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	p := startProcess(ctx, t, helperConfig("output", logger))
	err := p.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("Wait: got %v, want exit status 3", err)
	}
	if got := p.ProcessState().ExitCode(); got != 3 {
		t.Errorf("ExitCode: got %d, want 3", got)
	}
	if p.Stopped() {
		t.Error("Stopped: got true for a child that exited by itself")
	}
	if got, want := strings.Join(messages(c, ""), ","), "worker.1|one,worker.1|two,worker.1|tail"; got != want {
		t.Errorf("stdout lines: got %q, want %q", got, want)
	}
	if got, want := strings.Join(messages(c, "stderr"), ","), "worker.1|oops"; got != want {
		t.Errorf("stderr lines: got %q, want %q", got, want)
	}
}

func TestLongLineIsSplit(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	script := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo; echo after", maxLine+10)
	p, err := Start(ctx, Config{Argv: []string{"sh", "-c", script}, Logger: logger, Name: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: got %v, want nil", err)
	}
	got := messages(c, "")
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3 (a split long line, then after)", len(got))
	}
	if len(got[0]) != len("big|")+maxLine || len(got[1]) != len("big|")+10 || got[2] != "big|after" {
		t.Errorf("got line lengths %d, %d and %q; want %d, %d and %q",
			len(got[0])-4, len(got[1])-4, got[2], maxLine, 10, "big|after")
	}
}

func TestStopIsGracefulFirst(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	p := startProcess(ctx, t, helperConfig("graceful", logger))
	waitFor(ctx, t, c, "ready")
	if err := p.Stop(20 * time.Second); err != nil {
		t.Fatalf("Stop: got %v, want nil (the child exits 0 on SIGTERM)", err)
	}
	if !p.Stopped() {
		t.Error("Stopped: got false after Stop")
	}
	if got := messages(c, ""); len(got) != 2 || got[1] != "worker.1|bye" {
		t.Errorf("output: got %q, want ready then bye", got)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	p := startProcess(ctx, t, helperConfig("ignore-term", logger))
	waitFor(ctx, t, c, "ready")
	err := p.Stop(200 * time.Millisecond)
	if err == nil {
		t.Fatal("Stop: got nil, want the error of a killed child")
	}
	if sig := signalOf(t, p); sig != syscall.SIGKILL {
		t.Errorf("child ended by %v, want %v", sig, syscall.SIGKILL)
	}
	// A second Stop returns the same result at once.
	if err2 := p.Stop(time.Hour); err2 != err {
		t.Errorf("second Stop: got %v, want %v", err2, err)
	}
}

func TestContextCancelStops(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	runCtx, cancel := context.WithCancel(ctx)
	cfg := helperConfig("graceful", logger)
	cfg.StopGrace = 20 * time.Second
	p, err := Start(runCtx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, p)
	waitFor(ctx, t, c, "ready")
	cancel()
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("child still running after its context was cancelled")
	}
	if err := p.Wait(); err != nil || !p.Stopped() {
		t.Errorf("got Wait %v and Stopped %v, want nil and true", err, p.Stopped())
	}
}

func TestStopReachesTheWholeGroup(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	// sh starts a grandchild that ignores SIGTERM: SIGTERM ends sh, and the
	// grandchild must die too, as the rest of a group whose leader is gone.
	script := `"$0" & echo "$!"; wait`
	p := startProcess(ctx, t, Config{
		Argv:   []string{"sh", "-c", script, self()},
		Env:    append(os.Environ(), helperEnv+"=ignore-term"),
		Logger: logger,
		Name:   "group",
	})
	waitFor(ctx, t, c, "ready")
	grandchild := firstPid(t, messages(c, ""))
	if !testutil.Alive(grandchild) {
		t.Fatalf("grandchild %d not running before Stop", grandchild)
	}
	p.Stop(20 * time.Second)
	waitGone(ctx, t, grandchild)
}

func TestGroupDoesNotOutliveLeader(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	p, err := Start(ctx, Config{
		Argv:   []string{"sh", "-c", `sleep 120 & echo "$!"`},
		Logger: logger,
		Name:   "leader",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: got %v, want nil", err)
	}
	waitGone(ctx, t, firstPid(t, messages(c, "")))
}

func TestStartErrors(t *testing.T) {
	ctx := testCtx(t)
	cases := []struct {
		name string
		ctx  context.Context
		cfg  Config
		want string
	}{
		{"empty argv", ctx, Config{Name: "a"}, "start a: empty command"},
		{"missing program", ctx, Config{Name: "b", Argv: []string{"ztopo-no-such-program"}},
			`start b: exec: "ztopo-no-such-program": executable file not found in $PATH`},
		{"missing dir", ctx, Config{Name: "c", Argv: []string{"true"}, Dir: "/nonexistent-ztopo"},
			"start c: working directory: stat /nonexistent-ztopo: no such file or directory"},
		{"cancelled context", cancelled(), Config{Name: "d", Argv: []string{"true"}}, "start d: context canceled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(tc.ctx, tc.cfg)
			if err == nil {
				p.Stop(0)
				t.Fatalf("got no error, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got %q, want %q", err, tc.want)
			}
		})
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestChildDiesWithParent kills a process that started a child through
// supervise with SIGKILL — no chance to clean up — and checks that the
// kernel killed the child (parent-death signal).
func TestChildDiesWithParent(t *testing.T) {
	ctx := testCtx(t)
	cmd := exec.Command(self())
	cmd.Env = append(os.Environ(), helperEnv+"=parent")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lineCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lineCh <- line
	}()
	var line string
	select {
	case line = <-lineCh:
	case <-ctx.Done():
		t.Fatal("helper did not report its child")
	}
	var child int
	if _, err := fmt.Sscanf(line, "child %d", &child); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	if !testutil.Alive(child) {
		t.Fatalf("child %d not running while its parent lives", child)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(ctx, t, child)
}

func signalOf(t *testing.T, p *Process) syscall.Signal {
	t.Helper()
	ws, ok := p.ProcessState().Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		t.Fatalf("child was not ended by a signal: %v", p.ProcessState())
	}
	return ws.Signal()
}

// firstPid reads the pid printed as "node|PID" by a test script.
func firstPid(t *testing.T, lines []string) int {
	t.Helper()
	for _, l := range lines {
		if _, s, ok := strings.Cut(l, "|"); ok {
			if pid, err := strconv.Atoi(s); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no pid in output %q", lines)
	return 0
}

// waitGone polls /proc until pid is gone: there is no event for the death
// of a process we are not the parent of.
func waitGone(ctx context.Context, t *testing.T, pid int) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for testutil.Alive(pid) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still alive", pid)
		}
	}
}

func TestExtraFilesReachTheChild(t *testing.T) {
	ctx := testCtx(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := helperConfig("extra-file", nil)
	cfg.ExtraFiles = []*os.File{w}
	p, err := Start(ctx, cfg)
	w.Close() // the child holds its own copy
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, p)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read fd 3: %v", err)
	}
	if line != "side channel\n" {
		t.Errorf("fd 3: got %q, want %q", line, "side channel\n")
	}
	if err := p.Wait(); err != nil {
		t.Errorf("Wait: got %v, want nil", err)
	}
}

func TestStartErrorPermanent(t *testing.T) {
	dir := t.TempDir()
	noX := filepath.Join(dir, "nox")
	noShebang := filepath.Join(dir, "noshebang")
	if err := os.WriteFile(noX, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noShebang, []byte("true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		argv []string
	}{
		{"missing", []string{filepath.Join(dir, "missing")}},
		{"not in PATH", []string{"ztopo-no-such-program"}},
		{"not executable", []string{noX}},
		{"no program", []string{noShebang}},
		{"a directory", []string{dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), Config{Name: "n", Argv: tc.argv})
			if err == nil || !IsPermanent(err) {
				t.Fatalf("Start: got %v, want a permanent start error", err)
			}
		})
	}
	if IsPermanent(&StartError{Name: "n", Err: syscall.EAGAIN}) {
		t.Error("EAGAIN taken as permanent")
	}
}
