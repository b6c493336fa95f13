// Package exechandler runs a node's handler as a long-lived child process
// speaking the `lines` codec: the last frame of each message is written to
// its stdin as one line, and each line it writes to stdout is the result
// for the oldest message not answered yet (strictly 1:1, in order). The
// result replaces the last frame; other frames (a topic) are kept.
//
// The child's stderr goes to the node's log. A child that exits, that holds
// messages and answers none within Config.Timeout, or that writes a line
// longer than Config.MaxLine is killed (when alive) and restarted under the
// node's restart policy; the lines it held are reported lost, in one log
// line with their count, never silently dropped. A configured Drop line
// drops its message (a filter). A payload containing a newline cannot be
// written without desynchronising the stream: that message gets an error
// Result and nothing is written.
//
// Concurrency: Submit, Handle, Swap and Close may be called from any
// goroutine. Per child, one goroutine writes stdin and one reads stdout; a
// manager goroutine starts, swaps and restarts children.
package exechandler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/internal/asynchost"
	"github.com/ztopo/ztopo/spec"
)

var (
	// ErrStart wraps the error of a child that could not be started (no
	// such program, not executable): restarting will not help.
	ErrStart = errors.New("exec handler cannot start")
	// ErrNewline is the Result error of a message whose payload contains
	// a newline: the lines codec cannot carry it.
	ErrNewline = errors.New("payload contains a newline, which the lines codec cannot carry")
	// ErrLost is wrapped by the Result of a message written to a child
	// that exited before it answered.
	ErrLost = errors.New("message lost by the exec handler")
	// ErrClosed is returned by Submit and Handle after Close.
	ErrClosed = errors.New("exec handler closed")
)

// termGrace is how long a child has after SIGTERM before SIGKILL.
const termGrace = 500 * time.Millisecond

// Defaults of the `config` keys of an exec node (see ConfigFor).
const (
	// DefaultTimeout is how long a child that holds messages may go
	// without answering any before it is killed and restarted.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxLine is the longest output line taken as an answer; a
	// longer one (or output that never ends its line) kills the child.
	DefaultMaxLine = 1 << 20
	// bufferWarnAfter is how long a child may hold messages without
	// having answered a single one before ztopo asks whether it buffers.
	bufferWarnAfter = 3 * time.Second
	// maxQuote bounds the child output quoted in a log line.
	maxQuote = 200
)

// Config describes the child.
type Config struct {
	// Argv is the program and its arguments; a program without a slash
	// is looked up in PATH.
	Argv []string
	Dir  string   // working directory; empty: ztopo's
	Env  []string // extra environment, KEY=value, on top of ztopo's
	Node string   // node instance, for logs and ZTOPO_NODE
	// Inflight is how many messages may be written and not yet answered
	// (default 256); Submit blocks beyond.
	Inflight int
	// Grace is how long a child has to answer what it holds and exit
	// after its stdin is closed (default 2s); then SIGTERM, then SIGKILL.
	Grace time.Duration
	// Timeout (default DefaultTimeout): a child that holds messages and
	// has answered none of them for this long is killed and restarted;
	// what it held is reported lost.
	Timeout time.Duration
	// MaxLine (default DefaultMaxLine) bounds an output line, newline
	// excluded: a child that writes a longer one is killed and restarted,
	// so that ztopo's memory stays bounded whatever the child writes.
	MaxLine int
	// Drop, when DropSet, is the output line that drops its message:
	// nothing is sent on for it (a filter). Without DropSet every line,
	// the empty one included, is a result.
	Drop    string
	DropSet bool
	// Restart is the node's restart policy, applied to the child: a
	// child that exits or hangs is restarted as it allows (the zero
	// value: spec.DefaultRestart); beyond, the handler fails with
	// handler.ErrGiveUp (limit reached) or handler.ErrFatal (policy).
	Restart spec.Restart
	// WatchFile swaps to a new child whenever the script's content
	// changes: WatchPath, or else the first argument naming an existing
	// file (`python3 upper.py`), or else argv[0] when it is a path.
	WatchFile bool
	WatchPath string
	Logger    hclog.Logger
}

