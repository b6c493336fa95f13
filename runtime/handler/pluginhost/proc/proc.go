// Package proc starts the child processes behind out-of-process handlers
// (plugins, exec handlers) so that none of them outlives ztopo: each child
// runs in its own process group with Pdeathsig SIGKILL, and its output goes
// to the node's log line by line.
//
// Pdeathsig fires when the OS thread that started the child exits, not the
// process, so every child is started and waited for by a goroutine locked
// to its thread for the child's whole life.
package proc

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Spec describes a child to start.
type Spec struct {
	Path string   // absolute path of the executable
	Args []string // arguments after argv[0]
	Env  []string // the full environment
	Dir  string   // working directory; empty: ztopo's
	// Stdin and Stdout ask for pipes the caller reads and writes (the exec
	// codec); without them stdin is /dev/null and stdout goes to Logger.
	Stdin, Stdout bool
	// Logger receives stderr (and stdout unless piped) one line per entry.
	Logger hclog.Logger
	// LogArgs are key/value pairs added to every output line.
	LogArgs []any
}

// Process is a running child.
type Process struct {
	Pid    int
	Stdin  io.WriteCloser // when Spec.Stdin
	Stdout io.ReadCloser  // when Spec.Stdout

	done    chan struct{}
	waitErr error
	outDone chan struct{} // the log copiers finished
}

// maxLine bounds one logged output line; the rest is cut.
const maxLine = 64 << 10

// Start starts the child described by s.
func Start(s Spec) (*Process, error) {
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	p := &Process{done: make(chan struct{}), outDone: make(chan struct{})}
	var closeAfterStart, closeOnError []*os.File
	defer func() {
		for _, f := range closeAfterStart {
			f.Close()
		}
	}()
	fail := func(err error) (*Process, error) {
		for _, f := range closeOnError {
			f.Close()
		}
		return nil, err
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			closeOnError = append(closeOnError, r, w)
		}
		return
	}

	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var readers []io.Reader
	var streams []string
	if s.Stdin {
		r, w, err := pipe()
		if err != nil {
			return fail(err)
		}
		cmd.Stdin, p.Stdin = r, w
		closeAfterStart = append(closeAfterStart, r)
	}
	if s.Stdout {
		r, w, err := pipe()
		if err != nil {
			return fail(err)
		}
		cmd.Stdout, p.Stdout = w, r
		closeAfterStart = append(closeAfterStart, w)
	} else {
		r, w, err := pipe()
		if err != nil {
			return fail(err)
		}
		cmd.Stdout = w
		closeAfterStart = append(closeAfterStart, w)
		readers, streams = append(readers, r), append(streams, "stdout")
	}
	{
		r, w, err := pipe()
		if err != nil {
			return fail(err)
		}
		cmd.Stderr = w
		closeAfterStart = append(closeAfterStart, w)
		readers, streams = append(readers, r), append(streams, "stderr")
	}

	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, after
		// Wait, which is exactly the life Pdeathsig needs.
		runtime.LockOSThread()
		var err error
		for attempt := 0; ; attempt++ {
			err = cmd.Start()
			// ETXTBSY: a just-written executable may still be open for
			// writing in a child forked meanwhile by another goroutine
			// (golang/go#22315); it clears within milliseconds.
			if err == nil || !errors.Is(err, syscall.ETXTBSY) || attempt == 20 {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
		}
		started <- err
		if err != nil {
			return
		}
		p.waitErr = cmd.Wait()
		// What the child left behind in its group (a script's
		// children) ends with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fail(err)
	}
	p.Pid = cmd.Process.Pid
	log := s.Logger.With(append([]any{"pid", p.Pid}, s.LogArgs...)...)
	copied := make(chan struct{}, len(readers))
	for i, r := range readers {
		go func() {
			copyLines(log, streams[i], r)
			r.(*os.File).Close()
			copied <- struct{}{}
		}()
	}
	go func() {
		for range readers {
			<-copied
		}
		close(p.outDone)
	}()
	return p, nil
}

// copyLines logs r line by line until EOF (every holder of the pipe's
// write end is gone). Each line is the message, as for `command` nodes:
// the logger carries the node's name, stderr lines are marked.
func copyLines(log hclog.Logger, stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, 4096)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxLine {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 {
			emit(log, stream, line)
		}
		line = line[:0]
		if err != nil {
			return
		}
	}
}

func emit(log hclog.Logger, stream string, b []byte) {
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	// Log formats (JSON above all) need valid UTF-8; children print anything.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if stream == "stderr" {
		log.Info(s, "stream", stream)
		return
	}
	log.Info(s)
}

// Done is closed when the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the child's exit status (nil for exit 0); valid after Done.
func (p *Process) Err() error { return p.waitErr }

// OutputDone is closed when all of the child's logged output has been
// read (its stdout and stderr were closed by every process holding them).
func (p *Process) OutputDone() <-chan struct{} { return p.outDone }

// Signal sends sig to the child's process group, so that a shell script's
// own children get it too. It does nothing once the child was reaped: its
// pid may belong to someone else by then.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Pid, sig)
}

// Kill sends SIGKILL to the child's process group.
func (p *Process) Kill() { p.Signal(syscall.SIGKILL) }

// Describe turns an exit status into words for logs and errors:
// "exit status 3", "signal: killed".
func Describe(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
