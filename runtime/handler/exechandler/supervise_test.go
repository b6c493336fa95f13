package exechandler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/exechandler"
	"github.com/ztopo/ztopo/runtime/handler/handlertest"
	"github.com/ztopo/ztopo/spec"
)

// fastRestart restarts at once (the supervise floor), five times a minute.
var fastRestart = spec.Restart{
	Policy: spec.RestartOnFailure, MaxRestarts: 5, Within: time.Minute,
	BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
}

// firstTime is a shell script that runs bad the first time it starts (a
// marker file says so) and good after: a child that misbehaves once and is
// fine after its restart.
func firstTime(t *testing.T, bad, good string) []string {
	marker := filepath.Join(t.TempDir(), "started")
	return []string{"sh", "-c", fmt.Sprintf(`if [ -e %s ]; then exec %s; fi; : > %s; exec %s`, marker, good, marker, bad)}
}

func lines(log, sub string) int { return strings.Count(log, sub) }

// submitN submits n messages and returns their n Results.
func submitN(t *testing.T, x *exechandler.Exec, n int) []handler.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		if err := x.Submit(ctx, msg(fmt.Sprintf("m%d", i)), uint64(i)); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	var got []handler.Result
	for len(got) < n {
		select {
		case r := <-x.Results():
			got = append(got, r)
		case <-ctx.Done():
			t.Fatalf("got %d results of %d", len(got), n)
		}
	}
	return got
}

func wantAllLost(t *testing.T, got []handler.Result) {
	t.Helper()
	for _, r := range got {
		if !errors.Is(r.Err, exechandler.ErrLost) || !errors.Is(r.Err, handler.ErrReported) {
			t.Fatalf("tag %d: got %v, want ErrLost and ErrReported", r.Tag, r.Err)
		}
	}
}

// A child that reads its lines and answers none is killed after the
// response timeout; its 20 messages are reported lost in one log line with
// their count, and the restarted child answers.
func TestHungChildKilledAndRestarted(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{
		Argv:    firstTime(t, "sleep 600", "cat"),
		Timeout: 300 * time.Millisecond,
		Restart: fastRestart,
	})
	first := x.PID()
	got := submitN(t, x, 20)
	wantAllLost(t, got)
	log := e.logs.String()
	if n := lines(log, "exec handler answered nothing within its timeout, killing it"); n != 1 {
		t.Fatalf("got %d timeout lines, want 1", n)
	}
	if n := lines(log, "exec handler lost messages"); n != 1 || !strings.Contains(log, "count=20") {
		t.Fatalf("got %d loss lines (want 1, with count=20):\n%s", n, log)
	}
	out, err := x.Handle(context.Background(), msg("after"))
	if err != nil || q(out) != `["after"]` {
		t.Fatalf("after restart: got %s, %v", q(out), err)
	}
	if s := x.Stats(); s.Hangs != 1 || s.Lost != 20 || s.Restarts != 1 {
		t.Fatalf("Stats() = %+v, want 1 hang, 20 lost, 1 restart", s)
	}
	e.note(x)
	if testutil.Alive(first) {
		t.Fatalf("hung child %d alive", first)
	}
}

// A child that writes an endless line is killed when the line passes
// max_line: ztopo never holds more than max_line of it. The message is
// lost (reported), and the restarted child answers.
func TestLineLongerThanMaxLine(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{
		Argv:    firstTime(t, "cat /dev/zero", "cat"),
		MaxLine: 4096,
		Restart: fastRestart,
	})
	wantAllLost(t, submitN(t, x, 1))
	log := e.logs.String()
	if n := lines(log, "exec handler wrote a line longer than max_line, killing it"); n != 1 || !strings.Contains(log, "max_line=4096") {
		t.Fatalf("got %d max_line lines, want 1 naming max_line=4096", n)
	}
	out, err := x.Handle(context.Background(), msg("after"))
	if err != nil || q(out) != `["after"]` {
		t.Fatalf("after restart: got %s, %v", q(out), err)
	}
	if s := x.Stats(); s.TooLong != 1 || s.Lost != 1 {
		t.Fatalf("Stats() = %+v, want 1 too long, 1 lost", s)
	}
	// A line of exactly max_line bytes is still an answer.
	line := strings.Repeat("x", 4096)
	if out, err := x.Handle(context.Background(), msg(line)); err != nil || len(out) != 1 || string(out[0]) != line {
		t.Fatalf("a line of max_line bytes: got %d frames, %v", len(out), err)
	}
}

// A child that crashes holding 300 messages gives one loss line with the
// count, and Results the node does not log again (ErrReported).
func TestCrashLossIsOneLine(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{
		Argv:     firstTime(t, `sh -c "head -n 300 >/dev/null; exit 3"`, "cat"),
		Inflight: 300,
		Restart:  fastRestart,
	})
	got := submitN(t, x, 300)
	wantAllLost(t, got)
	log := e.logs.String()
	if n := lines(log, "exec handler lost messages"); n != 1 || !strings.Contains(log, "count=300") {
		t.Fatalf("got %d loss lines, want 1 with count=300:\n%s", n, log)
	}
	if n := lines(log, "\n"); n > 10 {
		t.Fatalf("a crash gave %d log lines, want a handful:\n%s", n, log)
	}
}

