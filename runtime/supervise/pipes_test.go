package supervise

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/ztopo/ztopo/internal/testutil"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestPipesToTheCaller speaks to a child over its stdin and stdout, as an
// exec handler does: the piped stdout is the caller's and not logged,
// stderr still is, and closing stdin is the child's EOF.
func TestPipesToTheCaller(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	p := startProcess(ctx, t, Config{
		Argv:   []string{"sh", "-c", `echo started >&2; while read l; do echo "got $l"; done; echo bye >&2`},
		Logger: logger, Name: "filter.1",
		Stdin: true, Stdout: true,
	})
	out := bufio.NewReader(p.Stdout())
	for _, s := range []string{"a", "b"} {
		if _, err := fmt.Fprintln(p.Stdin(), s); err != nil {
			t.Fatal(err)
		}
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := "got " + s + "\n"; line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
	}
	if err := p.Stdin().Close(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(out)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after EOF: got %q, %v; want nothing", rest, err)
	}
	p.Stdout().Close()
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: got %v, want nil", err)
	}
	if got := messages(c, ""); len(got) != 0 {
		t.Errorf("logged stdout: got %q, want none", got)
	}
	if got, want := strings.Join(messages(c, "stderr"), ","), "filter.1|started,filter.1|bye"; got != want {
		t.Errorf("stderr lines: got %q, want %q", got, want)
	}
}

// TestNoPipesWithoutAsking keeps stdin at /dev/null (an immediate EOF).
func TestNoPipesWithoutAsking(t *testing.T) {
	ctx := testCtx(t)
	c, logger := newCapture()
	p := startProcess(ctx, t, Config{Argv: []string{"sh", "-c", `cat; echo done`}, Logger: logger, Name: "n"})
	if p.Stdin() != nil || p.Stdout() != nil {
		t.Fatal("got pipes that were not asked for")
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: got %v, want nil", err)
	}
	if got, want := strings.Join(messages(c, ""), ","), "n|done"; got != want {
		t.Errorf("stdout lines: got %q, want %q", got, want)
	}
}

func TestLogArgsOnEveryLine(t *testing.T) {
	ctx := testCtx(t)
	var buf testutil.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true, Level: hclog.Info})
	p, err := Start(ctx, Config{
		Argv:   []string{"sh", "-c", `echo out; echo err >&2`},
		Logger: logger, Name: "w.1",
		LogArgs: []any{"plugin", "/bin/upper"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: got %v, want nil", err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%v %v %v %v", e["@message"], e["node"], e["plugin"], e["stream"]))
	}
	want := map[string]bool{"out w.1 /bin/upper stdout": true, "err w.1 /bin/upper stderr": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] || got[0] == got[1] {
		t.Errorf("got lines %q, want %v", got, want)
	}
}

// TestSignalAndKill reach the group right away, unlike Stop's sequence,
// and do nothing once the child was reaped.
func TestSignalAndKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(*Process)
		want syscall.Signal
	}{
		{"signal", func(p *Process) { p.Signal(syscall.SIGTERM) }, syscall.SIGTERM},
		{"kill", (*Process).Kill, syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			c, logger := newCapture()
			// The grandchild shows that the whole group is reached.
			p, err := Start(ctx, Config{
				Argv:   []string{"sh", "-c", `sleep 120 & echo $!; wait`},
				Logger: logger, Name: "g",
			})
			if err != nil {
				t.Fatal(err)
			}
			stopOnCleanup(t, p)
			var grandchild int
			for grandchild == 0 {
				select {
				case l := <-c.Lines:
					grandchild, _ = strconv.Atoi(l.Str("@message"))
				case <-ctx.Done():
					t.Fatal("no pid from the child")
				}
			}
			tc.do(p)
			_ = p.Wait()
			if got := signalOf(t, p); got != tc.want {
				t.Errorf("ended by %v, want %v", got, tc.want)
			}
			waitGone(ctx, t, grandchild)
			if p.Stopped() {
				t.Error("Stopped: got true, want false (Stop was not called)")
			}
			tc.do(p) // after the end: nothing, and no panic
		})
	}
}

func TestDescribe(t *testing.T) {
	ctx := testCtx(t)
	p, err := Start(ctx, Config{Argv: []string{"sh", "-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := Describe(p.Wait()); got != "exit status 3" {
		t.Errorf("got %q, want %q", got, "exit status 3")
	}
	if got := Describe(nil); got != "exit status 0" {
		t.Errorf("got %q, want %q", got, "exit status 0")
	}
}
