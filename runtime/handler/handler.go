// Package handler defines what a node does with its messages: the Handler
// interface every handler kind implements (builtin, exec, plugin), the
// Runner interface for handlers that drive their sockets themselves
// (generate, proxy, lbbroker), and the Registry of builtin handlers.
//
// Lifecycle: a Factory builds a handler once per node instance from the
// node's resolved config. The node calls Handle from its own goroutine only,
// one message at a time, so a Handler needs no locking unless it shares state
// across instances. Swapping a node's handler stores a new value in the
// node's atomic slot: the old handler sees no further calls after the swap
// and is then Closed.
package handler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/spec"
)

// Msg is one multipart message as a handler sees it: the routing envelope
// (ROUTER identities, the empty delimiter) has been removed by the runtime and
// is restored on the reply. Pub-sub topic frames are part of Frames.
//
// Ownership: the frames' bytes are the handler's (it may change them in
// place and return them), but the Frames slice itself is reused by the node
// for its next message once Handle returned and the output was sent: a
// Handler that keeps Frames beyond Handle copies the slice. An Async
// handler's Submit gets a slice of its own and may keep it.
type Msg struct {
	Frames [][]byte
	Socket string // name of the socket it came in on
	// ID is the message's origin id on an at-least-once edge (16 bytes,
	// the same on every copy sent again and on what handlers made of it
	// downstream); nil on other edges. A deduping sink counts distinct IDs.
	ID []byte
}

// Handler processes one message and returns the frames to send on (nil: the
// message is dropped, nothing is sent). A message from an `in` socket goes to
// the node's `out` sockets; from an `inout` socket, back to its sender.
//
// Returning ErrDone completes the node after out is sent. Any other error is
// logged with the node's name; the message is lost and the node is failed
// and restarted under its policy when the error wraps ErrFatal, else it goes on.
type Handler interface {
	Handle(ctx context.Context, m Msg) (out [][]byte, err error)
}

// ErrorReplier is implemented by handler errors that carry the answer a
// request gets when its message failed: on an inout socket (REP, ROUTER,
// ...) the node sends ErrorReply() instead of the empty reply it sends for
// other errors. It is never sent on to out sockets.
type ErrorReplier interface {
	error
	ErrorReply() [][]byte
}

// ErrorReply returns the reply err carries (see ErrorReplier), or nil.
func ErrorReply(err error) [][]byte {
	var r ErrorReplier
	if errors.As(err, &r) {
		return r.ErrorReply()
	}
	return nil
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m Msg) ([][]byte, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m Msg) ([][]byte, error) { return f(ctx, m) }

// Closer is implemented by handlers that hold resources (a child process, a
// plugin). Close is called once, after the last Handle, from the node's
// goroutine; it may block up to the node's stop grace.
type Closer interface {
	Close(ctx context.Context) error
}

// Async is implemented by handlers that hold many messages at once and may
// answer out of order (the ZeroMQ plugin host, the exec host). When a node's
// handler implements Async the node calls Submit instead of Handle and
// reads results from Results, from its own goroutine.
type Async interface {
	Handler
	// Submit hands m over under tag; it blocks for back-pressure while the
	// handler holds as much as it accepts, until ctx is done.
	Submit(ctx context.Context, m Msg, tag uint64) error
	// Results delivers exactly one Result per submitted tag, in any order.
	// A lost message (the plugin crashed) comes back with Err set.
	Results() <-chan Result
	// Pending is how many submitted messages have no Result yet.
	Pending() int
}

// Notifier is implemented by Async handlers that tell when a Result is
// ready, so that a node with results outstanding and nothing to read sleeps
// until one comes rather than looking at Results on a timer.
type Notifier interface {
	// OnResult sets f, which the handler calls after each Result it
	// makes receivable on Results, from any goroutine; f never blocks.
	// The node sets it before its first Submit; a later call replaces f.
	OnResult(f func())
}

