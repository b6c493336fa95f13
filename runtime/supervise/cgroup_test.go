package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/testutil"
)

// setsidChild starts a shell that puts a sleep in a session of its own
// and then runs script; it returns the process and the sleep's pid, and
// never leaves the sleep behind.
func setsidChild(t *testing.T, dir, script string) (*Process, int) {
	t.Helper()
	pidFile := filepath.Join(dir, "gc")
	p, err := Start(context.Background(), Config{
		Name:    "n",
		Argv:    []string{"/bin/sh", "-c", "setsid sleep 1000 & echo $! > gc; " + script},
		Dir:     dir,
		Contain: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	var pid int
	testutil.WaitFor(t, "the setsid grandchild", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		st, ok := testutil.ReadStat(pid)
		return ok && pid > 0 && st.Pgrp == pid
	})
	start, _ := testutil.ReadStat(pid)
	t.Cleanup(func() {
		if st, ok := testutil.ReadStat(pid); ok && st.Start == start.Start {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return p, pid
}

func TestContainEndsSetsidGrandchild(t *testing.T) {
	for _, mode := range []string{"cgroup", "sweep"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "cgroup" && cgroupBase() == "" {
				t.Skip("no writable cgroup v2 here; the sweep covers this case")
			}
			noCgroup.Store(mode == "sweep")
			defer noCgroup.Store(false)
			p, gc := setsidChild(t, t.TempDir(), "while :; do sleep 0.1; done")
			if got := p.Contained(); got != mode {
				t.Fatalf("Contained: got %q, want %q", got, mode)
			}
			p.Stop(5 * time.Second)
			// The sweep's SIGKILL is sent when Stop returns; the
			// grandchild dies when the kernel next runs it.
			testutil.WaitFor(t, fmt.Sprintf("grandchild %d to end after Stop", gc), func() bool { return !testutil.Alive(gc) })
		})
	}
}

// TestCgroupEndsWhatAnExitedChildLeft: a child that exits by itself
// leaves a setsid grandchild, re-parented to init; only a cgroup still
// holds it.
func TestCgroupEndsWhatAnExitedChildLeft(t *testing.T) {
	if cgroupBase() == "" {
		t.Skip("no writable cgroup v2 here: a sweep by parent links cannot find this grandchild (docs/stopping.md)")
	}
	dir := t.TempDir()
	p, gc := setsidChild(t, dir, "while [ ! -e exit ]; do sleep 0.05; done; exit 0")
	if err := os.WriteFile(filepath.Join(dir, "exit"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if testutil.Alive(gc) {
		t.Fatalf("grandchild %d still runs after its parent's child exited", gc)
	}
	if _, err := os.Stat(p.cg.dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left behind: %v", p.cg.dir, err)
	}
}