// The drop line drops its message: a filter. Here with `drop: ""`, sed
// empties the lines it does not keep.
func TestDropLine(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sed", "-u", "/ERROR/!s/.*//"}, DropSet: true})
	got := handlertest.Drive(t, x, 4, func(i int) handler.Msg {
		return msg("topic", []string{"ERROR a", "info b", "ERROR c", "debug d"}[i])
	})
	want := []string{`["topic" "ERROR a"]`, `[]`, `["topic" "ERROR c"]`, `[]`}
	for i, w := range want {
		r := got[uint64(i)]
		if r.Err != nil || q(r.Frames) != w {
			t.Fatalf("tag %d: got %s, %v; want %s", i, q(r.Frames), r.Err, w)
		}
	}
	if s := x.Stats(); s.Dropped != 2 {
		t.Fatalf("Stats().Dropped = %d, want 2", s.Dropped)
	}
	// Without DropSet an empty line is an empty frame, as before.
	y := e.start(exechandler.Config{Argv: []string{"sed", "-u", "s/.*//"}})
	if out, err := y.Handle(context.Background(), msg("x")); err != nil || q(out) != `[""]` {
		t.Fatalf("without drop: got %s, %v", q(out), err)
	}
	// A marker other than the empty line.
	z := e.start(exechandler.Config{Argv: []string{"sed", "-u", "s/^skip.*/-/"}, Drop: "-", DropSet: true})
	if out, err := z.Handle(context.Background(), msg("skip me")); err != nil || out != nil {
		t.Fatalf("drop marker: got %s, %v; want no frames", q(out), err)
	}
	if out, err := z.Handle(context.Background(), msg("keep")); err != nil || q(out) != `["keep"]` {
		t.Fatalf("kept line: got %s, %v", q(out), err)
	}
}

// Debian's awk (mawk) buffers its input even with fflush(): it holds the
// messages and answers none. ztopo asks, once, whether it buffers; with
// `-W interactive`, as the docs say, it answers each line.
func TestBufferingChildWarned(t *testing.T) {
	const mawk = "/usr/bin/mawk"
	if _, err := os.Stat(mawk); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mawk missing (scripts/deps.sh installs it): %v", err)
		}
		t.Skip("mawk not installed")
	}
	e := newEnv(t)
	x := e.start(exechandler.Config{
		Argv:    []string{mawk, "{print; fflush()}"},
		Timeout: 2 * time.Second,
		Restart: spec.Restart{Policy: spec.RestartNo},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 5 {
		if err := x.Submit(ctx, msg(fmt.Sprintf("m%d", i)), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	const warning = "exec handler holds messages and has answered none: is it buffering its input or output?"
	testutil.WaitFor(t, "the buffering warning", func() bool { return strings.Contains(e.logs.String(), warning) })
	for range 5 {
		select {
		case r := <-x.Results():
			if !errors.Is(r.Err, exechandler.ErrLost) {
				t.Fatalf("tag %d: got %v, want ErrLost", r.Tag, r.Err)
			}
		case <-ctx.Done():
			t.Fatal("the buffering child's messages were never reported")
		}
	}
	if n := lines(e.logs.String(), warning); n != 1 {
		t.Fatalf("got %d warnings, want 1", n)
	}

	y := e.start(exechandler.Config{Argv: []string{mawk, "-W", "interactive", "{print; fflush()}"}})
	got := handlertest.Drive(t, y, 50, func(i int) handler.Msg { return msg(fmt.Sprintf("m%d", i)) })
	for i := range 50 {
		if r := got[uint64(i)]; r.Err != nil || q(r.Frames) != fmt.Sprintf(`["m%d"]`, i) {
			t.Fatalf("mawk -W interactive, tag %d: got %s, %v", i, q(r.Frames), r.Err)
		}
	}
}

// The line quoted in a log line is cut short.
func TestQuotedOutputBounded(t *testing.T) {
	e := newEnv(t)
	x := e.start(exechandler.Config{Argv: []string{"sh", "-c", `head -c 100000 /dev/zero | tr '\0' y; echo; exec cat`}})
	// Stats().Extra counts the line before the warning is logged: wait
	// for the warning itself.
	testutil.WaitFor(t, "the extra line warning", func() bool {
		return x.Stats().Extra == 1 && strings.Contains(e.logs.String(), "line for no message")
	})
	log := e.logs.String()
	if !strings.Contains(log, "... (100000 bytes)") || len(log) > 5000 {
		t.Fatalf("log of %d bytes, want the line cut with its length:\n%.2000s", len(log), log)
	}
}