// Result is the answer to one submitted message.
type Result struct {
	Tag    uint64
	Frames [][]byte // nil: dropped
	Err    error
}

// Runner is implemented by handlers that drive the node's sockets themselves
// instead of reacting to one message at a time (generate, proxy, lbbroker).
// Run returns nil when the handler completed, or ctx's error when stopped.
type Runner interface {
	Run(ctx context.Context, s Sockets) error
}

// Inheritor is implemented by Runners whose state outlives a handler swap
// (a broker's list of idle workers, which announced themselves once and will
// not again). When a swap replaces one Runner by another, the node calls the
// new one's Inherit with the old one, after the old one's Run returned and
// before the new one's Run starts, from the node's goroutine.
type Inheritor interface {
	Inherit(prev any)
}

// Sockets is a node instance's sockets as a Runner sees them. They belong to
// the node's goroutine, which is the goroutine that calls Run.
type Sockets interface {
	// Names lists the node's socket names, sorted.
	Names() []string
	// Spec returns the resolved socket spec, or nil.
	Spec(name string) *spec.Socket
	// Raw returns the underlying *zmq4.Socket (as any, so that handler
	// stays free of cgo); only the proxy and plugin hosts use it.
	Raw(name string) any
	// Send sends a multipart message on the named socket, counting it.
	Send(name string, frames [][]byte) error
	// Recv receives a multipart message from the named socket, counting it.
	Recv(name string) ([][]byte, error)
}

// Repeater is implemented by a node's Sockets. SendRepeat sends the same
// message n times on the named socket, counting each: what Send does n
// times, waiting while the peer is full and stopping with the node, but in
// a few calls into libzmq rather than one per message.
type Repeater interface {
	SendRepeat(name string, frames [][]byte, n int) error
}

// Env is what a Factory gets besides config.
type Env struct {
	Node   *spec.Node // the resolved node instance
	Topo   *spec.Topology
	Logger hclog.Logger // named for the node instance
}

// Factory builds a handler (a Handler or a Runner) for one node instance.
// cfg is Node.Config, already checked against the handler's spec schema.
type Factory func(cfg map[string]any, env Env) (any, error)

var (
	// ErrDone completes the node: it is done, not failed.
	ErrDone = errors.New("handler done")
	// ErrFatal marks an error after which the node instance must restart.
	ErrFatal = errors.New("fatal handler error")
	// ErrGiveUp wraps ErrFatal for a handler that already restarted its
	// own child (an exec or plugin process) as often as the node's
	// restart policy allows: the node is failed for good, not restarted
	// again, so that the policy's limit is not applied twice.
	ErrGiveUp = fmt.Errorf("%w: the node's restart policy allows no more restarts", ErrFatal)
	// ErrReported marks a Result error the handler has already logged,
	// in one line with a count for the whole event (a crashed child's
	// lost messages): the node does not log it again per message. See
	// Reported.
	ErrReported = errors.New("reported by the handler")
)

// ErrPermanent marks an error no restart can mend: an exec or plugin
// program that cannot be started at all (missing, not executable). See
// Permanent.
var ErrPermanent = errors.New("restarting will not help")

// Permanent marks err as one no restart mends (errors.Is(err,
// ErrPermanent)) without changing its text.
func Permanent(err error) error { return markedError{err, ErrPermanent} }

// Reported marks err as already logged by the handler (errors.Is(err,
// ErrReported)) without changing its text.
func Reported(err error) error { return markedError{err, ErrReported} }

// markedError is err, also matching mark in errors.Is.
type markedError struct{ err, mark error }

func (e markedError) Error() string   { return e.err.Error() }
func (e markedError) Unwrap() []error { return []error{e.err, e.mark} }

// Completer is implemented by handlers that can finish on their own
// (generate with a count, count with expect or until). The engine asks it
// before the node starts: a topology with completing nodes ends when all of
// them completed; one without runs until it is stopped.
type Completer interface {
	Completes() bool
}

