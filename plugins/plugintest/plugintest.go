// Package plugintest is a small ztopo plugin host for tests: it binds the
// ROUTER, starts a plugin (a program, or a Handler in this process), checks
// the READY handshake and sends requests, the way ztopo does.
//
// A Host belongs to the goroutine that created it: New, Start or
// RunInProcess, Call, Send, Recv and Close must all be called from it
// (its ZeroMQ socket is not safe for concurrent use).
package plugintest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/plugins"
)

// Host plays ztopo's part of the plugin protocol.
type Host struct {
	// Timeout bounds every wait: READY, each reply, the plugin's exit after
	// STOP. New sets it to 10s.
	Timeout time.Duration
	// Endpoint is the ipc endpoint the plugin connects to.
	Endpoint string

	zctx   *zmq4.Context
	router *zmq4.Socket
	dir    string
	peer   []byte
	seq    uint64

	cmd     *exec.Cmd
	exited  chan error // the program's or in-process Serve's result
	cancel  context.CancelFunc
	stopped bool // STOP was sent
}

// Reply is one answer from the plugin.
type Reply struct {
	ID     string
	Frames [][]byte // REP frames; nil for a dropped message or ERR
	Err    string   // ERR text
	IsErr  bool
}

// PluginError is the error Call returns for an ERR answer.
type PluginError struct{ Text string }

func (e *PluginError) Error() string { return "plugin error: " + e.Text }

