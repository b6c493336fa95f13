package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
)

// Serve answers requests on endpoint until ctx is done, then returns nil.
// It fails at once if another instance serves the endpoint (*RunningError)
// and removes a stale socket file left by an instance that died. The REP
// socket lives and dies in the calling goroutine. For an ipc endpoint, the
// socket file is made 0600 and removed on return.
func Serve(ctx context.Context, zctx *zmq4.Context, endpoint string, h Handler, logger hclog.Logger) error {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	path := ipcPath(endpoint)
	if path != "" {
		il, err := lockInstance(endpoint, h)
		if err != nil {
			return err
		}
		defer il.release()
		unlock, err := lockEndpoint(path, endpoint, h)
		if err != nil {
			return err
		}
		defer unlock()
		if err := os.Remove(path); err == nil {
			logger.Info("removed stale control socket", "path", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("control socket: %w", err)
		}
	}

	sock, err := zctx.NewSocket(zmq4.REP)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer sock.Close()
	if err := sock.SetLinger(replyLinger); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := sock.SetMaxmsgsize(MaxRequest); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := sock.Bind(endpoint); err != nil {
		return fmt.Errorf("control socket %s: %w", endpoint, err)
	}
	if path != "" {
		// Removed before the lock is released (defers run in reverse), so
		// that a file without a live lock is always stale.
		defer os.Remove(path)
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
	}
	logger.Debug("serving control socket", "endpoint", endpoint)

	poller := zmq4.NewPoller()
	poller.Add(sock, zmq4.POLLIN)
	var lastCheck time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if path != "" && time.Since(lastCheck) >= dirCheckInterval {
			lastCheck = time.Now()
			if err := restoreSocket(sock, path, endpoint, h, logger); err != nil {
				return err
			}
		}
		polled, err := poller.Poll(pollInterval)
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		if len(polled) == 0 {
			continue
		}
		frames, err := sock.RecvMessageBytes(zmq4.DONTWAIT)
		if err != nil {
			if zmq4.AsErrno(err) == zmq4.Errno(syscall.EAGAIN) {
				continue
			}
			return fmt.Errorf("control socket: %w", err)
		}
		// REP is strictly request/reply: every request gets exactly one
		// reply, even a malformed one, or the socket would be stuck.
		var rep []byte
		if len(frames) != 1 {
			rep = encodeReply(nil, fmt.Errorf("bad request: %d frames, want 1", len(frames)))
		} else {
			rep = dispatch(frames[0], h, logger)
		}
		if _, err := sock.SendBytes(rep, 0); err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
	}
}

// lockEndpoint takes the lock that makes this process the endpoint's only
// server, and writes our pid into the lock file for the error of the next
// one. unlock releases it.
func lockEndpoint(path, endpoint string, h Handler) (unlock func(), err error) {
	lp := lockPath(path)
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control socket lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := io.ReadAll(f)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &RunningError{Name: nameOf(h), Pid: pid, Endpoint: endpoint}
		}
		return nil, fmt.Errorf("control socket lock: %w", err)
	}
	// The lock file is never removed: a process that opened it just before
	// a removal would lock a file nobody else can find any more.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return func() { f.Close() }, nil
}

func nameOf(h Handler) string {
	if n, ok := h.(interface{ Name() string }); ok {
		return n.Name()
	}
	return ""
}

// request is what Call sends.
type request struct {
	Verb string          `json:"verb"`
	Args json.RawMessage `json:"args,omitempty"` // the verb's arguments, if it takes any
}

