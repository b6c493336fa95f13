package zbatch

/*
#include <zmq.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>

static long zb_now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// zb_events sets a socket item's revents from ZMQ_EVENTS (which also
// processes the socket's pending commands, re-arming its ZMQ_FD): 1 when
// ready, 0 when not, -1 on error.
static int zb_events(zmq_pollitem_t *it) {
	uint32_t ev;
	size_t len = sizeof ev;
	if (zmq_getsockopt(it->socket, ZMQ_EVENTS, &ev, &len) != 0)
		return -1;
	it->revents = (short)(ev & (uint32_t)it->events);
	return it->revents != 0;
}

// zb_poll is zmq_poll (libzmq 4.3, sockets that are not thread-safe)
// without its redundant work. zmq_poll looks at every socket's ZMQ_EVENTS
// after a poll(2) with no timeout, again after the waiting poll(2), and
// again after any wake-up; each look costs a getpid and a poll(2) inside
// libzmq. Here a socket's events are looked at once before the wait, not
// at all when skip says the owner knows its descriptor is armed (its last
// use was a receive that failed with EAGAIN, or it was not used since a
// look that found it idle), and after the wait only when its descriptor
// fired. Items with no events are left out. zfd caches each socket's
// ZMQ_FD (-2: not asked yet). armed reports, per socket item, that this
// call left it idle and its descriptor armed.
static int zb_poll(zmq_pollitem_t *items, struct pollfd *pfds, int *zfd, unsigned char *skip,
                   unsigned char *armed, int n, long timeout) {
	int ready = 0;
	for (int i = 0; i < n; i++) {
		zmq_pollitem_t *it = &items[i];
		it->revents = 0;
		pfds[i].revents = 0;
		if (it->events == 0) {
			pfds[i].fd = -1;
			continue;
		}
		if (it->socket) {
			if (zfd[i] == -2) {
				size_t len = sizeof zfd[i];
				if (zmq_getsockopt(it->socket, ZMQ_FD, &zfd[i], &len) != 0) {
					zfd[i] = -2;
					return -1;
				}
			}
			pfds[i].fd = zfd[i];
			pfds[i].events = POLLIN;
			if (!skip[i]) {
				int r = zb_events(it);
				if (r < 0)
					return -1;
				ready += r;
			}
		} else {
			pfds[i].fd = it->fd;
			pfds[i].events = (short)((it->events & ZMQ_POLLIN ? POLLIN : 0) | (it->events & ZMQ_POLLOUT ? POLLOUT : 0) |
			                         (it->events & ZMQ_POLLPRI ? POLLPRI : 0));
		}
	}
	long deadline = timeout > 0 ? zb_now_ms() + timeout : 0;
	for (;;) {
		long wait = timeout;
		if (ready) {
			wait = 0;
		} else if (timeout > 0) {
			wait = deadline - zb_now_ms();
			if (wait < 0)
				wait = 0;
		}
		if (poll(pfds, (nfds_t)n, (int)wait) < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			if (pfds[i].fd < 0 || pfds[i].revents == 0)
				continue;
			zmq_pollitem_t *it = &items[i];
			short re = pfds[i].revents;
			pfds[i].revents = 0;
			if (it->socket) {
				if (it->revents == 0) {
					int r = zb_events(it);
					if (r < 0)
						return -1;
					ready += r;
				}
				continue;
			}
			short ev = 0;
			if (re & POLLIN)
				ev |= ZMQ_POLLIN;
			if (re & POLLOUT)
				ev |= ZMQ_POLLOUT;
			if (re & POLLPRI)
				ev |= ZMQ_POLLPRI;
			if (re & ~(POLLIN | POLLOUT | POLLPRI))
				ev |= ZMQ_POLLERR;
			if (ev && it->revents == 0)
				ready++;
			it->revents = ev;
		}
		if (ready || timeout == 0 || (timeout > 0 && zb_now_ms() >= deadline))
			break;
	}
	for (int i = 0; i < n; i++)
		armed[i] = items[i].socket && items[i].events && items[i].revents == 0;
	return ready;
}
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
//
// Unlike zmq_poll it can skip looking at a socket before it waits, when
// the owner says that nothing can be waiting unseen (Drained, Untouched):
// in a request-reply loop that is one getpid and one poll(2) less per
// socket and message.
type Poller struct {
	items []C.zmq_pollitem_t
	socks []*zmq4.Socket // nil for a descriptor; for the fallback
	pfds  []C.struct_pollfd
	zfd   []C.int   // each socket's ZMQ_FD, -2 until asked
	skip  []C.uchar // the next Poll need not look at the socket first
	armed []C.uchar // the last Poll left the socket idle and armed
	// the owner's word for the next Poll
	drained, untouched []bool
}

// Add watches s for events and returns its index.
func (p *Poller) Add(s *zmq4.Socket, events zmq4.State) int {
	return p.add(C.zmq_pollitem_t{socket: handle(s), events: C.short(events)}, s)
}

// AddFd watches a file descriptor for events (zmq4.POLLIN: readable) and
// returns its index.
func (p *Poller) AddFd(fd int, events zmq4.State) int {
	return p.add(C.zmq_pollitem_t{fd: C.int(fd), events: C.short(events)}, nil)
}

func (p *Poller) add(it C.zmq_pollitem_t, s *zmq4.Socket) int {
	p.items = append(p.items, it)
	p.socks = append(p.socks, s)
	p.pfds = append(p.pfds, C.struct_pollfd{})
	p.zfd = append(p.zfd, -2)
	p.skip = append(p.skip, 0)
	p.armed = append(p.armed, 0)
	p.drained = append(p.drained, false)
	p.untouched = append(p.untouched, false)
	return len(p.items) - 1
}

// Update changes what item i is watched for (0: nothing).
func (p *Poller) Update(i int, events zmq4.State) {
	if p.items[i].events != C.short(events) {
		p.armed[i] = 0
	}
	p.items[i].events = C.short(events)
}

// Drained tells the next Poll that the owner's last use of socket item i
// was a receive that failed with EAGAIN: libzmq has processed everything
// pending for it, so its descriptor will fire when a message comes, and
// the Poll need not look at it before waiting.
func (p *Poller) Drained(i int) { p.drained[i] = true }

// Untouched tells the next Poll that the owner has not used socket item i
// since the last Poll, nor let anything else (another poller, a proxy) look
// at it. If that Poll found it idle, the next need not look at it before
// waiting.
func (p *Poller) Untouched(i int) { p.untouched[i] = true }

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
	for i := range p.items {
		p.skip[i] = 0
		if p.drained[i] || (p.untouched[i] && p.armed[i] != 0) {
			p.skip[i] = 1
		}
		p.drained[i], p.untouched[i] = false, false
	}
	if !Fast {
		return p.pollSlow(timeout)
	}
	n, err := C.zb_poll(&p.items[0], &p.pfds[0], &p.zfd[0], &p.skip[0], &p.armed[0], C.int(len(p.items)), C.long(millis(timeout)))
	if n < 0 {
		for i := range p.armed {
			p.armed[i] = 0
		}
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
