package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultStopGrace is how long a child gets between SIGTERM and SIGKILL
// when its Start context is cancelled and Config.StopGrace is zero; docker
// compose uses the same 10 s.
const DefaultStopGrace = 10 * time.Second

// maxLine is the longest output line logged as one message; a longer line
// is logged in pieces of this size so that a child printing without
// newlines cannot make ztopo buffer without bound.
const maxLine = 64 << 10

// outputDrain bounds how long the output of an exited child is still read:
// a process outside its group (one that called setsid) may keep the pipes
// open, and Done must not wait for it.
const outputDrain = 2 * time.Second

// Config describes a child process for one node instance.
type Config struct {
	// Argv is the program and its arguments; a program without a slash is
	// looked up in PATH.
	Argv []string
	Dir  string   // working directory; empty means ztopo's own
	Env  []string // the child's whole environment; nil means ztopo's own
	// Logger receives each line the child writes, as the message, with
	// node=Name and stream=stdout or stderr (the way docker compose
	// prefixes output with the service). Nil discards the output.
	Logger hclog.Logger
	Name   string // the node instance, "worker.2"
	// StopGrace is the SIGTERM-to-SIGKILL delay used when the context
	// passed to Start is cancelled; zero means DefaultStopGrace.
	StopGrace time.Duration
	// ExtraFiles are passed to the child as file descriptors 3, 4, ...
	// (exec.Cmd.ExtraFiles), for a side channel next to the logged
	// stdout/stderr, such as a process node's event pipe. The caller closes
	// its copies once Start has returned.
	ExtraFiles []*os.File
	// Stdin and Stdout give the caller pipes to the child's stdin and
	// stdout (Process.Stdin, Process.Stdout), for a protocol spoken over
	// them such as an exec handler's; a piped stdout is not logged. Without
	// Stdin the child's stdin is /dev/null.
	Stdin, Stdout bool
	// LogArgs are key/value pairs added, after node=Name, to every line
	// logged for the child, so that a handler's output names the handler.
	LogArgs []any
	// Contain makes the child's descendants end with it even when they
	// left its process group (setsid): the child runs in a cgroup of its
	// own when ztopo may create one, else Stop sweeps its descendants by
	// their parent links (see cgroup.go for what that cannot reach).
	Contain bool
}

// Process is a running child. Its methods are safe for concurrent use.
//
// The child runs in its own process group, so that Stop reaches whatever it
// started too; the group does not outlive the child: once the child has
// exited, what remains of its group is killed (as a container's processes
// end with its main process). The child gets SIGKILL if ztopo dies, even by
// SIGKILL (Linux parent-death signal).
type Process struct {
	name    string
	pid     int
	logger  hclog.Logger
	done    chan struct{}
	exited  chan struct{} // closed once the child is reaped, before done
	stdin   io.WriteCloser
	stdout  io.ReadCloser
	stopped atomic.Bool
	stop    sync.Once
	cg      *cgroup // nil when not contained in a cgroup
	contain bool

	sweptMu sync.Mutex
	swept   []proc // descendants noted by Stop, without a cgroup

	// Set before done is closed, read-only after.
	err   error
	state *os.ProcessState
}

// StartError is Start's error when the child could not be started: the
// program or the working directory is missing, the program is not
// executable or not a program, or the system is out of a resource.
type StartError struct {
	Name string // the node instance
	Err  error  // exec's error, "fork/exec /path: permission denied"
}

func (e *StartError) Error() string { return "start " + e.Name + ": " + e.Err.Error() }

// Unwrap returns exec's error.
func (e *StartError) Unwrap() error { return e.Err }

// Permanent reports whether starting again cannot succeed unless someone
// changes the file system: the program or a directory of its path is
// missing (ENOENT, ENOTDIR, not found in PATH), it may not be executed
// (EACCES: no x bit, a noexec mount), or it is no program the kernel can
// run (ENOEXEC: a script without #!, a binary for another machine). A
// supervisor fails such a node at once rather than restart it into the
// same error. EAGAIN, ENOMEM and the like are not permanent.
func (e *StartError) Permanent() bool {
	if errors.Is(e.Err, exec.ErrNotFound) {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES, syscall.ENOEXEC, syscall.EISDIR, syscall.ELOOP, syscall.ENAMETOOLONG} {
		if errors.Is(e.Err, errno) {
			return true
		}
	}
	return false
}

// IsPermanent reports whether err is, or wraps, a StartError that is
// Permanent.
func IsPermanent(err error) bool {
	var se *StartError
	return errors.As(err, &se) && se.Permanent()
}