// dispatch answers one request; a handler's panic is the reply's error, not
// the end of the control socket.
func dispatch(raw []byte, h Handler, logger hclog.Logger) (reply []byte) {
	var req request
	defer func() {
		if r := recover(); r != nil {
			logger.Error("control handler panicked", "verb", req.Verb, "panic", r)
			reply = encodeReply(nil, fmt.Errorf("internal error: %v", r))
		}
	}()
	if err := json.Unmarshal(raw, &req); err != nil {
		return encodeReply(nil, fmt.Errorf("bad request: %v", err))
	}
	logger.Debug("control request", "verb", req.Verb)
	switch req.Verb {
	case VerbPs, VerbStatus:
		return encodeReply(h.Status(), nil)
	case VerbReload:
		return encodeReply(h.Reload()) // a nil reply encodes as no fields
	case VerbDown:
		return encodeReply(nil, h.Down())
	case VerbLogs:
		lh, ok := h.(LogsHandler)
		if !ok {
			return encodeReply(nil, errors.New("this topology keeps no log"))
		}
		var lr LogsRequest
		if err := req.args(&lr); err != nil {
			return encodeReply(nil, fmt.Errorf("bad request: %v", err))
		}
		return encodeReply(lh.Logs(lr))
	case VerbRestart:
		rh, ok := h.(RestartHandler)
		if !ok {
			return encodeReply(nil, errors.New("this topology cannot restart nodes"))
		}
		var rr RestartRequest
		if err := req.args(&rr); err != nil {
			return encodeReply(nil, fmt.Errorf("bad request: %v", err))
		}
		return encodeReply(rh.Restart(rr))
	case VerbTap, VerbTapRead, VerbUntap:
		th, ok := h.(TapHandler)
		if !ok {
			return encodeReply(nil, errors.New("this topology cannot tap sockets"))
		}
		if req.Verb == VerbTap {
			var tr TapRequest
			if err := req.args(&tr); err != nil {
				return encodeReply(nil, fmt.Errorf("bad request: %v", err))
			}
			return encodeReply(th.Tap(tr))
		}
		var rr TapReadRequest
		if err := req.args(&rr); err != nil {
			return encodeReply(nil, fmt.Errorf("bad request: %v", err))
		}
		if req.Verb == VerbTapRead {
			return encodeReply(th.TapRead(rr))
		}
		return encodeReply(th.Untap(rr))
	case VerbPing:
		return encodeReply(PingReply{Pid: os.Getpid(), Name: nameOf(h)}, nil)
	default:
		return encodeReply(nil, fmt.Errorf("unknown verb %q (known: ps, status, reload, down, logs, restart, tap, tap-read, untap, ping)", req.Verb))
	}
}

// encodeReply merges result's JSON object with "ok" and "error".
func encodeReply(result any, err error) []byte {
	fields := map[string]json.RawMessage{}
	if result != nil {
		b, merr := json.Marshal(result)
		switch {
		case merr != nil:
			err = errors.Join(err, fmt.Errorf("encode reply: %v", merr))
		case len(b) > 0 && b[0] == '{':
			if uerr := json.Unmarshal(b, &fields); uerr != nil {
				err = errors.Join(err, fmt.Errorf("encode reply: %v", uerr))
			}
		case string(b) != "null":
			fields["result"] = b
		}
	}
	ok, _ := json.Marshal(err == nil)
	fields["ok"] = ok
	delete(fields, "error")
	if err != nil {
		msg, _ := json.Marshal(err.Error())
		fields["error"] = msg
	}
	b, _ := json.Marshal(fields)
	return b
}

// dirCheckInterval is how often Serve checks that its socket file is still
// there: systemd-tmpfiles, or a user, may delete the runtime directory
// under a running topology.
const dirCheckInterval = time.Second

// restoreSocket recreates the runtime directory, the socket file and the
// lock file when they were deleted, so that ps, down and reload keep
// finding the topology. A Handler with a RuntimeDirLost method is told, to
// say what could not be recreated (the ipc endpoints of bind: auto).
func restoreSocket(sock *zmq4.Socket, path, endpoint string, h Handler, logger hclog.Logger) error {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	dir := filepath.Dir(path)
	logger.Error("runtime directory or control socket deleted while running; recreating them", "dir", dir)
	if err := EnsureRuntimeDir(dir); err != nil {
		// Not ours to use any more (someone else made it): stop serving
		// rather than answer in a directory another user controls.
		return fmt.Errorf("cannot recreate the runtime directory: %w", err)
	}
	_ = sock.Unbind(endpoint) // the old file is gone; libzmq still holds its listener
	if err := sock.Bind(endpoint); err != nil {
		return fmt.Errorf("control socket %s: %w", endpoint, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if f, err := os.OpenFile(lockPath(path), os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Close()
	}
	if l, ok := h.(interface{ RuntimeDirLost(dir string) }); ok {
		l.RuntimeDirLost(dir)
	}
	return nil
}

// lockPath is the lock file beside the control socket at sock: whoever holds
// it serves the socket, and it names that process's pid.
func lockPath(sock string) string { return sock + ".lock" }

// RemoveRuntimeDir removes the runtime directory (control socket, auto ipc
// paths) unless another instance serves it by now: the control socket's
// lock tells, and is held while removing so that no instance can start
// serving in between.
func RemoveRuntimeDir(dir string, log hclog.Logger) {
	lp := lockPath(filepath.Join(dir, SocketName))
	f, err := os.OpenFile(lp, os.O_RDWR, 0)
	if err == nil {
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			log.Debug("runtime directory in use by another instance, left in place", "dir", dir)
			return
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("cannot remove runtime directory", "dir", dir, "error", err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("cannot remove runtime directory", "dir", dir, "error", err)
	}
}
