// Package testutil holds what ztopo's tests in many packages need alike:
// bounded waits on a condition, the pyzmq interpreter every interop test
// talks to, and reading /proc for the processes a test started. Tests only;
// nothing outside _test.go files imports it.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/curvecert"
)

// ReplaceFile writes body to path+".tmp" and renames that over path, as
// installers and editors replace a file: a watcher of path sees it
// replaced whole, never half written.
func ReplaceFile(t testing.TB, path string, body []byte, perm os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, body, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Bound is how long a wait may last before the test fails: generous, since
// the machines that run the suite are small and busy. Waits end as soon as
// their condition holds.
const Bound = 60 * time.Second

// WaitFor polls cond every few milliseconds until it holds; the test fails,
// naming what, after Bound.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(Bound); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Bound, what)
		}
	}
}

// Python is Debian's interpreter, whose python3-zmq (pyzmq) is the foreign
// peer of the interop tests.
const Python = "/usr/bin/python3"

// Recv receives n values from ch; the test fails, naming what, when one
// takes longer than Bound.
func Recv[T any](t testing.TB, what string, ch <-chan T, n int) []T {
	t.Helper()
	out := make([]T, 0, n)
	for range n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-time.After(Bound):
			t.Fatalf("timed out after %v waiting for %s (%d of %d)", Bound, what, len(out), n)
		}
	}
	return out
}

// NeedPyzmq skips the test when Python cannot import zmq — except in CI
// (CI set in the environment), where a missing peer is a failure rather
// than a test quietly not run.
func NeedPyzmq(t testing.TB) {
	t.Helper()
	err := exec.Command(Python, "-c", "import zmq").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s with pyzmq is not available in CI (Debian: python3-zmq): %v", Python, err)
	}
	t.Skipf("%s with pyzmq is not available (Debian: python3-zmq): %v", Python, err)
}

// NeedPyzmqCurve is NeedPyzmq for tests whose Python peers speak CURVE: a
// pyzmq whose libzmq lacks it fails the test.
func NeedPyzmqCurve(t testing.TB) {
	t.Helper()
	NeedPyzmq(t)
	out, err := exec.Command(Python, "-c", "import zmq, zmq.auth; print(zmq.has('curve'))").Output()
	if err != nil {
		t.Fatalf("%s: zmq.auth: %v", Python, err)
	}
	if strings.TrimSpace(string(out)) != "True" {
		t.Fatalf("pyzmq's libzmq has no CURVE: %s", out)
	}
}

// RepoPath is the absolute path of rel, a path from the repository's root.
func RepoPath(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: no caller information")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Stat is what a test reads of /proc/PID/stat.
type Stat struct {
	State byte   // R, S, D, T, Z, X, ...
	Ppid  int    // parent
	Pgrp  int    // process group
	Start uint64 // start time in clock ticks since boot: tells a reused pid apart
}

// ReadStat reads /proc/PID/stat; ok is false when pid does not exist.
func ReadStat(pid int) (st Stat, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, false
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses,
	// so fields are counted after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return Stat{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 {
		return Stat{}, false
	}
	st.State = f[0][0]
	st.Ppid, _ = strconv.Atoi(f[1])
	st.Pgrp, _ = strconv.Atoi(f[2])
	st.Start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

// Alive tells whether pid exists and is not a zombie (a dead process whose
// parent has not reaped it yet still shows in /proc).
func Alive(pid int) bool {
	st, ok := ReadStat(pid)
	return ok && st.State != 'Z' && st.State != 'X'
}

// Proc is a process as /proc shows it.
type Proc struct {
	Pid int
	Stat
	Cmdline string // the arguments joined by spaces
}

// Procs lists the processes for which keep holds (all when keep is nil).
// A process that ends while /proc is read is left out.
func Procs(keep func(Proc) bool) []Proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := ReadStat(pid)
		if !ok {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		p := Proc{Pid: pid, Stat: st, Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}
		if keep == nil || keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// GroupMembers lists the processes of process group pgid.
func GroupMembers(pgid int) []int {
	var out []int
	for _, p := range Procs(func(p Proc) bool { return p.Pgrp == pgid }) {
		out = append(out, p.Pid)
	}
	return out
}

// Freeze stops process pid with SIGSTOP, as a debugger or ^Z would, and
// returns thaw, which resumes it with SIGCONT. Should the test end before
// thaw, a cleanup resumes pid: no process is left stopped for ever.
func Freeze(t testing.TB, pid int) (thaw func()) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	return func() {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		thawed = true
	}
}

// ExampleKeys makes the CURVE key pairs the secured examples of
// topologies/ use (broker, client, worker) in a fresh temporary directory
// and returns it, for their KEYS variable: no secret key is committed to the
// repository (git would not even keep its mode 0600).
func ExampleKeys(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	for _, name := range []string{"broker", "client", "worker"} {
		c, err := curvecert.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := curvecert.Write(dir, name, c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ProcessWorkers is the topology of the tests that stop, stall or kill
// process workers under traffic: gen (generate, with config gen) pushes to
// replicas process workers (forward, with config worker), which push to
// sink (count, with config sink); an empty config is none. extra is YAML
// appended under nodes.
func ProcessWorkers(name string, replicas int, gen, worker, sink, extra string) string {
	config := func(c string) string {
		if c == "" {
			return ""
		}
		return "\n    config: " + c
	}
	return fmt.Sprintf(`version: 1
name: %s
nodes:
  gen:
    handler: generate%s
    sockets:
      out: {type: PUSH, bind: auto}
  worker:
    run: process
    replicas: %d
    handler: forward%s
    sockets:
      in: {type: PULL, connect: gen.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count%s
    sockets:
      in: {type: PULL, bind: auto}
%s`, name, config(gen), replicas, config(worker), config(sink), extra)
}

// SlowPipeline is the topology of the drain and loss tests: src
// (generate, with config src) pushes to slow (forward, delay a message),
// which pushes to sink (sink: its handler line and config). src and sink
// bind srcEP and sinkEP; with a syncEP, src starts once slow is connected.
func SlowPipeline(name, src, delay, sink, srcEP, sinkEP, syncEP string) string {
	srcSync, slowSync := "", ""
	if syncEP != "" {
		srcSync = fmt.Sprintf("\n    sync: {expect: 1, bind: %q}", syncEP)
		slowSync = "\n    sync: {connect: src}"
	}
	return fmt.Sprintf(`version: 1
name: %s
nodes:
  src:
    handler: generate
    config: %s%s
    sockets:
      out: {type: PUSH, bind: %q}
  slow:
    handler: forward
    config: {delay: %s}%s
    sockets:
      in: {type: PULL, connect: src.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    %s
    sockets:
      in: {type: PULL, bind: %q}
`, name, src, srcSync, srcEP, delay, slowSync, sink, sinkEP)
}
