// Package pluginhost runs a node's handler as a plugin: an executable that
// speaks the ZeroMQ plugin protocol (ztopo-plugin/1, see package plugins)
// over a private ipc endpoint.
//
// A Host binds one ROUTER per plugin generation, starts the executable,
// waits for its READY and then passes messages as REQ/REP/ERR with many in
// flight. It restarts a plugin that crashes or hangs under the node's
// restart policy, reports every message a plugin held when it went away
// (one log line per event, with a count), and swaps
// to a new executable without losing a message: the new plugin takes new
// messages as soon as it is READY while the old one answers what it holds
// and is then stopped.
//
// Concurrency: one loop goroutine owns every socket. Submit, Handle, Swap
// and Close may be called from any goroutine; they hand their work to the
// loop through an inbox and a wake-up socket.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/inbox"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/internal/asynchost"
	"github.com/ztopo/ztopo/spec"
)

var (
	// ErrHandshake wraps every error of a plugin that could not be started
	// or did not complete the READY handshake (not executable, exited
	// early, no READY in time, another protocol version). One that could
	// not be started at all is also handler.ErrPermanent: the node fails
	// at once; the others fail an attempt of the node, under its restart
	// policy.
	ErrHandshake = errors.New("plugin handshake failed")
	// ErrLost is wrapped by the Result of a message the plugin held when
	// it exited, was killed or was stopped.
	ErrLost = errors.New("message lost by the plugin")
	// ErrTimeout is the Result error of a message not answered within
	// Config.Timeout.
	ErrTimeout = errors.New("plugin did not answer in time")
	// ErrClosed is returned by Submit and Handle after Close.
	ErrClosed = errors.New("plugin host closed")
)

// PluginError is the Result error for an ERR answer: the plugin's text.
type PluginError struct{ Text string }

func (e *PluginError) Error() string { return "plugin error: " + e.Text }

// DefaultMaxMessage is the largest message a plugin may send ztopo, in
// bytes, unless Config.MaxMessage says otherwise: libzmq drops the
// connection of a plugin that sends a larger one (it is never read into
// memory), and the host kills and restarts that plugin.
const DefaultMaxMessage = 64 << 20

