package zbatch

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <poll.h>

// ZB_BURST bounds the messages one direction moves before the loop looks
// at the other direction and at the control socket.
#define ZB_BURST 256

enum { ZB_ACTIVE, ZB_PAUSED, ZB_TERMINATED };

// zb_dir is one direction of the proxy: messages from `from` to `to`.
typedef struct {
	void *from, *to;
	int can_recv;      // from is a socket type that receives
	int held;          // msg is a first frame `to` refused (EAGAIN)
	zmq_msg_t msg;
	uint64_t *in, *out; // statistics: from's msgs/bytes in, to's msgs/bytes out
} zb_dir;

static int zb_receives(void *s) {
	int t = 0;
	size_t n = sizeof t;
	if (zmq_getsockopt(s, ZMQ_TYPE, &t, &n) != 0) {
		return 1;
	}
	return !(t == ZMQ_PUSH || t == ZMQ_PUB);
}

// zb_capture sends a copy of msg to capture, as zmq_proxy does.
static int zb_capture(void *capture, zmq_msg_t *msg, int more) {
	if (!capture) {
		return 0;
	}
	zmq_msg_t c;
	zmq_msg_init(&c);
	if (zmq_msg_copy(&c, msg) < 0) {
		zmq_msg_close(&c);
		return -1;
	}
	if (zmq_msg_send(&c, capture, more ? ZMQ_SNDMORE : 0) < 0) {
		zmq_msg_close(&c);
		return -1;
	}
	return 0;
}

// zb_finish sends d->msg, a first frame `to` accepted or will accept now,
// then the rest of its message (already there: messages arrive whole, and
// once the first frame is accepted the rest is). Returns 1 when it was
// sent, 0 when `to` still refuses the first frame (held), -1 on error.
static int zb_finish(zb_dir *d, void *capture) {
	int more = zmq_msg_more(&d->msg);
	size_t size = zmq_msg_size(&d->msg);
	if (!d->held && zb_capture(capture, &d->msg, more) < 0) {
		return -1;
	}
	while (zmq_msg_send(&d->msg, d->to, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
		if (errno == EAGAIN) {
			d->held = 1;
			return 0;
		}
		if (errno != EINTR) {
			return -1;
		}
	}
	d->held = 0;
	uint64_t bytes = size;
	while (more) {
		while (zmq_msg_recv(&d->msg, d->from, 0) < 0) {
			if (errno != EINTR) {
				return -1;
			}
		}
		more = zmq_msg_more(&d->msg);
		bytes += zmq_msg_size(&d->msg);
		if (zb_capture(capture, &d->msg, more) < 0) {
			return -1;
		}
		while (zmq_msg_send(&d->msg, d->to, more ? ZMQ_SNDMORE : 0) < 0) {
			if (errno != EINTR) {
				return -1;
			}
		}
	}
	d->in[0]++;
	d->in[1] += bytes;
	d->out[0]++;
	d->out[1] += bytes;
	return 1;
}

// zb_burst moves up to ZB_BURST messages without waiting. It returns how
// many moved, or -1; *idle is set when it stopped for lack of messages or
// room rather than at the bound.
static int zb_burst(zb_dir *d, void *capture, int *idle) {
	int n = 0;
	*idle = 1;
	if (d->held) {
		int rc = zb_finish(d, capture);
		if (rc <= 0) {
			return rc;
		}
		n++;
	}
	if (!d->can_recv) {
		return n;
	}
	for (; n < ZB_BURST; n++) {
		if (zmq_msg_recv(&d->msg, d->from, ZMQ_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				return n;
			}
			return -1;
		}
		int rc = zb_finish(d, capture);
		if (rc < 0) {
			return -1;
		}
		if (rc == 0) {
			return n;
		}
	}
	*idle = 0;
	return n;
}

// zb_command handles one command from the control socket, as
// zmq_proxy_steerable does (libzmq 4.3): PAUSE, RESUME, TERMINATE, and
// STATISTICS, answered with 8 frames of uint64 (frontend msgs in, bytes in,
// msgs out, bytes out; backend likewise). Returns the new state, or -1.
// *none (when not NULL) is set when no command was waiting: the receive
// said EAGAIN, after libzmq took every command it had for control.
static int zb_command(void *control, void *capture, int state, uint64_t *stats, int *none) {
	zmq_msg_t m;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, control, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		if (none && errno == EAGAIN) {
			*none = 1;
		}
		return (errno == EAGAIN || errno == EINTR) ? state : -1;
	}
	if (zmq_msg_more(&m)) {
		zmq_msg_close(&m);
		errno = EINVAL;
		return -1;
	}
	if (zb_capture(capture, &m, 0) < 0) {
		zmq_msg_close(&m);
		return -1;
	}
	size_t n = zmq_msg_size(&m);
	const char *p = zmq_msg_data(&m);
	if (n == 5 && memcmp(p, "PAUSE", 5) == 0) {
		state = ZB_PAUSED;
	} else if (n == 6 && memcmp(p, "RESUME", 6) == 0) {
		state = ZB_ACTIVE;
	} else if (n == 9 && memcmp(p, "TERMINATE", 9) == 0) {
		state = ZB_TERMINATED;
	} else if (n == 10 && memcmp(p, "STATISTICS", 10) == 0) {
		for (int i = 0; i < 8; i++) {
			if (zmq_send(control, &stats[i], sizeof stats[i], i < 7 ? ZMQ_SNDMORE : 0) < 0) {
				zmq_msg_close(&m);
				return -1;
			}
		}
	}
	// Anything else is ignored (libzmq asserts).
	zmq_msg_close(&m);
	return state;
}