// Start starts the child described by cfg. Cancelling ctx stops it as
// Stop(cfg.StopGrace) does; ctx does not bound anything else.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if len(cfg.Argv) == 0 {
		return nil, fmt.Errorf("start %s: empty command", cfg.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	if cfg.Dir != "" {
		// exec reports a missing directory as a missing program; say it.
		if _, err := os.Stat(cfg.Dir); err != nil {
			return nil, &StartError{Name: cfg.Name, Err: fmt.Errorf("working directory: %w", err)}
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if cfg.Name != "" {
		logger = logger.With("node", cfg.Name)
	}
	if len(cfg.LogArgs) > 0 {
		logger = logger.With(cfg.LogArgs...)
	}

	// Our own pipes rather than cmd.StdoutPipe: cmd.Wait then returns as
	// soon as the child exits, so that its group can be killed before we
	// wait for the output to end. childEnds are the child's copies, closed
	// here once it has started; ours are closed too if it has not.
	var childEnds, ourEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err != nil {
			closeAll(childEnds)
			closeAll(ourEnds)
			return nil, nil, fmt.Errorf("start %s: %w", cfg.Name, err)
		}
		return r, w, nil
	}
	p := &Process{name: cfg.Name, logger: logger, done: make(chan struct{}), exited: make(chan struct{}), contain: cfg.Contain}
	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Dir = cfg.Dir
	cmd.Env = cfg.Env
	cmd.ExtraFiles = cfg.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if cfg.Contain {
		if p.cg = newCgroup(cfg.Name); p.cg != nil {
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = int(p.cg.fd.Fd())
		}
	}
	if cfg.Stdin {
		r, w, err := pipe()
		if err != nil {
			return nil, err
		}
		cmd.Stdin, p.stdin = r, w
		childEnds, ourEnds = append(childEnds, r), append(ourEnds, w)
	}
	var outR *os.File // logged stdout, nil when piped to the caller
	{
		r, w, err := pipe()
		if err != nil {
			return nil, err
		}
		cmd.Stdout = w
		if cfg.Stdout {
			p.stdout = r
		} else {
			outR = r
		}
		childEnds, ourEnds = append(childEnds, w), append(ourEnds, r)
	}
	errR, errW, err := pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = errW
	childEnds, ourEnds = append(childEnds, errW), append(ourEnds, errR)

	started := make(chan error, 1)
	// A Cmd starts once, even if its Start failed: each attempt gets a
	// copy of this one.
	mk := func(cgroup bool) *exec.Cmd {
		c := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
		c.Dir, c.Env, c.ExtraFiles = cmd.Dir, cmd.Env, cmd.ExtraFiles
		c.Stdin, c.Stdout, c.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
		attr := *cmd.SysProcAttr
		if !cgroup {
			attr.UseCgroupFD, attr.CgroupFD = false, 0
		}
		c.SysProcAttr = &attr
		return c
	}
	go p.run(mk, started, outR, errR)
	err = <-started
	// The child holds its own copies; ours of its ends must be closed so
	// that the readers see EOF when the child's group is gone.
	closeAll(childEnds)
	if err != nil {
		closeAll(ourEnds)
		return nil, &StartError{Name: cfg.Name, Err: err}
	}

	grace := cfg.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	go func() {
		select {
		case <-ctx.Done():
			p.Stop(grace)
		case <-p.done:
		}
	}()
	return p, nil
}

// run starts the child and waits for it, on one locked OS thread: the
// parent-death signal is tied to the thread that forked the child, not to
// the process, so that thread must live as long as the child does.
func (p *Process) run(mk func(cgroup bool) *exec.Cmd, started chan<- error, outR, errR *os.File) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var cmd *exec.Cmd
	for attempt := 0; ; attempt++ {
		cmd = mk(p.cg != nil)
		err := cmd.Start()
		if err == nil {
			break
		}
		if p.cg != nil && !errors.Is(err, syscall.ETXTBSY) && !(&StartError{Err: err}).Permanent() {
			// Perhaps the kernel cannot clone into a cgroup (before
			// 5.7): once more without it, to tell.
			p.dropCgroup()
			if cmd = mk(false); cmd.Start() == nil {
				break
			}
		}
		// ETXTBSY: a just-written executable (a swapped plugin) may still
		// be open for writing in a child forked meanwhile by another
		// goroutine (golang/go#22315); it clears within milliseconds.
		if !errors.Is(err, syscall.ETXTBSY) || attempt == 20 {
			if p.cg != nil {
				p.dropCgroup()
			}
			started <- err
			return
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	p.pid = cmd.Process.Pid
	if p.cg != nil {
		p.cg.fd.Close()
	}
	p.logger.Debug("process started", "pid", p.pid, "argv", cmd.Args)

	var readers sync.WaitGroup
	if outR != nil {
		readers.Add(1)
		go func() { defer readers.Done(); copyLines(outR, p.logger, false) }()
	}
	readers.Add(1)
	go func() { defer readers.Done(); copyLines(errR, p.logger, true) }()
	started <- nil

	err := cmd.Wait()
	// Whatever the child left in its group dies with it, and so does what
	// it put outside the group: its cgroup, or what Stop's sweep found.
	killGroup(p.pid, syscall.SIGKILL)
	p.sweptMu.Lock()
	swept := p.swept
	p.sweptMu.Unlock()
	if p.cg != nil {
		if n := p.cg.kill(); n > 0 {
			p.logger.Info("killed processes the node left behind", "count", n, "pid", p.pid)
		}
	} else if n := killSwept(swept); n > 0 {
		p.logger.Info("killed processes the node left behind", "count", n, "pid", p.pid)
	}
	close(p.exited)

	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputDrain):
		p.logger.Debug("output still open after exit, closing it", "pid", p.pid)
	}
	// Closing unblocks readers still waiting on a pipe held by a stray
	// process (pipes from os.Pipe are pollable, so Close interrupts Read).
	if outR != nil {
		outR.Close()
	}
	errR.Close()
	<-drained

	p.err = err
	p.state = cmd.ProcessState
	p.logger.Debug("process exited", "pid", p.pid, "status", cmd.ProcessState.String())
	close(p.done)
}