// Config describes a plugin and how to host it.
type Config struct {
	Path     string   // absolute path of the executable
	Args     []string // arguments after argv[0]
	Env      []string // extra environment, KEY=value, on top of ztopo's
	Node     string   // node instance name: ZTOPO_NODE, log lines, endpoint names
	Topology string   // ZTOPO_TOPOLOGY
	// Dir is a private directory (created with mode 0700 when missing)
	// for the ipc endpoints; empty: a fresh temporary one. Endpoint paths
	// must fit in 107 bytes.
	Dir string
	// Timeout bounds each request (default 10s). A request that times out
	// while the plugin has answered nothing since it was sent means the
	// plugin hangs: it is killed and restarted.
	Timeout time.Duration
	// Inflight is how many messages may be unanswered at once (default
	// 1024); Submit blocks beyond.
	Inflight int
	// ReadyTimeout bounds the wait for READY (default 10s).
	ReadyTimeout time.Duration
	// Grace is how long a plugin has to exit after STOP before it is
	// killed (default 2s).
	Grace time.Duration
	// WatchFile swaps to the executable's new content whenever it
	// changes on disk (replace it by rename: Linux refuses writes into a
	// running executable).
	WatchFile bool
	// MaxMessage bounds what the plugin may send, in bytes (default
	// DefaultMaxMessage): the ROUTER's ZMQ_MAXMSGSIZE.
	MaxMessage int64
	// Restart is the node's restart policy, applied to the plugin: one
	// that crashes or hangs is restarted as it allows (the zero value:
	// spec.DefaultRestart); beyond, the host fails with handler.ErrGiveUp.
	Restart spec.Restart
	Logger  hclog.Logger
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Inflight <= 0 {
		c.Inflight = 1024
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 2 * time.Second
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.Restart.Policy == "" {
		c.Restart = spec.DefaultRestart
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Node == "" {
		c.Node = "plugin"
	}
	return c
}

// Stats are a host's counters since New.
type Stats struct {
	Restarts int64 // plugins restarted after a crash or a hang
	Swaps    int64 // completed swaps to a new executable
	Lost     int64 // messages reported lost (ErrLost)
	TimedOut int64 // messages reported with ErrTimeout
	Late     int64 // answers that came after their request timed out
}

// Host hosts one plugin (two during a swap) for one node instance.
type Host struct {
	cfg  Config
	zctx *zmq4.Context
	log  hclog.Logger
	// tmpDir is removed on close when Dir was not given.
	tmpDir string

	events *inbox.Inbox[event]
	// books: slots, up to Inflight Results for the node to collect (the
	// loop never blocks on them), Err (why messages are no longer taken:
	// closed or failed); Done once the loop has exited: no socket, no
	// child left.
	books     *asynchost.Books
	closeOnce sync.Once

	watch asynchost.Watch

	pid                                   atomic.Int64
	restarts, swaps, lost, timedOut, late atomic.Int64
	swapCfgMu                             sync.Mutex
	lastCfg                               Config // the config of the plugin taking new messages
}

var (
	_ handler.Handler = (*Host)(nil)
	_ handler.Async   = (*Host)(nil)
	_ handler.Closer  = (*Host)(nil)
)

// New starts the plugin and returns once it is READY. The host lives until
// Close or until ctx is done. An error that wraps ErrHandshake means the
// plugin cannot work as configured.
func New(ctx context.Context, zctx *zmq4.Context, cfg Config) (*Host, error) {
	if zctx == nil {
		return nil, errors.New("pluginhost: nil zeromq context")
	}
	if !filepath.IsAbs(cfg.Path) {
		return nil, handler.Permanent(fmt.Errorf("pluginhost: plugin path %q is not absolute", cfg.Path))
	}
	cfg = cfg.withDefaults()
	h := &Host{
		cfg:     cfg,
		zctx:    zctx,
		log:     cfg.Logger,
		lastCfg: cfg,
	}
	if h.cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "ztopo-plugin")
		if err != nil {
			return nil, fmt.Errorf("pluginhost: %w", err)
		}
		h.cfg.Dir, h.tmpDir = dir, dir
	} else if err := os.MkdirAll(h.cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pluginhost: %w", err)
	}
	// The longest endpoint this host can name, generation 99999.
	if p := endpointPath(h.cfg.Dir, h.cfg.Node, 99999); len(p) > maxIPCPath {
		h.removeTmp()
		return nil, handler.Permanent(fmt.Errorf("pluginhost: ipc path %s is %d bytes, the limit is %d: use a shorter Dir", p, len(p), maxIPCPath))
	}

	events, err := inbox.New[event]()
	if err != nil {
		h.removeTmp()
		return nil, fmt.Errorf("pluginhost: %w", err)
	}
	h.events = events
	h.books = asynchost.New("pluginhost", cfg.Inflight, ErrClosed, nil, h.hand)
	initDone := make(chan error, 1)
	go h.run(ctx, initDone)
	if err := <-initDone; err != nil {
		<-h.books.Done()
		h.books.CloseResults()
		h.removeTmp()
		return nil, err
	}
	if cfg.WatchFile {
		h.watchFile(cfg.Path)
	}
	return h, nil
}

// maxIPCPath is the longest ipc path libzmq accepts (sun_path less its NUL).
const maxIPCPath = 107

func endpointPath(dir, node string, gen int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.plugin.%d.sock", node, gen))
}

// Handle submits m and waits for its answer: the synchronous form, for
// simple callers and tests. It may be called from many goroutines.
func (h *Host) Handle(ctx context.Context, m handler.Msg) ([][]byte, error) {
	return h.books.Handle(ctx, m)
}

// Submit hands m over under tag; its Result comes on Results. It blocks
// while Config.Inflight messages are unanswered, until ctx is done.
// Back-pressure counts unanswered messages only, not Results waiting to be
// read: drain Results from the same select loop that calls Submit.
func (h *Host) Submit(ctx context.Context, m handler.Msg, tag uint64) error {
	return h.books.Submit(ctx, m, tag)
}

// hand gives an admitted message to the loop.
func (h *Host) hand(tag uint64, frames [][]byte, reply chan handler.Result) bool {
	return h.events.Put(event{kind: evCall, call: &call{tag: tag, frames: frames, reply: reply}})
}

// Results delivers exactly one Result per Submit, in any order. It is
// never closed; after Close nothing more arrives.
func (h *Host) Results() <-chan handler.Result { return h.books.Results() }

