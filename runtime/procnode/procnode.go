// Package procnode runs the node instances that live in a child process:
// `run: process` nodes, whose handler (builtin, exec or plugin) runs in a
// re-executed ztopo (`ztopo _node`), and `command` nodes, external programs
// that own their sockets.
//
// The engine drives a Runner the way it drives a goroutine node.Node: Run
// blocks and returns nil when the node completed, ctx's error when it was
// stopped (cancelling ctx: SIGTERM to the child's process group, up to Grace
// for it to end, then SIGKILL), and any other error — an *ExitError — when
// the child failed. Children die with ztopo, even when it is SIGKILLed
// (supervise.Process sets the parent-death signal).
//
// Process nodes: the child reads its resolved node from the environment
// (EnvSpec, JSON), opens its own ZeroMQ context and runs node.Run on it. It
// talks back on an event pipe, its file descriptor 3: one JSON object a
// line, `{"event":"running"}` once past the sync barrier,
// `{"event":"stats","sockets":{...}}` every StatsInterval and at the end,
// then `{"event":"completed"}` or `{"event":"failed","error":"..."}`. Its log
// entries travel on the same pipe as hclog JSON and are logged again by the
// parent's logger, at their level: the child's lines look like every other
// line of ztopo, whatever --log-format says. Whatever the child writes to
// stdout or stderr (a panic, a stray print) is logged line by line too.
//
// Command nodes: the program gets ztopo's environment plus
// ZTOPO_<SOCKET>_BIND and ZTOPO_<SOCKET>_CONNECT (the socket name upper-cased,
// every other character than a letter or digit made `_`; comma-separated
// endpoints; only set when there are some), ZTOPO_NODE (the instance),
// ZTOPO_REPLICA, ZTOPO_TOPOLOGY and, when the node has a config, ZTOPO_CONFIG
// (the config as JSON). It runs in the topology file's directory. Exit
// status 0 means the node completed.
package procnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/supervise"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// Environment and file descriptors of the `ztopo _node` protocol.
const (
	// EnvSpec holds the child's node spec (JSON). Its presence is what makes
	// a process a node child.
	EnvSpec = "ZTOPO_NODE_SPEC"
	// EnvLogLevel is the parent's log level, so that the child does not
	// produce entries the parent would drop.
	EnvLogLevel = "ZTOPO_LOG_LEVEL"
	// EnvHold is "1" when the child must keep its sockets open after its
	// node completed, until it is stopped (Config.HoldOnComplete).
	EnvHold = "ZTOPO_NODE_HOLD"
	// EnvNoWatch is "1" when the child's exec and plugin handlers must not
	// watch their files (Config.NoWatch).
	EnvNoWatch = "ZTOPO_NODE_NO_WATCH"
	// ChildVerb is the hidden ztopo verb that runs a node child.
	ChildVerb = "_node"
	// eventsFD is the child's end of the event pipe (the first ExtraFile).
	eventsFD = 3
)

// StatsInterval is how often a process node reports its counters.
const StatsInterval = time.Second

// pipeDrain bounds how long the event pipe of an exited child is still read
// (a stray grandchild could hold it open).
const pipeDrain = 2 * time.Second

// Config describes one node instance run as a child process.
type Config struct {
	// Node is the resolved instance: Run == spec.RunProcess, or
	// Handler.Kind == spec.HandlerCommand.
	Node     *spec.Node
	Topology *spec.Topology
	// Self is the ztopo executable (os.Executable()), re-executed as
	// `Self _node` for process nodes; command nodes do not need it.
	Self string
	// Logger is named for the instance; the child's output and log entries
	// go here.
	Logger hclog.Logger
	// Grace is the SIGTERM-to-SIGKILL bound when Run's context is
	// cancelled; zero means supervise.DefaultStopGrace.
	Grace time.Duration
	// Drain is the child node's node.Config.Drain (zero: node.DefaultDrain).
	Drain time.Duration
	// OnRunning, if set, is called once per Run when the node runs: for a
	// process node when the child reports it passed its sync barrier, for
	// a command right after it started. It may be called from another
	// goroutine than Run's, and must not block.
	OnRunning func()
	// OnStall, if set, is called when the child stalls (stalled true, why
	// says how it was seen) and when it runs again (false), see StallAfter;
	// from another goroutine than Run's, must not block. A Run that ends
	// during a stall calls it with false before it returns.
	OnStall func(stalled bool, why string)
	// OnCompleted, if set, is called once per Run when a process node's
	// handler completed; from another goroutine than Run's, must not block.
	OnCompleted func()
	// HoldOnComplete keeps a completed process node's child, and so its
	// sockets, alive until ctx is cancelled: closing a socket does not
	// reliably deliver what is still queued in libzmq (issue 4660 for ipc),
	// as node.Config.HoldOnComplete says. Run then returns nil when stopped.
	HoldOnComplete bool
	// NoWatch tells the child that its exec and plugin handlers must not
	// watch their files for changes (`ztopo up --no-watch`).
	NoWatch bool
	// Env is the environment the child's is built from; nil means ztopo's
	// own (os.Environ()). ZTOPO_* variables ztopo sets are replaced, never
	// inherited.
	Env []string
}