// New binds a ROUTER on a fresh ipc endpoint in a private temporary
// directory.
func New() (*Host, error) {
	dir, err := os.MkdirTemp("", "ztp")
	if err != nil {
		return nil, err
	}
	h := &Host{Timeout: 10 * time.Second, dir: dir, Endpoint: "ipc://" + filepath.Join(dir, "plugin.sock")}
	if h.zctx, err = zmq4.NewContext(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if h.router, err = h.zctx.NewSocket(zmq4.ROUTER); err != nil {
		h.zctx.Term()
		os.RemoveAll(dir)
		return nil, err
	}
	_ = h.router.SetLinger(0)
	_ = h.router.SetRouterMandatory(1)
	if err := h.router.Bind(h.Endpoint); err != nil {
		h.router.Close()
		h.zctx.Term()
		os.RemoveAll(dir)
		return nil, err
	}
	return h, nil
}

// Start starts cmd as the plugin, with ZTOPO_PLUGIN_ENDPOINT (and, when
// cmd.Env does not set them, ZTOPO_NODE=test and ZTOPO_TOPOLOGY=test)
// added to its environment, and waits for its READY.
func (h *Host) Start(cmd *exec.Cmd) error {
	if h.exited != nil {
		return errors.New("plugintest: a plugin is already running")
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env[:len(env):len(env)],
		plugins.EnvEndpoint+"="+h.Endpoint, plugins.EnvNode+"=test", plugins.EnvTopology+"=test")
	if cmd.SysProcAttr == nil {
		// The plugin must not outlive a test binary that dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	h.cmd = cmd
	h.exited = make(chan error, 1)
	go func() { h.exited <- cmd.Wait() }()
	return h.handshake()
}

// RunInProcess serves h from a goroutine of this process, as a Go plugin
// would with plugins.Serve, and waits for its READY.
func (h *Host) RunInProcess(handler plugins.Handler, opts plugins.Options) error {
	if h.exited != nil {
		return errors.New("plugintest: a plugin is already running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.exited = make(chan error, 1)
	go func() { h.exited <- plugins.ServeEndpoint(ctx, h.Endpoint, handler, opts) }()
	return h.handshake()
}

func (h *Host) handshake() error {
	msg, err := h.recv()
	if err != nil {
		return fmt.Errorf("plugintest: waiting for READY: %w", err)
	}
	if len(msg) != 3 || string(msg[1]) != plugins.Ready {
		return fmt.Errorf("plugintest: first message %q, want READY", msg[1:])
	}
	if string(msg[2]) != plugins.Protocol {
		return fmt.Errorf("plugintest: plugin speaks %q, want %q", msg[2], plugins.Protocol)
	}
	h.peer = msg[0]
	return nil
}

// recv waits up to Timeout for one message on the ROUTER.
func (h *Host) recv() ([][]byte, error) {
	poller := zmq4.NewPoller()
	poller.Add(h.router, zmq4.POLLIN)
	deadline := time.Now().Add(h.Timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("no message within %v", h.Timeout)
		}
		polled, err := poller.Poll(min(left, 100*time.Millisecond))
		if err != nil {
			return nil, err
		}
		if len(polled) == 0 {
			select {
			case err := <-h.exited:
				h.exited = closedWith(err)
				return nil, fmt.Errorf("plugin ended: %v", err)
			default:
			}
			continue
		}
		return h.router.RecvMessageBytes(0)
	}
}

func closedWith(err error) chan error {
	c := make(chan error, 1)
	c <- err
	return c
}

// Send sends one request and returns its id; read the answer with Recv.
func (h *Host) Send(frames ...[]byte) (string, error) {
	if h.peer == nil {
		return "", errors.New("plugintest: no plugin")
	}
	h.seq++
	id := strconv.FormatUint(h.seq, 10)
	parts := make([]any, 0, 3+len(frames))
	parts = append(parts, h.peer, plugins.Req, id)
	for _, f := range frames {
		parts = append(parts, f)
	}
	_, err := h.router.SendMessage(parts...)
	return id, err
}

// Recv waits for the next REP or ERR, whatever its id.
func (h *Host) Recv() (Reply, error) {
	for {
		msg, err := h.recv()
		if err != nil {
			return Reply{}, err
		}
		if len(msg) < 3 {
			return Reply{}, fmt.Errorf("plugintest: short message %q", msg)
		}
		switch string(msg[1]) {
		case plugins.Rep:
			r := Reply{ID: string(msg[2])}
			if len(msg) > 3 {
				r.Frames = msg[3:]
			}
			return r, nil
		case plugins.Err:
			if len(msg) != 4 {
				return Reply{}, fmt.Errorf("plugintest: ERR with %d frames, want 4", len(msg))
			}
			return Reply{ID: string(msg[2]), Err: string(msg[3]), IsErr: true}, nil
		default:
			return Reply{}, fmt.Errorf("plugintest: unexpected %q", msg[1])
		}
	}
}

// Call sends one request and waits for its answer: the REP frames (nil when
// the plugin dropped the message) or a *PluginError for ERR.
func (h *Host) Call(frames ...[]byte) ([][]byte, error) {
	id, err := h.Send(frames...)
	if err != nil {
		return nil, err
	}
	for {
		r, err := h.Recv()
		if err != nil {
			return nil, err
		}
		if r.ID != id {
			continue // an answer to an earlier Send nobody read
		}
		if r.IsErr {
			return nil, &PluginError{Text: r.Err}
		}
		return r.Frames, nil
	}
}

// Stop sends STOP and returns at once: Recv then reads the answers the
// plugin gives while it winds down, and Close waits for its end.
func (h *Host) Stop() error {
	if h.peer == nil {
		return errors.New("plugintest: no plugin")
	}
	if h.stopped {
		return nil
	}
	h.stopped = true
	_, err := h.router.SendMessage(h.peer, plugins.Stop)
	return err
}

// Close sends STOP (unless Stop did), waits up to Timeout for the plugin to
// end (then kills a program), and releases the socket. It returns the
// plugin's own error.
func (h *Host) Close() error {
	var perr error
	if h.exited != nil {
		if h.peer != nil {
			_ = h.Stop()
		}
		select {
		case perr = <-h.exited:
		case <-time.After(h.Timeout):
			if h.cmd != nil {
				_ = h.cmd.Process.Kill()
			}
			if h.cancel != nil {
				h.cancel()
			}
			perr = <-h.exited
			if perr == nil {
				perr = errors.New("plugintest: plugin did not stop within the timeout")
			}
		}
	}
	if h.cancel != nil {
		h.cancel()
	}
	h.router.Close()
	err := h.zctx.Term()
	os.RemoveAll(h.dir)
	return errors.Join(perr, err)
}
