// Package asynchost is what the two out-of-process handler hosts (the exec
// host and the plugin host) share as handler.Async implementations: the
// books of the messages between Submit and their Result (back-pressure
// slots, the Results queue, why no more are taken), and the file watch
// that swaps a host's program when it changes, which the wasm host uses
// too. How a message reaches the child and how its answer comes back is
// each host's own.
package asynchost

import (
	"context"
	"errors"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/watch"
)

// Books account for a host's messages from Submit to their Result. Every
// admitted message holds one of inflight slots until Answer gives it
// back; a message submitted for Results (reply nil) is counted in the
// ResultQueue until its Result is receivable. Safe from any goroutine.
type Books struct {
	name    string // the host's package, for errors
	closed  error  // the host's ErrClosed
	reject  func(handler.Msg) error
	hand    Hand
	results *handler.ResultQueue
	slots   chan struct{}
	done    chan struct{}
	err     handler.FirstErr
}

// Hand gives an admitted message to the host, which answers it with
// Answer; it reports false when the host no longer takes messages.
type Hand func(tag uint64, frames [][]byte, reply chan handler.Result) bool

// New returns the books of a host that holds at most inflight unanswered
// messages; name prefixes its errors, closed is its ErrClosed, hand gives
// it a message. reject, when not nil, sees each message first: one it
// returns an error for is answered at once with that Result error,
// without a slot and without hand. New starts the Results pump:
// CloseResults ends it.
func New(name string, inflight int, closed error, reject func(handler.Msg) error, hand Hand) *Books {
	return &Books{
		name:    name,
		closed:  closed,
		reject:  reject,
		hand:    hand,
		results: handler.NewResultQueue(inflight),
		slots:   make(chan struct{}, inflight),
		done:    make(chan struct{}),
	}
}

// Handle is the host's synchronous Handle: Submit, then wait for the
// Result or for ctx.
func (b *Books) Handle(ctx context.Context, m handler.Msg) ([][]byte, error) {
	return handler.AwaitReply(ctx, func(reply chan handler.Result) error {
		return b.submit(ctx, m, 0, reply)
	})
}

// Submit is the host's Submit: it admits m under tag, its Result to come
// on Results. It waits for a free slot (back-pressure, until ctx is done
// or the host is done), counts the Result and hands m to the host; when
// the host no longer takes messages, the slot and the count are given
// back.
func (b *Books) Submit(ctx context.Context, m handler.Msg, tag uint64) error {
	return b.submit(ctx, m, tag, nil)
}

func (b *Books) submit(ctx context.Context, m handler.Msg, tag uint64, reply chan handler.Result) error {
	if err := b.Err(); err != nil {
		return err
	}
	if len(m.Frames) == 0 {
		return errors.New(b.name + ": empty message")
	}
	if b.reject != nil {
		if err := b.reject(m); err != nil {
			b.count(reply, 1)
			b.Deliver(tag, reply, handler.Result{Err: err})
			return nil
		}
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return b.ClosedErr()
	}
	b.count(reply, 1)
	if !b.hand(tag, m.Frames, reply) {
		<-b.slots
		b.count(reply, -1)
		return b.ClosedErr()
	}
	return nil
}

// count counts n Results to come on Results; Handle's (reply set) come
// on reply instead and are not counted.
func (b *Books) count(reply chan handler.Result, n int) {
	if reply == nil {
		b.results.Add(n)
	}
}

// Answer gives back the slot of an admitted message and delivers its
// Result (see Deliver).
func (b *Books) Answer(tag uint64, reply chan handler.Result, r handler.Result) {
	<-b.slots
	b.Deliver(tag, reply, r)
}

// Deliver hands r, the Result of the message submitted under tag, to
// Handle's reply channel (buffered for exactly this one) or to Results; it
// never blocks.
func (b *Books) Deliver(tag uint64, reply chan handler.Result, r handler.Result) {
	r.Tag = tag
	if reply != nil {
		reply <- r
		return
	}
	b.results.Put(r)
}

// Results is the host's Results channel; it is never closed.
func (b *Books) Results() <-chan handler.Result { return b.results.C() }

// Pending is the host's Pending (see handler.ResultQueue.Pending).
func (b *Books) Pending() int { return b.results.Pending() }

// OnResult is the host's handler.Notifier.
func (b *Books) OnResult(f func()) { b.results.OnResult(f) }

// CloseResults ends the Results pump; Results not yet receivable are
// not delivered any more.
func (b *Books) CloseResults() { b.results.Close() }

// Err is nil while the host takes messages, then why it does not: the
// first error given to Fail.
func (b *Books) Err() error { return b.err.Err() }

// Fail records why the host takes no more messages, unless a reason was
// recorded before.
func (b *Books) Fail(err error) { b.err.Set(err) }

// ClosedErr is Err, or the host's ErrClosed while Err is nil.
func (b *Books) ClosedErr() error {
	if err := b.Err(); err != nil {
		return err
	}
	return b.closed
}

// Done is closed by Finished.
func (b *Books) Done() <-chan struct{} { return b.done }

// Finished tells that the host has stopped: no child is left, Submit
// takes nothing more. The host calls it once.
func (b *Books) Finished() { close(b.done) }

// Watch is the file watch behind a host's WatchFile, swapped with the
// host's program. The zero value watches nothing; safe from any goroutine.
type Watch struct {
	mu   sync.Mutex
	stop func()
	path string
}

// Start watches path, calling onChange after each change of its content.
// It stops no watch: Stop the previous one first.
func (w *Watch) Start(path string, log hclog.Logger, onChange func()) error {
	stop, err := watch.OnChange(context.Background(), path, log, onChange)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.stop, w.path = stop, path
	w.mu.Unlock()
	return nil
}

// Differs reports whether the current watch is not that of path (on:
// whether a watch is wanted at all): a swap must restart it.
func (w *Watch) Differs(path string, on bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.path != path || (w.stop != nil) != on
}

// Reset makes the watch that of path, or none when !on: a watch that
// differs is stopped, and then, when on, start is called to Start the new
// one.
func (w *Watch) Reset(path string, on bool, start func()) {
	if !w.Differs(path, on) {
		return
	}
	w.Stop()
	if on {
		start()
	}
}

// Stop ends the watch, if any.
func (w *Watch) Stop() {
	w.mu.Lock()
	stop := w.stop
	w.stop, w.path = nil, ""
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
}
