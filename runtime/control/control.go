// Package control is the control socket of a running topology: `ztopo up`
// serves it, and `ztopo ps`, `status`, `reload` and `down` call it.
//
// The socket is a ZeroMQ REP on ipc://<runtime dir>/control.sock. Access is
// the file system's: the runtime directory is private to its owner (0700,
// checked by EnsureRuntimeDir) and the socket file is 0600. A request is one
// frame of JSON, {"verb":"ps"}; the reply is one JSON object with "ok" and,
// when ok is false, "error", next to the fields of the handler's result:
// {"ok":true,"nodes":[...]}.
//
// One topology per endpoint: Serve holds an flock on a lock file next to the
// socket for as long as it serves. The kernel drops the lock when its holder
// dies, even by SIGKILL, so a socket file left by a killed ztopo is known to
// be stale without asking it, and two instances starting at once cannot
// both win (libzmq unlinks an existing ipc path when binding, so binding
// alone would silently take the endpoint from a live instance).
package control

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The verbs a control socket answers.
const (
	VerbPs     = "ps"     // Handler.Status
	VerbStatus = "status" // Handler.Status
	VerbReload = "reload" // Handler.Reload
	VerbDown   = "down"   // Handler.Down
	// VerbPing is answered by Serve itself with a PingReply:
	// {"ok":true,"pid":N,"name":"..."}.
	VerbPing = "ping"
)

// DefaultTimeout bounds a Call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

// SocketName is the control socket's file name in the runtime directory.
const SocketName = "control.sock"

// pollInterval is how often Serve and Call look at their context while
// waiting on the socket.
const pollInterval = 100 * time.Millisecond

// MaxRequest bounds a request the control socket takes, in bytes: requests
// are a verb and its arguments (instance names). libzmq drops the connection of a client
// that sends more (ZMQ_MAXMSGSIZE) before reading it into memory; the client
// gets no answer.
const MaxRequest = 1 << 20

// MaxReply bounds a reply a client takes, in bytes (a status of 10,000
// instances is about 4 MB).
const MaxReply = 64 << 20

// replyLinger lets the last reply leave after Serve is stopped, typically
// the answer to "down", which stops Serve right after it is sent.
const replyLinger = 500 * time.Millisecond

// ErrNotRunning is wrapped by Call's error when no topology serves the
// endpoint: the socket file is missing, or nothing listens on it.
var ErrNotRunning = errors.New("no topology running")

// Handler does what the verbs ask. Serve calls it from its own goroutine,
// one call at a time, so a slow Reload delays other callers but never runs
// concurrently with another verb.
//
// A Handler that also has a method Name() string gives its topology name to
// ping replies and to the error of a second Serve on the same endpoint.
type Handler interface {
	// Status describes the running topology for ps and status; its fields
	// go into the reply ({"ok":true,"name":..., "nodes":[...]}).
	Status() StatusReply
	// Reload reloads the topology file and returns what was done, in the
	// reply like Status. An error (an invalid file, a failed apply) is the
	// reply's "error"; the result, if not nil, is still sent along.
	Reload() (*ReloadReply, error)
	// Down asks the topology to stop and returns without waiting for it:
	// the stop ends Serve, which must first send the reply.
	Down() error
}

// RunningError is Serve's error when another instance serves the endpoint.
type RunningError struct {
	Name     string // topology name, if the Handler has one
	Pid      int    // the serving process, 0 if unknown
	Endpoint string
}

func (e *RunningError) Error() string {
	pid := "pid unknown"
	if e.Pid > 0 {
		pid = "pid " + strconv.Itoa(e.Pid)
	}
	if e.Name != "" {
		return fmt.Sprintf("topology %s is already running (%s)", e.Name, pid)
	}
	return fmt.Sprintf("a topology is already running at %s (%s)", e.Endpoint, pid)
}

// Endpoint is the control socket's endpoint for a runtime directory.
func Endpoint(runtimeDir string) string {
	return "ipc://" + filepath.Join(runtimeDir, SocketName)
}

// EnsureRuntimeDir creates dir (and its parents) with mode 0700 and checks
// it with CheckRuntimeDir: its ipc endpoints and control socket are only as
// private as dir and every directory above it.
func EnsureRuntimeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	return CheckRuntimeDir(dir)
}

// ipcPath returns the file of an ipc:// endpoint, or "" for other transports.
func ipcPath(endpoint string) string {
	if p, ok := strings.CutPrefix(endpoint, "ipc://"); ok {
		return p
	}
	return ""
}