// zb_proxy is zmq_proxy_steerable(front, back, capture, control) that
// moves whole bursts between waits: it polls only when neither direction
// has anything to move, where libzmq's proxy polls before every message.
// It returns 0 after TERMINATE, -1 with errno set on an error (ETERM when
// the context ends).
static int zb_proxy(void *front, void *back, void *capture, void *control) {
	uint64_t stats[8] = {0};
	zb_dir dirs[2] = {
		{front, back, zb_receives(front), 0, {{0}}, &stats[0], &stats[6]},
		{back, front, zb_receives(back), 0, {{0}}, &stats[4], &stats[2]},
	};
	zmq_msg_init(&dirs[0].msg);
	zmq_msg_init(&dirs[1].msg);
	int state = ZB_ACTIVE, rc = 0;
	while (state != ZB_TERMINATED) {
		int all_idle = 1;
		if (state == ZB_ACTIVE) {
			for (int i = 0; i < 2; i++) {
				int idle;
				if (zb_burst(&dirs[i], capture, &idle) < 0) {
					rc = -1;
					goto out;
				}
				all_idle &= idle;
			}
		}
		if (!all_idle) {
			// Busy: look at the control socket without waiting.
			if (control && (state = zb_command(control, capture, state, stats, NULL)) < 0) {
				rc = -1;
				goto out;
			}
			continue;
		}
		zmq_pollitem_t items[3];
		int n = 0, ci = -1;
		if (state == ZB_ACTIVE) {
			for (int i = 0; i < 2; i++) {
				zb_dir *d = &dirs[i];
				if (d->held) {
					items[n++] = (zmq_pollitem_t){d->to, 0, ZMQ_POLLOUT, 0};
				} else if (d->can_recv) {
					items[n++] = (zmq_pollitem_t){d->from, 0, ZMQ_POLLIN, 0};
				}
			}
		}
		if (control) {
			ci = n;
			items[n++] = (zmq_pollitem_t){control, 0, ZMQ_POLLIN, 0};
		}
		if (n == 0) {
			errno = EINVAL;
			rc = -1;
			goto out;
		}
		if (zmq_poll(items, n, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			rc = -1;
			goto out;
		}
		if (ci >= 0 && (items[ci].revents & ZMQ_POLLIN)) {
			if ((state = zb_command(control, capture, state, stats, NULL)) < 0) {
				rc = -1;
				goto out;
			}
		}
	}
out:;
	int e = errno;
	zmq_msg_close(&dirs[0].msg);
	zmq_msg_close(&dirs[1].msg);
	errno = e;
	return rc;
}

// zb_fd fills p to poll socket s's ZMQ_FD for reading.
static int zb_fd(void *s, struct pollfd *p) {
	size_t n = sizeof p->fd;
	p->events = POLLIN;
	p->revents = 0;
	return zmq_getsockopt(s, ZMQ_FD, &p->fd, &n);
}

// zb_between is what a one-socket loop (zb_steer) does between two
// bursts: after a full burst (idle 0) it looks at the control socket without
// waiting; after a short one it handles a waiting command, or waits for
// sock (while ACTIVE) or control. Returns the new state, or -1.
//
// The wait polls the sockets' ZMQ_FDs itself, where zmq_poll would look
// at each socket's events before and after (four polls more a message,
// for a REP answered one request at a time): a receive that said EAGAIN
// has taken every command libzmq had for its socket, so the ZMQ_FD then
// signals whatever comes next. The short burst ended on such a receive
// on sock. *quiet says the same of control: its last receive said EAGAIN
// and its descriptor has not fired since, so it is not asked again.
static int zb_between(void *sock, void *control, int state, int idle, uint64_t *stats, int *quiet) {
	if (!idle || !*quiet) {
		int none = 0;
		state = zb_command(control, NULL, state, stats, &none);
		*quiet = none;
		if (state < 0 || state == ZB_TERMINATED || !idle || !none) {
			return state;
		}
	}
	struct pollfd fds[2];
	int n = 0;
	if (state == ZB_ACTIVE && zb_fd(sock, &fds[n++]) < 0) {
		return -1;
	}
	int ci = n;
	if (zb_fd(control, &fds[n++]) < 0) {
		return -1;
	}
	if (poll(fds, n, -1) < 0) {
		*quiet = 0;
		return errno == EINTR ? state : -1;
	}
	*quiet = fds[ci].revents == 0;
	return state;
}

// ZB_DONE is what a burst returns when its loop has done all it was asked.
#define ZB_DONE (-2)

// zb_burst_fn moves up to ZB_BURST of sock's messages without waiting,
// counting them in stats (zb_command's layout). It returns how many it
// moved, ZB_DONE, or -1 with errno set.
typedef int (*zb_burst_fn)(void *sock, void *arg, uint64_t *stats);

// zb_steer is the loop of the one-socket C loops (zb_echo, zb_sink): a
// burst while ACTIVE, then zb_between, until TERMINATE on control (it
// returns 0) or until the burst says ZB_DONE (1). -1 with errno set on an
// error.
static int zb_steer(void *sock, void *control, zb_burst_fn burst, void *arg, uint64_t *stats) {
	int state = ZB_ACTIVE, quiet = 0;
	while (state != ZB_TERMINATED) {
		int idle = 1;
		if (state == ZB_ACTIVE) {
			int n = burst(sock, arg, stats);
			if (n == ZB_DONE) {
				return 1;
			}
			if (n < 0) {
				return -1;
			}
			idle = n < ZB_BURST;
		}
		if ((state = zb_between(sock, control, state, idle, stats, &quiet)) < 0) {
			return -1;
		}
	}
	return 0;
}

// zb_echo_one answers one request waiting on the REP socket sock with its
// own frames: the whole request is read before the first reply frame goes
// out (a REP refuses to send before its request's last frame). Returns 1
// when one was answered, 0 when none was waiting, -1 on error. *fs is a
// growing array of *cap initialised messages, reused between calls.
static int zb_echo_one(void *sock, zmq_msg_t **fs, int *cap, uint64_t *stats) {
	int n = 0;
	uint64_t bytes = 0;
	for (;;) {
		if (n == *cap) {
			zmq_msg_t *g = realloc(*fs, 2 * (size_t)*cap * sizeof **fs);
			if (!g) {
				errno = ENOMEM;
				return -1;
			}
			for (int i = *cap; i < 2 * *cap; i++) {
				zmq_msg_init(&g[i]);
			}
			*fs = g;
			*cap *= 2;
		}
		// The first frame may not be there; the rest of a message is.
		while (zmq_msg_recv(&(*fs)[n], sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			if (n == 0 && errno == EAGAIN) {
				return 0;
			}
			if (errno != EINTR) {
				return -1;
			}
		}
		bytes += zmq_msg_size(&(*fs)[n]);
		if (!zmq_msg_more(&(*fs)[n++])) {
			break;
		}
	}
	// A REP never refuses a reply: its peer gone or full, libzmq drops it.
	for (int i = 0; i < n; i++) {
		while (zmq_msg_send(&(*fs)[i], sock, i < n - 1 ? ZMQ_SNDMORE : 0) < 0) {
			if (errno != EINTR) {
				return -1;
			}
		}
	}
	stats[0]++;
	stats[1] += bytes;
	stats[2]++;
	stats[3] += bytes;
	return 1;
}

// zb_frames is zb_echo's growing array of cap initialised messages,
// reused between requests.
typedef struct {
	zmq_msg_t *fs;
	int cap;
} zb_frames;

// zb_echo_burst answers up to ZB_BURST requests (a zb_burst_fn).
static int zb_echo_burst(void *sock, void *arg, uint64_t *stats) {
	zb_frames *f = arg;
	int n = 0;
	for (; n < ZB_BURST; n++) {
		int got = zb_echo_one(sock, &f->fs, &f->cap, stats);
		if (got < 0) {
			return -1;
		}
		if (got == 0) {
			break;
		}
	}
	return n;
}

// zb_echo answers every request on the REP socket sock with its own frames
// until TERMINATE on control, steered like zb_proxy (sock is its frontend:
// STATISTICS answers sock's messages and bytes in and out, and zeros for a
// backend). It returns 0 after TERMINATE, -1 with errno set on an error.
static int zb_echo(void *sock, void *control) {
	uint64_t stats[8] = {0};
	zb_frames f = {malloc(4 * sizeof(zmq_msg_t)), 4};
	if (!f.fs) {
		errno = ENOMEM;
		return -1;
	}
	for (int i = 0; i < f.cap; i++) {
		zmq_msg_init(&f.fs[i]);
	}
	int rc = zb_steer(sock, control, zb_echo_burst, &f, stats);
	int e = errno;
	for (int i = 0; i < f.cap; i++) {
		zmq_msg_close(&f.fs[i]);
	}
	free(f.fs);
	errno = e;
	return rc;
}

static int64_t zb_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// zb_taking is zb_sink's state between bursts.
typedef struct {
	zmq_msg_t m;
	uint64_t max;
	int64_t *out;
} zb_taking;

// zb_sink_burst takes up to ZB_BURST whole messages (a zb_burst_fn),
// ZB_DONE when it has taken max of them in all.
static int zb_sink_burst(void *sock, void *arg, uint64_t *stats) {
	zb_taking *t = arg;
	int n = 0, inside = 0, rc = 0;
	while (n < ZB_BURST || inside) {
		// The rest of a message is there with its first frame.
		if (zmq_msg_recv(&t->m, sock, inside ? 0 : ZMQ_DONTWAIT) < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN && !inside) {
				break;
			}
			return -1;
		}
		stats[1] += zmq_msg_size(&t->m);
		inside = zmq_msg_more(&t->m);
		if (!inside) {
			n++;
			if (stats[0]++ == 0) {
				t->out[2] = zb_now();
			}
			if (stats[0] >= t->max) {
				rc = ZB_DONE;
				break;
			}
		}
	}
	if (n > 0) {
		t->out[3] = zb_now();
	}
	return rc == ZB_DONE ? rc : n;
}

// zb_sink takes whole messages from sock without copying them out, until
// it has taken max of them (it returns 1) or until TERMINATE on control
// (0), steered like zb_proxy: STATISTICS answers sock's messages and bytes
// in, then six zeros. -1 with errno set on an error. out[0], out[1]: the
// messages and bytes taken; out[2], out[3]: when the first and the last of
// them came (ns since the epoch, the last to within one burst).
static int zb_sink(void *sock, void *control, uint64_t max, int64_t *out) {
	uint64_t stats[8] = {0};
	zb_taking t = {.max = max, .out = out};
	zmq_msg_init(&t.m);
	out[2] = out[3] = 0;
	int rc = zb_steer(sock, control, zb_sink_burst, &t, stats);
	int e = errno;
	zmq_msg_close(&t.m);
	out[0] = (int64_t)stats[0];
	out[1] = (int64_t)stats[1];
	errno = e;
	return rc;
}
*/
import "C"

import (
	"errors"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
)

// Proxy is zmq4.ProxySteerable(front, back, capture, control): the same
// steering commands (PAUSE, RESUME, TERMINATE, STATISTICS with the same
// answer), the same capture copies, but moving bursts of up to 256
// messages between polls. libzmq 4.3's proxy polls its sockets before
// every message, a system call each time; here a busy proxy polls only
// when both directions are drained. A first frame the receiving side
// refuses (its high-water mark) is held, and the proxy waits until it can
// take it, answering commands meanwhile. capture and control may be nil.
// It returns nil after TERMINATE.
func Proxy(front, back, capture, control *zmq4.Socket) error {
	if !Fast {
		return zmq4.ProxySteerable(front, back, capture, control)
	}
	var cap, ctl = handle(capture), handle(control)
	if rc, errno := C.zb_proxy(handle(front), handle(back), cap, ctl); rc < 0 {
		if e, ok := errno.(syscall.Errno); ok {
			return zmq4.Errno(e)
		}
		return errno
	}
	return nil
}

// Echo answers every request on the REP socket sock with its own frames,
// in C, until TERMINATE on control, which steers it as it steers Proxy
// (PAUSE, RESUME, STATISTICS: sock's messages and bytes in and out, then
// four zeros). A request is read whole before its reply goes out. It
// returns nil after TERMINATE, and an error on pebbe's fallback, where
// there is no C loop (Fast false).
func Echo(sock, control *zmq4.Socket) error {
	if !Fast {
		return errors.New("zbatch: no C echo loop on the fallback")
	}
	if rc, errno := C.zb_echo(handle(sock), handle(control)); rc < 0 {
		if e, ok := errno.(syscall.Errno); ok {
			return zmq4.Errno(e)
		}
		return errno
	}
	return nil
}

// Sunk is what one Sink run took.
type Sunk struct {
	Msgs, Bytes uint64
	First, Last time.Time // when the first and the last message came (zero: none)
	Full        bool      // it stopped at max
}

// Sink takes whole messages from sock in C without copying them out, until
// it has taken max (Full) or TERMINATE comes on control, which steers it as
// it steers Proxy (STATISTICS: sock's messages and bytes in, then six
// zeros). It is an error on pebbe's fallback (Fast false).
func Sink(sock, control *zmq4.Socket, max uint64) (Sunk, error) {
	if !Fast {
		return Sunk{}, errors.New("zbatch: no C sink loop on the fallback")
	}
	var out [4]C.int64_t
	rc, errno := C.zb_sink(handle(sock), handle(control), C.uint64_t(max), &out[0])
	r := Sunk{Msgs: uint64(out[0]), Bytes: uint64(out[1]), Full: rc == 1}
	if out[2] != 0 {
		r.First, r.Last = time.Unix(0, int64(out[2])), time.Unix(0, int64(out[3]))
	}
	if rc < 0 {
		if e, ok := errno.(syscall.Errno); ok {
			return r, zmq4.Errno(e)
		}
		return r, errno
	}
	return r, nil
}
