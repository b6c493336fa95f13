// Package inbox hands items from any goroutine to a goroutine that owns
// ZeroMQ sockets. That goroutine polls sockets and so cannot also block on
// a Go channel: a Put makes a descriptor it polls readable (a
// zbatch.Waker), but only when the owner said it found the inbox empty, so
// under load the owner never sleeps and no wake-up is written. The plugin
// SDK and the plugin host both use it.
package inbox

import (
	"fmt"
	"sync"

	"github.com/ztopo/ztopo/internal/zbatch"
)

// Inbox is a batch queue with a coalescing wake-up. The zero value is not
// ready: use New.
type Inbox[T any] struct {
	mu       sync.Mutex
	items    []T
	sleeping bool
	closed   bool
	wake     *zbatch.Waker
}

// New returns an empty, open inbox; its descriptor is released by Close.
func New[T any]() (*Inbox[T], error) {
	w, err := zbatch.NewWaker()
	if err != nil {
		return nil, fmt.Errorf("inbox wake-up: %w", err)
	}
	return &Inbox[T]{wake: w}, nil
}

// Fd is the descriptor the owner polls (zbatch.Poller.AddFd, POLLIN); when
// it is readable the owner calls Drain, then Take.
func (b *Inbox[T]) Fd() int { return b.wake.Fd() }

// Drain clears the wake-up, for the owner after its poll reported Fd.
func (b *Inbox[T]) Drain() { b.wake.Drain() }

// Put queues v; false when the inbox is closed and v will never be seen.
func (b *Inbox[T]) Put(v T) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.items = append(b.items, v)
	if b.sleeping {
		b.sleeping = false
		b.wake.Wake()
	}
	return true
}

// Wake makes the owner look at its world again (a context ended).
func (b *Inbox[T]) Wake() {
	b.mu.Lock()
	b.sleeping = false
	b.mu.Unlock()
	b.wake.Wake()
}

// Take returns what was put since the last Take, reusing spare's storage
// for the next batch; when there is nothing the owner is marked asleep, so
// that the next Put wakes it.
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

// Close refuses further puts, releases the descriptor and returns what is
// left. For the owner, once it polls no more.
func (b *Inbox[T]) Close() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		_ = b.wake.Close()
	}
	out := b.items
	b.items = nil
	return out
}