func (c Config) withDefaults() Config {
	if c.Inflight <= 0 {
		c.Inflight = 256
	}
	if c.Grace <= 0 {
		c.Grace = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxLine <= 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.Restart.Policy == "" {
		c.Restart = spec.DefaultRestart
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// watchPath is the file whose changes swap the child, or "".
func (c Config) watchPath() string {
	if c.WatchPath != "" {
		return c.abs(c.WatchPath)
	}
	if len(c.Argv) == 0 {
		return ""
	}
	// An interpreter's script (`/usr/bin/python3 upper.py`) is what
	// changes, not the interpreter.
	for _, a := range c.Argv[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		p := c.abs(a)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if strings.Contains(c.Argv[0], "/") {
		return c.abs(c.Argv[0])
	}
	return ""
}

func (c Config) abs(p string) string {
	if filepath.IsAbs(p) || c.Dir == "" {
		p, _ = filepath.Abs(p)
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Stats are an Exec's counters since New.
type Stats struct {
	Restarts int64 // children restarted after they exited
	Swaps    int64 // swaps to a new script or argv
	Lost     int64 // messages reported lost (ErrLost)
	Extra    int64 // output lines that answered no message (dropped)
	Dropped  int64 // messages dropped by the Drop line
	Hangs    int64 // children killed for holding messages past Timeout
	TooLong  int64 // children killed for a line longer than MaxLine
}

// Exec is an exec handler for one node instance.
type Exec struct {
	cfg Config
	log hclog.Logger

	mu     sync.Mutex // guards closed with the sends into in
	closed bool
	in     chan *item // messages for whichever child writes next

	// books: slots, Results, Err; Done once the manager has exited and
	// no child is left.
	books *asynchost.Books

	swaps   chan swapReq
	exits   chan *child
	closing chan context.Context

	watch   asynchost.Watch
	cfgMu   sync.Mutex
	lastCfg Config

	pid                           atomic.Int64
	restarts, nswaps, lost, extra atomic.Int64
	dropped, hangs, tooLong       atomic.Int64
	bufWarned                     atomic.Bool
}

var (
	_ handler.Handler = (*Exec)(nil)
	_ handler.Async   = (*Exec)(nil)
	_ handler.Closer  = (*Exec)(nil)
)

type item struct {
	tag    uint64
	frames [][]byte
	reply  chan handler.Result // Handle's; nil: Results
}

type swapReq struct {
	cfg   Config
	reply chan error
}

// New starts the child. It lives until Close or until ctx is done.
func New(ctx context.Context, cfg Config) (*Exec, error) {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, handler.Permanent(fmt.Errorf("%w: empty argv", ErrStart))
	}
	cfg = cfg.withDefaults()
	e := &Exec{
		cfg:     cfg,
		log:     cfg.Logger,
		in:      make(chan *item, cfg.Inflight),
		swaps:   make(chan swapReq),
		exits:   make(chan *child, 16),
		closing: make(chan context.Context, 1),
		lastCfg: cfg,
	}
	e.books = asynchost.New("exechandler", cfg.Inflight, ErrClosed, rejectNewline, e.hand)
	first, err := e.startChild(cfg, 1)
	if err != nil {
		e.books.CloseResults()
		return nil, err
	}
	go e.manage(ctx, first)
	if cfg.WatchFile {
		e.watchScript(cfg)
	}
	return e, nil
}

// Handle submits m and waits for its answer: the synchronous form.
func (e *Exec) Handle(ctx context.Context, m handler.Msg) ([][]byte, error) {
	return e.books.Handle(ctx, m)
}

// Submit hands m over under tag; its Result comes on Results. It blocks
// while Config.Inflight messages are unanswered, until ctx is done.
func (e *Exec) Submit(ctx context.Context, m handler.Msg, tag uint64) error {
	return e.books.Submit(ctx, m, tag)
}

// hand queues an admitted message for whichever child writes next.
func (e *Exec) hand(tag uint64, frames [][]byte, reply chan handler.Result) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.in <- &item{tag: tag, frames: frames, reply: reply} // never blocks: a slot was free, so is room in in
	return true
}

// rejectNewline refuses a payload the lines codec cannot carry: nothing
// of it is written.
func rejectNewline(m handler.Msg) error {
	if bytes.IndexByte(m.Frames[len(m.Frames)-1], '\n') >= 0 {
		return ErrNewline
	}
	return nil
}

// Results delivers exactly one Result per Submit. It is never closed.
func (e *Exec) Results() <-chan handler.Result { return e.books.Results() }

// Pending is how many submitted messages have not been read from Results;
// it may count one for a moment after it was read, never less.
func (e *Exec) Pending() int { return e.books.Pending() }

// OnResult implements handler.Notifier.
func (e *Exec) OnResult(f func()) { e.books.OnResult(f) }

// Err is nil while the handler takes messages; then ErrClosed or the
// failure (wrapping handler.ErrFatal) after which the node must restart.
func (e *Exec) Err() error { return e.books.Err() }

// Done is closed once no child is left: after Close, or after a failure.
func (e *Exec) Done() <-chan struct{} { return e.books.Done() }

// PID is the process id of the child taking new messages, 0 when none.
func (e *Exec) PID() int { return int(e.pid.Load()) }

// Stats returns the handler's counters.
func (e *Exec) Stats() Stats {
	return Stats{
		Restarts: e.restarts.Load(), Swaps: e.nswaps.Load(), Lost: e.lost.Load(), Extra: e.extra.Load(),
		Dropped: e.dropped.Load(), Hangs: e.hangs.Load(), TooLong: e.tooLong.Load(),
	}
}

// Swap starts the child cfg describes (Argv, Dir, Env, Grace, WatchFile,
// WatchPath; the rest stays as given to New), routes new messages to it,
// and lets the current child answer what it holds before it is stopped.
// On error the current child stays.
func (e *Exec) Swap(cfg Config) error {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return fmt.Errorf("%w: empty argv", ErrStart)
	}
	base := e.cfg
	base.Argv, base.Dir, base.Env = cfg.Argv, cfg.Dir, cfg.Env
	base.WatchFile, base.WatchPath = cfg.WatchFile, cfg.WatchPath
	if cfg.Grace > 0 {
		base.Grace = cfg.Grace
	}
	if err := e.swap(base); err != nil {
		return err
	}
	e.watch.Reset(base.watchPath(), base.WatchFile, func() { e.watchScript(base) })
	return nil
}

func (e *Exec) swap(cfg Config) error {
	reply := make(chan error, 1)
	select {
	case e.swaps <- swapReq{cfg: cfg, reply: reply}:
	case <-e.books.Done():
		return e.books.ClosedErr()
	}
	if err := <-reply; err != nil {
		return err
	}
	e.cfgMu.Lock()
	e.lastCfg = cfg
	e.cfgMu.Unlock()
	return nil
}

func (e *Exec) watchScript(cfg Config) {
	path := cfg.watchPath()
	if path == "" {
		e.log.Debug("exec handler has no script file to watch", "argv", cfg.Argv)
		return
	}
	err := e.watch.Start(path, e.log, func() {
		e.cfgMu.Lock()
		cur := e.lastCfg
		e.cfgMu.Unlock()
		e.log.Info("exec script changed, swapping", "path", path)
		if err := e.swap(cur); err != nil {
			e.log.Error("exec swap failed, the running child stays", "path", path, "error", err)
		}
	})
	if err != nil {
		e.log.Warn("cannot watch exec script, swaps on change disabled", "path", path, "error", err)
	}
}

// Close closes the children's stdin, gives them Config.Grace to answer
// what they hold and exit, then SIGTERM and SIGKILL. Messages unanswered
// are reported lost (on Results, delivered while someone reads). When ctx
// is done first the children are killed at once. Close returns once no
// child is left.
func (e *Exec) Close(ctx context.Context) error {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	e.mu.Unlock()
	e.watch.Stop()
	if first {
		e.books.Fail(ErrClosed)
		e.closing <- ctx
	}
	<-e.books.Done()
	e.books.CloseResults()
	return nil
}

// answer gives back the slot of it and delivers its Result (to Handle's reply
// channel or to Results); it never blocks.
func (e *Exec) answer(it *item, r handler.Result) { e.books.Answer(it.tag, it.reply, r) }

// isClosed reports whether Close has begun (no Submit is taken any more).
func (e *Exec) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}