// Stop asks the child's process group to end with SIGTERM, waits up to
// grace for the child to exit, then sends SIGKILL to the group, and returns
// Wait's result. Concurrent and repeated calls wait for the first one.
func (p *Process) Stop(grace time.Duration) error {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.stopped.Store(true)
		if p.cg != nil {
			p.cg.signal(syscall.SIGTERM)
		} else if p.contain {
			// Noted before the child can exit: afterwards its orphans
			// belong to init and no parent link leads to them.
			d := descendants(p.pid)
			p.sweptMu.Lock()
			p.swept = d
			p.sweptMu.Unlock()
		}
		killGroup(p.pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			p.logger.Warn("process did not stop in time, killing it", "pid", p.pid, "grace", grace)
			killGroup(p.pid, syscall.SIGKILL)
			if p.cg != nil {
				p.cg.signal(syscall.SIGKILL)
			}
			<-p.done
		}
	})
	return p.Wait()
}

// Wait waits for the child to exit and its output to be logged, and returns
// nil for exit status 0, else an *exec.ExitError (a non-zero status, or a
// signal — including the ones Stop sent).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done is closed once the child has exited and its output has been logged.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the child's process group, so that a shell script's
// own children get it too. It does nothing once the child was reaped: its
// pid may belong to someone else by then.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	killGroup(p.pid, sig)
}

// Kill sends SIGKILL to the child's process group at once, for a caller
// that runs its own stop sequence (or none) rather than Stop's.
func (p *Process) Kill() { p.Signal(syscall.SIGKILL) }

// Stdin is the write end of the child's stdin when Config.Stdin was set,
// else nil. Closing it is the caller's business (EOF for the child).
func (p *Process) Stdin() io.WriteCloser { return p.stdin }

// Stdout is the read end of the child's stdout when Config.Stdout was set,
// else nil. The caller reads it (or the child blocks once the pipe is
// full) and closes it.
func (p *Process) Stdout() io.ReadCloser { return p.stdout }

// Describe turns what Wait returns into words for logs and errors:
// "exit status 3", "signal: killed".
func Describe(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Pid is the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Stopped reports whether Stop was called (directly or by cancelling the
// Start context) before the child exited by itself, so that a supervisor
// can tell a requested stop from a crash.
func (p *Process) Stopped() bool { return p.stopped.Load() }

// ProcessState is the child's exit status; nil until Done is closed.
func (p *Process) ProcessState() *os.ProcessState {
	select {
	case <-p.done:
		return p.state
	default:
		return nil
	}
}

// dropCgroup gives up the child's cgroup before it started.
func (p *Process) dropCgroup() {
	p.cg.fd.Close()
	_ = p.cg.remove()
	p.cg = nil
}

// Contained tells how the child's descendants are held: "cgroup" when it
// runs in a cgroup of its own, "sweep" when Stop looks for them by parent
// links, "" when only its process group is signalled.
func (p *Process) Contained() string {
	switch {
	case p.cg != nil:
		return "cgroup"
	case p.contain:
		return "sweep"
	}
	return ""
}

// killGroup signals the process group pgid. ESRCH (nobody left) is the
// normal outcome once a group has ended and is not an error worth telling.
func killGroup(pgid int, sig syscall.Signal) {
	if pgid <= 0 {
		return // never signal our own group or every process
	}
	_ = syscall.Kill(-pgid, sig)
}

// copyLines logs each line read from r until EOF or a read error.
func copyLines(r io.Reader, logger hclog.Logger, stderr bool) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			emitLine(logger, line, stderr)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func emitLine(logger hclog.Logger, b []byte, stderr bool) {
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	// Log formats (JSON above all) need valid UTF-8; children may print
	// anything.
	s = strings.ToValidUTF8(s, "\uFFFD")
	stream := "stdout"
	if stderr {
		stream = "stderr"
	}
	logger.Info(s, "stream", stream)
}
