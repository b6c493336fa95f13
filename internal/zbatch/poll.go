package zbatch

/*
#include <zmq.h>
*/
import "C"

import (
	"sync"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// Poller waits on ZeroMQ sockets and plain file descriptors together, as
// zmq_poll does; pebbe's Poller takes sockets only. The descriptor is how
// another goroutine wakes a socket owner (Waker) without a goroutine and a
// socket pair in between: one system call instead of two goroutine
// wake-ups. Used by the one goroutine that owns the sockets.
type Poller struct {
	items []C.zmq_pollitem_t
	socks []*zmq4.Socket // nil for a descriptor; for the fallback
}

// Add watches s for events and returns its index.
func (p *Poller) Add(s *zmq4.Socket, events zmq4.State) int {
	p.items = append(p.items, C.zmq_pollitem_t{socket: handle(s), events: C.short(events)})
	p.socks = append(p.socks, s)
	return len(p.items) - 1
}

// AddFd watches a file descriptor for events (zmq4.POLLIN: readable) and
// returns its index.
func (p *Poller) AddFd(fd int, events zmq4.State) int {
	p.items = append(p.items, C.zmq_pollitem_t{fd: C.int(fd), events: C.short(events)})
	p.socks = append(p.socks, nil)
	return len(p.items) - 1
}

// Update changes what item i is watched for (0: nothing).
func (p *Poller) Update(i int, events zmq4.State) {
	p.items[i].events = C.short(events)
}

// Ready is what item i had at the last Poll.
func (p *Poller) Ready(i int) zmq4.State { return zmq4.State(p.items[i].revents) }

// Poll waits until an item has one of its events or timeout passes (< 0:
// no limit), and returns how many items have. A signal ends the wait early
// with EINTR, which the caller takes as "look again".
func (p *Poller) Poll(timeout time.Duration) (int, error) {
	for i := range p.items {
		p.items[i].revents = 0
	}
	if len(p.items) == 0 {
		return 0, nil
	}
	if !Fast {
		return p.pollSlow(timeout)
	}
	n, err := C.zmq_poll(&p.items[0], C.int(len(p.items)), C.long(millis(timeout)))
	if n < 0 {
		return 0, asErrno(err)
	}
	return int(n), nil
}

// millis is timeout in whole milliseconds, rounded up so that a short wait
// does not become a busy loop; -1 for no limit.
func millis(timeout time.Duration) int64 {
	if timeout < 0 {
		return -1
	}
	return int64((timeout + time.Millisecond - 1) / time.Millisecond)
}

func asErrno(err error) error {
	if e, ok := err.(syscall.Errno); ok {
		return zmq4.Errno(e)
	}
	return err
}

// slowSlice bounds each turn of the fallback's alternating wait.
const slowSlice = time.Millisecond

// pollSlow is Poll without libzmq's socket handles (a pebbe release with
// another layout): pebbe's poller for the sockets and poll(2) for the
// descriptors, in turns of at most slowSlice.
func (p *Poller) pollSlow(timeout time.Duration) (int, error) {
	zp := zmq4.NewPoller()
	var zidx []int
	var fds []unix.PollFd
	var fidx []int
	for i, s := range p.socks {
		if s != nil {
			zp.Add(s, zmq4.State(p.items[i].events))
			zidx = append(zidx, i)
		} else {
			fds = append(fds, unix.PollFd{Fd: int32(p.items[i].fd), Events: int16(p.items[i].events)})
			fidx = append(fidx, i)
		}
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n := 0
		if len(fds) > 0 {
			if _, err := unix.Poll(fds, 0); err != nil && err != unix.EINTR {
				return 0, err
			}
			for k, f := range fds {
				if f.Revents != 0 {
					p.items[fidx[k]].revents = C.short(f.Revents)
					n++
				}
			}
		}
		wait := slowSlice
		if n > 0 {
			wait = 0
		} else if timeout >= 0 {
			wait = min(wait, max(time.Until(deadline), 0))
		}
		if len(zidx) > 0 {
			polled, err := zp.PollAll(wait)
			if err != nil {
				return 0, err
			}
			for k, pl := range polled {
				if pl.Events != 0 {
					p.items[zidx[k]].revents = C.short(pl.Events)
					n++
				}
			}
		} else if wait > 0 {
			time.Sleep(wait)
		}
		if n > 0 || (timeout >= 0 && !time.Now().Before(deadline)) {
			return n, nil
		}
	}
}

// Waker lets any goroutine wake a socket owner polling its descriptor: an
// eventfd, so wake-ups coalesce until the owner drains it.
type Waker struct {
	mu     sync.RWMutex
	fd     int
	closed bool
	buf    [8]byte // Drain's, owner only
}

// wakeOne is the native uint64 an eventfd write adds: 1 on little-endian
// machines; any value but 0 wakes, so byte order does not matter.
var wakeOne = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// NewWaker returns an open Waker.
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &Waker{fd: fd}, nil
}

// Fd is the descriptor to poll for zmq4.POLLIN.
func (w *Waker) Fd() int { return w.fd }

// Wake makes the descriptor readable; safe from any goroutine, and a no-op
// once the Waker is closed.
func (w *Waker) Wake() {
	w.mu.RLock()
	if !w.closed {
		_, _ = unix.Write(w.fd, wakeOne) // EAGAIN only when already readable
	}
	w.mu.RUnlock()
}

// Drain makes the descriptor unreadable again, for the owner after a poll
// reported it.
func (w *Waker) Drain() {
	w.mu.RLock()
	if !w.closed {
		_, _ = unix.Read(w.fd, w.buf[:])
	}
	w.mu.RUnlock()
}

// Close releases the descriptor once no Wake is running; later calls do
// nothing.
func (w *Waker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return unix.Close(w.fd)
}
