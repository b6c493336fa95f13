package pluginhost

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pebbe/zmq4"
)

// inbox hands events from any goroutine to the loop goroutine, which owns
// the sockets and so cannot block on a Go channel. A put kicks the loop's
// wake-up socket only when the loop said it found the inbox empty: under
// load the loop never sleeps and no wake-up crosses a socket. (The plugins
// SDK has the same helper; neither package may import the other's
// internals.)
type inbox[T any] struct {
	mu       sync.Mutex
	items    []T
	sleeping bool
	closed   bool
	kick     chan struct{} // capacity 1: kicks coalesce
}

func newInbox[T any]() *inbox[T] { return &inbox[T]{kick: make(chan struct{}, 1)} }

// put queues v; false when the loop is gone and v will never be seen.
func (b *inbox[T]) put(v T) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.items = append(b.items, v)
	w := b.sleeping
	b.sleeping = false
	b.mu.Unlock()
	if w {
		b.kickNow()
	}
	return true
}

// wake makes the loop look at its world again (a context ended).
func (b *inbox[T]) wake() {
	b.mu.Lock()
	b.sleeping = false
	b.mu.Unlock()
	b.kickNow()
}

func (b *inbox[T]) kickNow() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// take returns what was put since the last take, reusing spare's storage
// for the next batch; when there is nothing the loop is marked asleep.
func (b *inbox[T]) take(spare []T) []T {
	b.mu.Lock()
	out := b.items
	b.items = spare[:0]
	if len(out) == 0 {
		b.sleeping = true
	}
	b.mu.Unlock()
	return out
}

// close refuses further puts and returns what is left.
func (b *inbox[T]) close() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	out := b.items
	b.items = nil
	return out
}

var wakeSeq atomic.Uint64

// startWaker binds an inproc PULL for the calling goroutine (returned, for
// it to poll, drain and close) and starts a goroutine that owns the
// connected PUSH and sends one empty message per kick.
func startWaker(zctx *zmq4.Context, kick <-chan struct{}) (*zmq4.Socket, func(), error) {
	pull, err := zctx.NewSocket(zmq4.PULL)
	if err != nil {
		return nil, nil, fmt.Errorf("wake socket: %w", err)
	}
	_ = pull.SetLinger(0)
	ep := fmt.Sprintf("inproc://ztopo-pluginhost-wake-%d", wakeSeq.Add(1))
	if err := pull.Bind(ep); err != nil {
		pull.Close()
		return nil, nil, fmt.Errorf("wake socket: %w", err)
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	ready := make(chan error, 1)
	go func() {
		defer close(exited)
		push, err := zctx.NewSocket(zmq4.PUSH)
		if err != nil {
			ready <- err
			return
		}
		defer push.Close()
		_ = push.SetLinger(0)
		_ = push.SetSndhwm(1) // one pending wake-up is as good as many
		if err := push.Connect(ep); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for {
			select {
			case <-quit:
				return
			case <-kick:
				_, _ = push.SendBytes(nil, zmq4.DONTWAIT)
			}
		}
	}()
	if err := <-ready; err != nil {
		<-exited
		pull.Close()
		return nil, nil, fmt.Errorf("wake socket: %w", err)
	}
	return pull, func() { close(quit); <-exited }, nil
}

// drain empties a wake-up socket; its messages carry nothing.
func drain(sock *zmq4.Socket) {
	for {
		if _, err := sock.RecvBytes(zmq4.DONTWAIT); err != nil {
			return
		}
	}
}
