package proc_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler/pluginhost/proc"
)

// Run with PROC_TEST_PARENT=1, the test binary is a parent that starts a
// long sleep through proc, prints its pid and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv("PROC_TEST_PARENT") == "1" {
		p, err := proc.Start(proc.Spec{Path: "/bin/sleep", Args: []string{"600"}})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(p.Pid)
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The child dies with its parent even when the parent is SIGKILLed.
func TestChildDiesWithParent(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(self)
	parent.Env = append(os.Environ(), "PROC_TEST_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		t.Fatalf("reading the child's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		parent.Process.Kill()
		t.Fatalf("parent said %q", line)
	}
	if !alive(pid) {
		t.Fatalf("child %d not running", pid)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	waitGone(t, pid)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestOutputAndStatus(t *testing.T) {
	var logs lockedBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, DisableTime: true})
	p, err := proc.Start(proc.Spec{
		Path:    "/bin/sh",
		Args:    []string{"-c", `echo to-out; printf 'to-err\r\n' >&2; printf 'no newline'; exit 3`},
		Logger:  log,
		LogArgs: []any{"node", "n1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	<-p.OutputDone()
	if got := proc.Describe(p.Err()); got != "exit status 3" {
		t.Fatalf("status %q, want exit status 3", got)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := map[string]bool{
		fmt.Sprintf("[INFO]  to-out: node=n1 pid=%d", p.Pid):               true,
		fmt.Sprintf("[INFO]  to-err: node=n1 pid=%d stream=stderr", p.Pid): true,
		fmt.Sprintf("[INFO]  no newline: node=n1 pid=%d", p.Pid):           true,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for _, l := range lines {
		if !want[l] {
			t.Fatalf("unexpected log line %q in\n%s", l, logs.String())
		}
	}
}

// What a child leaves running in its group ends when it exits.
func TestGroupKilledAfterExit(t *testing.T) {
	p, err := proc.Start(proc.Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 600 & echo $!"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(p.Stdout).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("got %q", line)
	}
	<-p.Done()
	waitGone(t, pid)
}

func TestStartError(t *testing.T) {
	_, err := proc.Start(proc.Spec{Path: "/nonexistent"})
	if err == nil || err.Error() != "fork/exec /nonexistent: no such file or directory" {
		t.Fatalf("got %v", err)
	}
}