// Pending is how many submitted messages have not been read from Results.
// It may count a Result for a moment after it was read, never less than
// those unread: "Pending() == 0 after draining Results" means all is in.
func (h *Host) Pending() int { return h.books.Pending() }

// OnResult implements handler.Notifier.
func (h *Host) OnResult(f func()) { h.books.OnResult(f) }

// Err is nil while the host takes messages; then why it does not: an
// error wrapping ErrClosed, or the failure (wrapping handler.ErrFatal or
// ErrHandshake) after which the node must restart or fail.
func (h *Host) Err() error { return h.books.Err() }

// Done is closed once the host has stopped: after Close, or after it
// failed (see Err) and its plugins are gone.
func (h *Host) Done() <-chan struct{} { return h.books.Done() }

// PID is the process id of the plugin that takes new messages, 0 while
// none does.
func (h *Host) PID() int { return int(h.pid.Load()) }

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	return Stats{
		Restarts: h.restarts.Load(),
		Swaps:    h.swaps.Load(),
		Lost:     h.lost.Load(),
		TimedOut: h.timedOut.Load(),
		Late:     h.late.Load(),
	}
}

// Swap starts the plugin cfg describes, waits for its READY, routes new
// messages to it, and lets the current plugin answer what it holds before
// it is stopped; nothing is lost. Path, Args, Env, ReadyTimeout, Grace and
// WatchFile come from cfg; Node, Topology, Dir, Timeout, Inflight and
// Logger stay as given to New. On error the current plugin stays.
func (h *Host) Swap(cfg Config) error {
	if !filepath.IsAbs(cfg.Path) {
		return fmt.Errorf("pluginhost: plugin path %q is not absolute", cfg.Path)
	}
	if err := h.swap(cfg); err != nil {
		return err
	}
	h.watch.Reset(cfg.Path, cfg.WatchFile, func() { h.watchFile(cfg.Path) })
	return nil
}

func (h *Host) swap(cfg Config) error {
	base := h.cfg
	base.Path, base.Args, base.Env = cfg.Path, cfg.Args, cfg.Env
	base.WatchFile = cfg.WatchFile
	if cfg.ReadyTimeout > 0 {
		base.ReadyTimeout = cfg.ReadyTimeout
	}
	if cfg.Grace > 0 {
		base.Grace = cfg.Grace
	}
	reply := make(chan error, 1)
	if !h.events.Put(event{kind: evSwap, cfg: base, reply: reply}) {
		return ErrClosed
	}
	select {
	case err := <-reply:
		if err == nil {
			h.swapCfgMu.Lock()
			h.lastCfg = base
			h.swapCfgMu.Unlock()
		}
		return err
	case <-h.books.Done():
		return h.books.ClosedErr()
	}
}

// watchFile starts the watch of the plugin's executable; without it, a
// warning says that swaps on change are off.
func (h *Host) watchFile(path string) {
	err := h.watch.Start(path, h.log, func() {
		h.swapCfgMu.Lock()
		cfg := h.lastCfg
		h.swapCfgMu.Unlock()
		if cfg.Path != path {
			return
		}
		h.log.Info("plugin file changed, swapping", "path", path)
		if err := h.swap(cfg); err != nil {
			h.log.Error("plugin swap failed, the running plugin stays", "path", path, "error", err)
		}
	})
	if err != nil {
		h.log.Warn("cannot watch plugin file, swaps on change disabled", "path", path, "error", err)
	}
}

// Close sends STOP to the plugins, gives them Config.Grace to answer what
// they hold and exit, then kills them; messages still unanswered are
// reported lost on Results (delivered only while someone reads). When ctx
// is done first, the plugins are killed at once. Close returns once no
// plugin process is left.
func (h *Host) Close(ctx context.Context) error {
	h.closeOnce.Do(func() {
		h.books.Fail(ErrClosed)
		h.watch.Stop()
		h.events.Put(event{kind: evClose})
	})
	select {
	case <-h.books.Done():
	case <-ctx.Done():
		h.events.Put(event{kind: evKill})
		<-h.books.Done()
	}
	h.books.CloseResults()
	h.removeTmp()
	return nil
}

func (h *Host) removeTmp() {
	if h.tmpDir != "" {
		os.RemoveAll(h.tmpDir)
	}
}
