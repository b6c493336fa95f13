package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ztopo/ztopo/runtime/engine"
)

// up -d: the foreground ztopo starts itself again, detached (a session of
// its own, stdin, stdout and stderr on /dev/null), with a pipe on file
// descriptor 3 named by envDetached. Until the topology runs, the
// background up writes to that pipe what the user must see (warnings and
// errors, and the reason it ends if it does) and finally readyLine; then it
// closes the pipe and writes nothing anywhere but its log buffer. The
// foreground copies the pipe to its stderr and exits 0 on readyLine, or,
// on end of file without it, with the background's exit status once it has
// exited: exit 1 leaves nothing running.

// envDetached tells a background up the descriptor of its pipe.
const envDetached = "ZTOPO_DETACHED_FD"

// readyLine is the background's last line on the pipe once every node runs
// (or completed): "\x00ready PID INSTANCES".
const readyLine = "\x00ready"

// detachWait bounds the wait for every node to run; past it the background
// up is stopped and up -d exits 1, saying which nodes were not running.
const detachWait = 60 * time.Second

// detachedArgs are up's arguments without -d.
func detachedArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		switch a {
		case "-d", "--d", "-detach", "--detach", "-d=true", "--detach=true":
			continue
		}
		out = append(out, a)
	}
	return out
}

// runDetached is the foreground side of up -d.
func runDetached(args []string, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "ztopo up: cannot start in the background: %v\n", err)
		return exitFailure
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail(stderr, "up", err)
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fail(stderr, "up", err)
	}
	defer r.Close()
	cmd := exec.Command(self, append([]string{"up"}, detachedArgs(args)...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = append(os.Environ(), envDetached+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		fmt.Fprintf(stderr, "ztopo up: cannot start in the background: %v\n", err)
		return exitFailure
	}
	w.Close()

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, readyLine+" "); ok {
			pid, n, _ := strings.Cut(rest, " ")
			fmt.Fprintf(stdout, "topology running in the background: pid %s, %s instances ('ztopo logs', 'ztopo ps', 'ztopo down')\n", pid, n)
			cmd.Process.Release()
			return exitOK
		}
		fmt.Fprintln(stderr, line)
	}
	// No ready line: the background up ended (or is ending) before every
	// node ran. Its exit status is ours.
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		fmt.Fprintln(stdout, "topology completed before up -d returned")
		return exitOK
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "ztopo up: the background up ended: %v\n", err)
	return exitFailure
}

// detachedPipe is the pipe of a background up, nil in the foreground.
func detachedPipe() *os.File {
	fd, err := strconv.Atoi(os.Getenv(envDetached))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(envDetached) // not for the nodes' children
	syscall.CloseOnExec(fd)  // nor the pipe: its end of file tells the foreground we ended
	return os.NewFile(uintptr(fd), "up -d pipe")
}

// awaitReady is run by a background up: it waits until every node runs or
// completed, then writes readyLine to the pipe, closes it, and stops
// writing the log anywhere but the buffer. A node that fails, or nodes not
// running within detachWait, stop the topology with the reason on the pipe.
func (u *upRun) awaitReady(pipe *os.File) {
	select {
	case <-u.svc.EngineStarted():
	case <-u.svc.StopContext().Done():
		return
	}
	deadline := time.Now().Add(detachWait)
	for {
		ready, failed, waiting := readiness(u.svc.Instances())
		switch {
		case len(failed) > 0:
			u.svc.Stop(fmt.Errorf("up -d: %s failed to start", strings.Join(failed, ", ")))
			return
		case ready:
			u.opts.logs.SetOutput(nil)
			fmt.Fprintf(pipe, "%s %d %d\n", readyLine, os.Getpid(), len(u.svc.Instances()))
			pipe.Close()
			return
		case time.Now().After(deadline):
			u.log.Error("up -d: nodes not running in time, stopping", "waited", detachWait, "nodes", strings.Join(waiting, ","))
			u.svc.Stop(fmt.Errorf("up -d: not running after %v: %s", detachWait, strings.Join(waiting, ", ")))
			return
		}
		select {
		case <-u.svc.StopContext().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readiness says whether every instance runs or completed; failed and
// waiting name those that failed for good and those still on their way.
func readiness(insts []engine.InstanceStatus) (ready bool, failed, waiting []string) {
	for _, in := range insts {
		switch in.State {
		case engine.StateRunning, engine.StateCompleted:
		case engine.StateFailed:
			failed = append(failed, in.Name)
		default:
			waiting = append(waiting, in.Name)
		}
	}
	return len(insts) > 0 && len(failed) == 0 && len(waiting) == 0, failed, waiting
}

// detachedOutput is where a background up writes until it is ready: the
// pipe, warnings and errors only; errors writing are ignored (the
// foreground may be gone).
type detachedOutput struct{ w io.Writer }

func (d detachedOutput) Write(p []byte) (int, error) {
	d.w.Write(p) //nolint:errcheck
	return len(p), nil
}