// Producer is implemented by handlers that originate messages whatever
// their sockets look like (generate, replay): the engine stops producers
// first on shutdown, so that what they already sent can drain. A node
// whose sockets all send is a producer without it.
type Producer interface {
	Produces() bool
}

// The capabilities below let a node move messages without calling Handle
// for each (runtime/node's fast paths).

// Passthrough is implemented by handlers that may return every message
// unchanged (builtin forward without a delay). When Passthrough reports
// true and the node has exactly one receiving socket (PULL or SUB, role in)
// and one sending socket (PUSH or PUB, role out), the node hands both to
// a steerable proxy in C (internal/zbatch's Proxy: libzmq's commands, bursts between
// polls): messages move inside libzmq, with no cgo crossing, allocation or
// handler call per message. The handler's Handle is
// then never called. The socket types are restricted so that the proxy's
// other direction (backend to frontend) can never carry anything: a
// receiving XSUB or DEALER, or an XPUB that hears subscriptions, would make
// the proxy behave unlike the reactive loop. On a node whose only socket
// is a plain REP (no delivery headers, no worker protocol), the node
// answers each request with its own frames in a C loop (zbatch.Echo)
// instead: a passthrough answering requests is an echo.
type Passthrough interface {
	Passthrough() bool
}

// Discarder is implemented by handlers that may only count the messages
// they receive (builtin count without until). While Discarding reports
// true, the node takes the messages of its receiving sockets (role in, not
// REP or REQ) in batches inside libzmq, never copying them into Go, and
// tells the handler how many came instead of calling Handle. A node whose
// only socket is a PULL or SUB takes them in a C loop (zbatch.Sink) that
// returns at the limit or when the node stops or swaps. limit is how
// many more the handler takes before it completes (0: no limit): the node
// never takes more, so what the handler did not count stays queued, as it
// would with Handle.
type Discarder interface {
	Discarding() (ok bool, limit int)
	// Discarded tells the handler n more messages came, the first of
	// them at first and the last at last; done means it completed, as
	// Handle returning ErrDone.
	Discarded(n int, first, last time.Time) (done bool)
}

// Waiter is implemented by the Sockets a node gives its Runner. Wait blocks
// until some of the named sockets have a message to receive and returns
// their names, in the order given; it returns (nil, nil) after timeout
// (negative: no timeout), and ctx's error once the Runner must return (the
// node is stopping, or its handler was swapped). Runners that serve several
// sockets (lbbroker) wait here instead of blocking in Recv.
type Waiter interface {
	Wait(names []string, timeout time.Duration) ([]string, error)
}

// Controlled is implemented by the Sockets a node gives its Runner. Control
// returns the node's inproc control socket (a *zmq4.Socket, as any) for a
// Runner that hands its loop to libzmq's steerable proxy: the node sends
// "TERMINATE" on it when the Runner must return. Only that Runner may read it.
//
// Proxying is called right before each run of the proxy, with the names of
// the sockets it is given (capture: "" for none), and done right after it
// returned: meanwhile the node counts what the proxy moves from its
// STATISTICS, asked on the control socket, since the Runner's Send and Recv
// see none of it.
type Controlled interface {
	Control() any
	Proxying(frontend, backend, capture string) (done func())
}

// ControlTerminate is the command the node sends on its control socket to
// make it return; it is the steerable proxy's own command.
const ControlTerminate = "TERMINATE"

// AwaitReply is the synchronous Handle of an Async handler: submit hands the
// message over with reply (capacity 1, so a late answer never blocks the
// handler), and AwaitReply waits for that Result or for ctx.
func AwaitReply(ctx context.Context, submit func(reply chan Result) error) ([][]byte, error) {
	reply := make(chan Result, 1)
	if err := submit(reply); err != nil {
		return nil, err
	}
	select {
	case r := <-reply:
		return r.Frames, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