// Runner runs one node instance as a child process. Run may be called again
// after it returned (a restart); PID and Stats are safe from any goroutine.
type Runner struct {
	cfg     Config
	log     hclog.Logger
	command bool
	busy    atomic.Bool

	mu   sync.Mutex
	pid  int
	base map[string]zsock.StatsSnapshot // counters of the finished runs
	cur  map[string]zsock.StatsSnapshot // last report of the current run
	last map[string]zsock.StatsSnapshot // the last report of the run that ended last
}

// New returns a Runner for cfg.Node.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	r := &Runner{
		cfg:     cfg,
		log:     cfg.Logger,
		command: cfg.Node.Handler.Kind == spec.HandlerCommand,
		base:    map[string]zsock.StatsSnapshot{},
	}
	if !r.command {
		for _, s := range cfg.Node.Sockets {
			r.base[s.Name] = zsock.StatsSnapshot{}
		}
	}
	return r
}

// PID is the running child's process id (also its process group), 0 when
// no child runs.
func (r *Runner) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

// Stats returns the counters of each socket of a process node, summed over
// every Run of this Runner, as last reported by the child (at most
// StatsInterval old while it runs, exact once Run has returned). A command
// node's sockets are the program's own: Stats returns nil for it.
func (r *Runner) Stats() map[string]zsock.StatsSnapshot {
	if r.command {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]zsock.StatsSnapshot, len(r.base))
	for name, b := range r.base {
		out[name] = addSnap(b, r.cur[name])
	}
	return out
}

func addSnap(a, b zsock.StatsSnapshot) zsock.StatsSnapshot {
	return zsock.StatsSnapshot{
		MsgsIn:       a.MsgsIn + b.MsgsIn,
		MsgsOut:      a.MsgsOut + b.MsgsOut,
		BytesIn:      a.BytesIn + b.BytesIn,
		BytesOut:     a.BytesOut + b.BytesOut,
		SendErrors:   a.SendErrors + b.SendErrors,
		AuthFailures: a.AuthFailures + b.AuthFailures,
	}
}

// ExitError is Run's error when the child ended by itself without
// completing: a non-zero exit status, a signal, or — for a process node —
// exit status 0 without having completed (someone else stopped it).
type ExitError struct {
	Node  string
	Pid   int
	State *os.ProcessState // nil only if waiting for the child failed
	// Reason is the child's own account of its failure (process nodes), or
	// why an exit was not a completion.
	Reason string
	Err    error // the wait error when State is nil
}

func (e *ExitError) Error() string {
	var s string
	if e.State != nil {
		s = fmt.Sprintf("node %s: process %d exited: %s", e.Node, e.Pid, e.State)
	} else {
		s = fmt.Sprintf("node %s: process %d: %v", e.Node, e.Pid, e.Err)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns the wait error, if any.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the child's exit status, or -1 if a signal ended it.
func (e *ExitError) ExitCode() int {
	if e.State == nil {
		return -1
	}
	return e.State.ExitCode()
}

// Run starts the child and waits for it: nil when the node completed,
// ctx.Err() when ctx was cancelled and the child stopped (gracefully or
// killed after Grace), else the failure (usually an *ExitError). Run calls
// must not overlap.
func (r *Runner) Run(ctx context.Context) error {
	if !r.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("node %s: Run called while running", r.cfg.Node.Name)
	}
	defer r.busy.Store(false)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.ensureRuntimeDir(); err != nil {
		return fmt.Errorf("node %s: %w", r.cfg.Node.Name, err)
	}
	if r.command {
		return r.runCommand(ctx)
	}
	return r.runProcess(ctx)
}

// ensureRuntimeDir creates the private runtime directory before a child
// binds or connects an ipc endpoint in it: libzmq does not create
// directories, and the child may be the first of the topology to get there.
func (r *Runner) ensureRuntimeDir() error {
	dir := r.cfg.Topology.RuntimeDir
	if dir == "" {
		return nil
	}
	n := r.cfg.Node
	var eps []string
	for _, s := range n.Sockets {
		eps = append(eps, s.Bind...)
		eps = append(eps, s.Connect...)
	}
	if n.Sync != nil {
		eps = append(eps, n.Sync.Bind, n.Sync.Connect)
	}
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	for _, ep := range eps {
		if p, ok := strings.CutPrefix(ep, "ipc://"); ok && strings.HasPrefix(filepath.Clean(p), prefix) {
			return control.EnsureRuntimeDir(dir)
		}
	}
	return nil
}

func (r *Runner) start(ctx context.Context, argv, env []string, extra []*os.File) (*supervise.Process, error) {
	p, err := supervise.Start(ctx, supervise.Config{
		Argv:       argv,
		Dir:        r.cfg.Topology.Dir,
		Env:        env,
		Logger:     r.log,
		Name:       r.cfg.Node.Name,
		StopGrace:  r.cfg.Grace,
		ExtraFiles: extra,
		// What a command (or a process node's exec handler) starts in a
		// session of its own ends with it too.
		Contain: true,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	r.mu.Lock()
	r.pid = p.Pid()
	r.mu.Unlock()
	return p, nil
}

// ended records that the child is gone and folds its counters into the
// totals.
func (r *Runner) ended() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pid = 0
	for name, c := range r.cur {
		r.base[name] = addSnap(r.base[name], c)
	}
	r.last, r.cur = r.cur, nil
}

// LastRun returns the counters of the run that ended last, as its child
// last reported them: exact when it ended by itself or was stopped, at
// most StatsInterval old when it was killed (a crash sends no final
// report). Nil for a command, or before any run ended.
func (r *Runner) LastRun() map[string]zsock.StatsSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *Runner) runCommand(ctx context.Context) error {
	env, err := commandEnv(r.baseEnv(), r.cfg.Topology, r.cfg.Node)
	if err != nil {
		return fmt.Errorf("node %s: %w", r.cfg.Node.Name, err)
	}
	p, err := r.start(ctx, r.cfg.Node.Handler.Argv, env, nil)
	if err != nil {
		return err
	}
	if r.cfg.OnRunning != nil {
		r.cfg.OnRunning()
	}
	watched := make(chan struct{})
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); r.watchStall(p.Pid(), nil, watched, p.Stopped) }()
	werr := p.Wait()
	close(watched)
	<-watchDone
	r.ended()
	if p.Stopped() && ctx.Err() != nil {
		return ctx.Err()
	}
	if werr == nil {
		return nil
	}
	return exitError(r.cfg.Node.Name, p, werr, "")
}

