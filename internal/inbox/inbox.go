// Package inbox hands items from any goroutine to a goroutine that owns
// ZeroMQ sockets. That goroutine polls sockets and so cannot also block on
// a Go channel: a Put kicks a wake-up socket it polls, but only when the
// owner said it found the inbox empty, so under load the owner never sleeps
// and no wake-up crosses a socket. The plugin SDK and the plugin host both
// use it.
package inbox

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pebbe/zmq4"
)

// Inbox is a batch queue with a coalescing kick. The zero value is not
// ready: use New.
type Inbox[T any] struct {
	mu       sync.Mutex
	items    []T
	sleeping bool
	closed   bool
	kick     chan struct{} // capacity 1: kicks coalesce
}

// New returns an empty, open inbox.
func New[T any]() *Inbox[T] { return &Inbox[T]{kick: make(chan struct{}, 1)} }

// Kick is the channel StartWaker turns into wake-up messages.
func (b *Inbox[T]) Kick() <-chan struct{} { return b.kick }

// Put queues v; false when the inbox is closed and v will never be seen.
func (b *Inbox[T]) Put(v T) bool {
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

// Wake makes the owner look at its world again (a context ended).
func (b *Inbox[T]) Wake() {
	b.mu.Lock()
	b.sleeping = false
	b.mu.Unlock()
	b.kickNow()
}

func (b *Inbox[T]) kickNow() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Take returns what was put since the last Take, reusing spare's storage
// for the next batch; when there is nothing the owner is marked asleep, so
// that the next Put kicks it.
func (b *Inbox[T]) Take(spare []T) []T {
	b.mu.Lock()
	out := b.items
	b.items = spare[:0]
	if len(out) == 0 {
		b.sleeping = true
	}
	b.mu.Unlock()
	return out
}

// Close refuses further puts and returns what is left.
func (b *Inbox[T]) Close() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	out := b.items
	b.items = nil
	return out
}

var wakeSeq atomic.Uint64

// StartWaker binds an inproc PULL for the calling goroutine (returned, for
// it to poll, Drain and close) and starts a goroutine that owns the
// connected PUSH and sends one empty message per kick. stop ends that
// goroutine and waits for it.
func StartWaker(zctx *zmq4.Context, kick <-chan struct{}) (pull *zmq4.Socket, stop func(), err error) {
	pull, err = zctx.NewSocket(zmq4.PULL)
	if err != nil {
		return nil, nil, fmt.Errorf("wake socket: %w", err)
	}
	_ = pull.SetLinger(0)
	ep := fmt.Sprintf("inproc://ztopo-wake-%d", wakeSeq.Add(1))
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

// Drain empties a wake-up socket; its messages carry nothing.
func Drain(sock *zmq4.Socket) {
	for {
		if _, err := sock.RecvBytes(zmq4.DONTWAIT); err != nil {
			return
		}
	}
}
