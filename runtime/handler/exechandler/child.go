package exechandler

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/supervise"
)

// child is one running process with its writer and reader goroutines.
type child struct {
	n      int
	cfg    Config
	p      *supervise.Process
	stdin  io.WriteCloser
	stdout io.ReadCloser

	mu   sync.Mutex
	fifo []*item // written, not answered, oldest first
	dead bool    // fifo was failed: the writer must not add to it

	stop       chan struct{} // the writer takes nothing more
	stopOnce   sync.Once
	writerDone chan struct{}
	readerDone chan struct{}
	retiring   bool // manager's: stdin closed on purpose
	warned     bool // reader's: extra output reported once

	// Under mu, for the watchdog: busySince is when the fifo last became
	// non-empty, lastAnswer when the child last answered, answered how
	// many lines it answered; killed says why it was killed, or "".
	busySince  time.Time
	lastAnswer time.Time
	answered   int64
	killed     string
}

// outputDrain bounds the wait for a dead child's stdout to reach EOF: a
// process that escaped its group may hold the pipe open.
const outputDrain = 2 * time.Second

func (e *Exec) startChild(cfg Config, n int) (*child, error) {
	env := append(os.Environ(), cfg.Env...)
	if cfg.Node != "" {
		env = append(env, "ZTOPO_NODE="+cfg.Node)
	}
	// No context: the manager runs its own stop sequence (retire, Close).
	p, err := supervise.Start(context.Background(), supervise.Config{
		Argv:    cfg.Argv,
		Env:     env,
		Dir:     cfg.Dir,
		Stdin:   true,
		Stdout:  true,
		Logger:  cfg.Logger,
		Name:    cfg.Node,
		LogArgs: []any{"exec", cfg.Argv[0]},
	})
	if err != nil {
		// supervise names the node; this error names the program instead.
		if cause := errors.Unwrap(err); cause != nil {
			err = cause
		}
		return nil, handler.Permanent(fmt.Errorf("%w: %s: %v", ErrStart, cfg.Argv[0], err))
	}
	c := &child{
		n: n, cfg: cfg, p: p, stdin: p.Stdin(), stdout: p.Stdout(),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	e.log.Debug("exec handler started", "argv", cfg.Argv, "pid", p.Pid(), "gen", n)
	go c.write(e)
	go c.read(e)
	go c.waitExit(e)
	go c.watchdog(e)
	return c, nil
}

func (c *child) stopWriting() { c.stopOnce.Do(func() { close(c.stop) }) }

// write takes messages from e.in, notes each in the fifo before writing
// it (the answer may come before Write returns), and flushes whenever no
// message is waiting, so that a line-at-a-time child sees every line.
func (c *child) write(e *Exec) {
	defer close(c.writerDone)
	defer c.stdin.Close() // EOF: the child answers what it holds and exits
	w := bufio.NewWriterSize(c.stdin, 64<<10)
	for {
		var it *item
		select {
		case <-c.stop:
			// Closing (not swapping): what was submitted before Close still
			// goes to this child, which answers it before its EOF. On a swap
			// the queue is left to the new child.
			if e.isClosed() {
				c.writeQueued(e, w)
			}
			_ = w.Flush()
			return
		case it = <-e.in:
		}
		for it != nil {
			c.mu.Lock()
			if c.dead {
				c.mu.Unlock()
				e.in <- it // room: it holds a slot; the next child takes it
				return
			}
			c.push(it)
			c.mu.Unlock()
			if _, err := w.Write(it.frames[len(it.frames)-1]); err != nil {
				return // the child is gone; waitExit reports the fifo
			}
			if err := w.WriteByte('\n'); err != nil {
				return
			}
			select {
			case <-c.stop:
				it = nil
			case it = <-e.in:
			default:
				it = nil
			}
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// writeQueued writes what is left in e.in, without waiting for more.
func (c *child) writeQueued(e *Exec, w *bufio.Writer) {
	for {
		select {
		case it := <-e.in:
			c.mu.Lock()
			if c.dead {
				c.mu.Unlock()
				e.in <- it
				return
			}
			c.push(it)
			c.mu.Unlock()
			if _, err := w.Write(it.frames[len(it.frames)-1]); err != nil {
				return
			}
			if err := w.WriteByte('\n'); err != nil {
				return
			}
		default:
			return
		}
	}
}

// push notes it as written and unanswered; c.mu is held.
func (c *child) push(it *item) {
	if len(c.fifo) == 0 {
		c.busySince = time.Now()
	}
	c.fifo = append(c.fifo, it)
}

// read answers the oldest unanswered message with each line of stdout. A
// line longer than MaxLine is never held whole: the child is killed and
// the rest of its output is discarded, so memory stays bounded.
func (c *child) read(e *Exec) {
	defer close(c.readerDone)
	br := bufio.NewReaderSize(c.stdout, min(64<<10, c.cfg.MaxLine+1))
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(long)+len(line) > c.cfg.MaxLine {
				c.tooLong(e, len(long)+len(line))
				_, _ = io.Copy(io.Discard, br)
				return
			}
			long = append(long, line...)
			continue
		}
		if err != nil {
			// A last line without its newline is still an answer.
			if len(line) > 0 || len(long) > 0 {
				if len(long)+len(line) > c.cfg.MaxLine {
					c.tooLong(e, len(long)+len(line))
					return
				}
				c.answer(e, append(long, line...))
			}
			return
		}
		line = line[:len(line)-1]
		if len(long)+len(line) > c.cfg.MaxLine {
			c.tooLong(e, len(long)+len(line))
			_, _ = io.Copy(io.Discard, br)
			return
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		c.answer(e, line)
	}
}

// tooLong kills a child whose output line exceeds MaxLine: seen bytes of
// it were read so far. What the child held is reported when it is gone.
func (c *child) tooLong(e *Exec, seen int) {
	e.tooLong.Add(1)
	c.kill(e, "line too long", func(held int) {
		e.log.Error("exec handler wrote a line longer than max_line, killing it",
			"argv", c.cfg.Argv, "pid", c.p.Pid(), "max_line", c.cfg.MaxLine, "seen", seen, "held", held)
	})
}

// kill kills the child once, logging why through say (given how many
// messages it holds).
func (c *child) kill(e *Exec, why string, say func(held int)) {
	c.mu.Lock()
	if c.killed != "" {
		c.mu.Unlock()
		return
	}
	c.killed = why
	held := len(c.fifo)
	c.mu.Unlock()
	say(held)
	c.p.Kill()
}

// watchdog kills a child that holds messages and has answered none of
// them for Timeout, and asks, once per handler, whether a child that has
// never answered buffers its input or output.
func (c *child) watchdog(e *Exec) {
	warnAfter := min(bufferWarnAfter, c.cfg.Timeout/2)
	tick := min(max(warnAfter/4, 10*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.p.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			held, answered, killed := len(c.fifo), c.answered, c.killed
			idle := c.busySince
			if c.lastAnswer.After(idle) {
				idle = c.lastAnswer
			}
			busy := c.busySince
			c.mu.Unlock()
			if held == 0 || killed != "" {
				continue
			}
			if answered == 0 && now.Sub(busy) >= warnAfter && e.bufWarned.CompareAndSwap(false, true) {
				e.log.Warn("exec handler holds messages and has answered none: is it buffering its input or output? "+
					"(mawk: -W interactive; sed -u; python3 -u; else stdbuf -oL, or flush after each line)",
					"argv", c.cfg.Argv, "pid", c.p.Pid(), "held", held, "for", now.Sub(busy).Round(time.Millisecond))
			}
			if now.Sub(idle) >= c.cfg.Timeout {
				e.hangs.Add(1)
				c.kill(e, "hung", func(held int) {
					e.log.Error("exec handler answered nothing within its timeout, killing it",
						"argv", c.cfg.Argv, "pid", c.p.Pid(), "timeout", c.cfg.Timeout, "held", held)
				})
			}
		}
	}
}

// quote is b for a log line, cut at maxQuote bytes.
func quote(b []byte) string {
	if len(b) <= maxQuote {
		return string(b)
	}
	return fmt.Sprintf("%s... (%d bytes)", b[:maxQuote], len(b))
}

func (c *child) answer(e *Exec, line []byte) {
	c.mu.Lock()
	if len(c.fifo) == 0 {
		c.mu.Unlock()
		e.extra.Add(1)
		if !c.warned {
			c.warned = true
			e.log.Warn("exec handler wrote a line for no message, dropped (one line per input line, please)",
				"argv", c.cfg.Argv, "pid", c.p.Pid(), "line", quote(line))
		}
		return
	}
	it := c.fifo[0]
	c.fifo[0] = nil
	c.fifo = c.fifo[1:]
	c.answered++
	now := time.Now()
	c.lastAnswer = now
	if len(c.fifo) > 0 {
		c.busySince = now
	}
	c.mu.Unlock()
	if c.cfg.DropSet && string(line) == c.cfg.Drop {
		e.dropped.Add(1)
		e.answer(it, handler.Result{})
		return
	}
	out := make([][]byte, len(it.frames))
	copy(out, it.frames)
	out[len(out)-1] = append([]byte(nil), line...)
	e.answer(it, handler.Result{Frames: out})
}

// waitExit reports, once the child is gone, the messages it held, and then
// tells the manager.
func (c *child) waitExit(e *Exec) {
	<-c.p.Done()
	select {
	case <-c.readerDone:
	case <-time.After(outputDrain):
		c.stdout.Close() // unblocks the reader
		<-c.readerDone
	}
	c.mu.Lock()
	c.dead = true
	held := c.fifo
	c.fifo = nil
	killed := c.killed
	c.mu.Unlock()
	status := supervise.Describe(c.p.Wait())
	if killed != "" {
		status = killed + ", " + status
	}
	if len(held) > 0 {
		// One log line for the event; the node does not log each message.
		lostErr := handler.Reported(fmt.Errorf("%w: child %s", ErrLost, status))
		e.lost.Add(int64(len(held)))
		e.log.Warn("exec handler lost messages", "argv", c.cfg.Argv, "pid", c.p.Pid(), "count", len(held), "status", status)
		for _, it := range held {
			e.answer(it, handler.Result{Err: lostErr})
		}
	}
	c.stopWriting()
	<-c.writerDone
	e.exits <- c
}

// retire closes the child's stdin (through its writer) and ends it after
// grace: SIGTERM, then SIGKILL.
func (c *child) retire(grace time.Duration) {
	if c.retiring {
		return
	}
	c.retiring = true
	c.stopWriting()
	go func() {
		select {
		case <-c.p.Done():
			return
		case <-time.After(grace):
		}
		c.p.Signal(syscall.SIGTERM)
		select {
		case <-c.p.Done():
			return
		case <-time.After(termGrace):
		}
		c.p.Kill()
	}()
}

// manage owns the set of children: restarts, swaps, close.
func (e *Exec) manage(ctx context.Context, cur *child) {
	defer e.books.Finished()
	children := map[*child]bool{cur: true}
	e.pid.Store(int64(cur.p.Pid()))
	curCfg := cur.cfg
	gen := 1
	lim := supervise.NewLimiter(e.cfg.Restart)
	var (
		restartTimer *time.Timer
		restartC     <-chan time.Time
		closing      bool
		failed       bool
		forceC       <-chan struct{}
		ctxDone      = ctx.Done()
	)
	beginClose := func(force <-chan struct{}) {
		closing = true
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		if restartTimer != nil {
			restartTimer.Stop()
			restartC = nil
		}
		cur = nil
		e.pid.Store(0)
		for c := range children {
			c.retire(c.cfg.Grace)
		}
		forceC = force
	}
	fail := func(err error) {
		failed = true
		e.books.Fail(err)
		e.log.Error("exec handler failed", "error", err)
		beginClose(nil)
	}
	for !((closing || failed) && len(children) == 0) {
		select {
		case c := <-e.exits:
			delete(children, c)
			status := supervise.Describe(c.p.Wait())
			if c != cur || closing {
				e.log.Debug("exec handler exited", "argv", c.cfg.Argv, "pid", c.p.Pid(), "status", status)
				continue
			}
			cur = nil
			e.pid.Store(0)
			e.log.Warn("exec handler exited unexpectedly", "argv", c.cfg.Argv, "pid", c.p.Pid(), "status", status)
			restart, delay := lim.Next(true, time.Now())
			if !restart {
				r := e.cfg.Restart
				if lim.Exhausted() {
					fail(fmt.Errorf("exec handler %s exited (%s) after %d restarts within %v: %w",
						c.cfg.Argv[0], status, r.MaxRestarts, r.Within, handler.ErrGiveUp))
				} else {
					fail(fmt.Errorf("exec handler %s exited (%s) and the node's restart policy is %q: %w",
						c.cfg.Argv[0], status, r.Policy, handler.ErrGiveUp))
				}
				continue
			}
			restartTimer = time.NewTimer(delay)
			restartC = restartTimer.C
		case <-restartC:
			restartC = nil
			gen++
			c, err := e.startChild(curCfg, gen)
			if err != nil {
				fail(fmt.Errorf("restarting exec handler: %w: %w", err, handler.ErrGiveUp))
				continue
			}
			cur = c
			children[c] = true
			e.pid.Store(int64(c.p.Pid()))
			e.restarts.Add(1)
			e.log.Info("exec handler restarted", "argv", curCfg.Argv, "pid", c.p.Pid())
		case req := <-e.swaps:
			if closing || failed {
				req.reply <- e.books.ClosedErr()
				continue
			}
			gen++
			c, err := e.startChild(req.cfg, gen)
			if err != nil {
				req.reply <- err
				continue
			}
			if cur != nil {
				cur.retire(cur.cfg.Grace)
			}
			if restartC != nil {
				restartTimer.Stop()
				restartC = nil
			}
			cur, curCfg = c, req.cfg
			children[c] = true
			e.pid.Store(int64(c.p.Pid()))
			e.nswaps.Add(1)
			e.log.Info("exec handler swapped", "argv", req.cfg.Argv, "pid", c.p.Pid())
			req.reply <- nil
		case cctx := <-e.closing:
			if !closing {
				beginClose(cctx.Done())
			} else {
				forceC = cctx.Done()
			}
		case <-ctxDone:
			ctxDone = nil
			e.books.Fail(fmt.Errorf("%w: %v", ErrClosed, context.Cause(ctx)))
			if !closing {
				beginClose(nil)
			}
		case <-forceC:
			forceC = nil
			for c := range children {
				c.p.Kill()
			}
		}
	}
	// No child is left to take what is still queued.
	for {
		select {
		case it := <-e.in:
			e.answer(it, handler.Result{Err: e.books.ClosedErr()})
		default:
			return
		}
	}
}