func exitError(node string, p *supervise.Process, werr error, reason string) error {
	e := &ExitError{Node: node, Pid: p.Pid(), State: p.ProcessState(), Reason: reason}
	var xe *exec.ExitError
	if !errors.As(werr, &xe) && werr != nil {
		e.State, e.Err = nil, werr
	}
	return e
}

func (r *Runner) runProcess(ctx context.Context) error {
	n := r.cfg.Node
	if r.cfg.Self == "" {
		return fmt.Errorf("node %s: no ztopo executable to run a process node with", n.Name)
	}
	js, err := encodeSpec(r.cfg.Topology, n, r.cfg.Drain)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	env := append(nodeEnv(r.baseEnv(), r.cfg.Topology, n),
		EnvSpec+"="+js,
		// hclog's own names, which the child reads back with
		// hclog.LevelFromString.
		EnvLogLevel+"="+r.log.GetLevel().String(),
	)
	if r.cfg.HoldOnComplete {
		env = append(env, EnvHold+"=1")
	}
	if r.cfg.NoWatch {
		env = append(env, EnvNoWatch+"=1")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("node %s: event pipe: %w", n.Name, err)
	}
	p, err := r.start(ctx, []string{r.cfg.Self, ChildVerb}, env, []*os.File{pw})
	// The child has its own copy; ours must go so that the reader sees EOF
	// when the child is gone.
	pw.Close()
	if err != nil {
		pr.Close()
		return err
	}

	var (
		mu        sync.Mutex
		completed bool
		reason    string
		ranOnce   bool
	)
	hb := &heartbeat{}
	sink := &eventSink{log: r.log, beat: hb.beat, onEvent: func(ev event) {
		switch ev.Event {
		case eventRunning:
			mu.Lock()
			first := !ranOnce
			ranOnce = true
			mu.Unlock()
			if first && r.cfg.OnRunning != nil {
				r.cfg.OnRunning()
			}
		case eventStats:
			cur := make(map[string]zsock.StatsSnapshot, len(ev.Sockets))
			for name, c := range ev.Sockets {
				cur[name] = c.snapshot()
			}
			r.mu.Lock()
			r.cur = cur
			r.mu.Unlock()
		case eventCompleted:
			mu.Lock()
			first := !completed
			completed = true
			mu.Unlock()
			if first && r.cfg.OnCompleted != nil {
				r.cfg.OnCompleted()
			}
		case eventFailed:
			mu.Lock()
			reason = ev.Error
			mu.Unlock()
		default:
			r.log.Debug("unknown event from the child", "event", ev.Event)
		}
	}}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sink.read(pr)
	}()

	watched := make(chan struct{})
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); r.watchStall(p.Pid(), hb, watched, p.Stopped) }()
	werr := p.Wait()
	close(watched)
	<-watchDone
	select {
	case <-readDone:
	case <-time.After(pipeDrain):
		r.log.Debug("event pipe still open after exit, closing it", "pid", p.Pid())
	}
	pr.Close() // unblocks the reader if a stray process holds the pipe
	<-readDone
	r.ended()

	mu.Lock()
	defer mu.Unlock()
	switch {
	case werr == nil && completed:
		// Also when stopped: a held child completed before it was asked to.
		return nil
	case p.Stopped() && ctx.Err() != nil:
		return ctx.Err()
	case werr == nil:
		return exitError(n.Name, p, nil, "the node stopped without completing (a signal from outside ztopo?)")
	}
	return exitError(n.Name, p, werr, reason)
}

func (r *Runner) baseEnv() []string {
	if r.cfg.Env != nil {
		return r.cfg.Env
	}
	return os.Environ()
}
