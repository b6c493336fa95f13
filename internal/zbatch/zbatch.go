// Package zbatch moves many ZeroMQ frames per cgo crossing: a whole batch
// of messages received in one call, a whole message sent in one. pebbe's
// RecvBytes makes five cgo calls per frame and a getsockopt for RCVMORE a
// sixth, and each SendBytes one; at a few hundred thousand messages a
// second that is most of the cost of a hop. The plugin host and the plugin
// SDK both speak the plugin protocol through it; zsock takes its socket
// handle from here.
//
// Everything here is for the one goroutine that owns the socket.
package zbatch

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <string.h>
#include <errno.h>

#define ZB_MAXF 1024

// zb_rx is a receiver's state, allocated once: passing anything by address
// to C makes Go allocate it, so the message and the results live here
// rather than on the stack of every call.
typedef struct {
	zmq_msg_t msg;
	int err;   // errno that ended the batch (EAGAIN when drained)
	int kept;  // the last frame did not fit: msg stays open for zb_take
	int more[ZB_MAXF];
	size_t size[ZB_MAXF];
} zb_rx;

// zb_recvb receives, without waiting, whole messages into dst until the
// socket is drained, dst is full or ZB_MAXF frames are in. It returns the
// number of frames; the batch ends mid-message only when a frame does not
// fit (kept) or the frame limit is reached. A signal (EINTR) ends the batch
// at a message boundary; inside a message the receive is retried, since
// the rest of a message is always there with its first frame.
static int zb_recvb(void *s, zb_rx *rx, char *dst, size_t cap) {
	int nf = 0;
	size_t used = 0;
	rx->err = 0;
	rx->kept = 0;
	while (nf < ZB_MAXF) {
		zmq_msg_init(&rx->msg);
		if (zmq_msg_recv(&rx->msg, s, ZMQ_DONTWAIT) < 0) {
			int e = errno;
			zmq_msg_close(&rx->msg);
			if (e == EINTR && nf > 0 && rx->more[nf - 1]) {
				continue;
			}
			rx->err = e;
			return nf;
		}
		size_t n = zmq_msg_size(&rx->msg);
		int more = zmq_msg_more(&rx->msg);
		rx->size[nf] = n;
		rx->more[nf] = more;
		nf++;
		if (n > cap - used) {
			rx->kept = 1;
			return nf;
		}
		if (n > 0) {
			memcpy(dst + used, zmq_msg_data(&rx->msg), n);
		}
		used += n;
		zmq_msg_close(&rx->msg);
		// Stop at a message boundary while a small message still fits.
		if (!more && (cap - used < 256 || nf > ZB_MAXF - 16)) {
			return nf;
		}
	}
	return nf;
}

// zb_take copies a kept frame to dst (n bytes, its whole size) and closes it.
static void zb_take(zmq_msg_t *msg, void *dst, size_t n) {
	if (n > 0) {
		memcpy(dst, zmq_msg_data(msg), n);
	}
	zmq_msg_close(msg);
}

// zb_frx is the state of one socket's frame-at-a-time receive (Frames).
typedef struct {
	zmq_msg_t msg;
	int more; // the frame has more frames after it
	int kept; // the frame did not fit dst: msg stays open for zb_take
} zb_frx;

// zb_recv1 receives one frame in a single cgo crossing: receive, RCVMORE
// (zmq_msg_more, not a getsockopt), copy to dst when it fits, close. It
// returns the frame's size, or -1 with errno set.
static long zb_recv1(void *s, int flags, zb_frx *rx, void *dst, size_t cap) {
	zmq_msg_init(&rx->msg);
	if (zmq_msg_recv(&rx->msg, s, flags) < 0) {
		int e = errno;
		zmq_msg_close(&rx->msg);
		errno = e;
		return -1;
	}
	size_t n = zmq_msg_size(&rx->msg);
	rx->more = zmq_msg_more(&rx->msg);
	rx->kept = n > cap;
	if (!rx->kept) {
		zb_take(&rx->msg, dst, n);
	}
	return (long)n;
}

// zb_discard receives, without waiting and without copying anything out,
// up to max whole messages. It returns how many came and adds their bytes
// to *bytes; *err is the errno that ended the loop (0: max reached). The
// rest of a message is always there with its first frame: a signal inside
// one is retried.
static long zb_discard(void *s, long max, zb_frx *rx, unsigned long long *bytes, int *err) {
	long n = 0;
	int inside = 0;
	*err = 0;
	zmq_msg_init(&rx->msg);
	while (n < max) {
		if (zmq_msg_recv(&rx->msg, s, inside ? 0 : ZMQ_DONTWAIT) < 0) {
			if (errno == EINTR && inside) {
				continue;
			}
			*err = errno;
			break;
		}
		*bytes += zmq_msg_size(&rx->msg);
		inside = zmq_msg_more(&rx->msg);
		if (!inside) {
			n++;
		}
	}
	zmq_msg_close(&rx->msg);
	return n;
}

// zb_sendm sends n frames laid end to end in buf as one message, the first
// with flags (ZMQ_DONTWAIT or 0). It returns 0, or -1 with errno set. A
// frame refused with EINTR was not taken and is sent again: libzmq checks
// for signals before it queues anything.
static int zb_sendm(void *s, const char *buf, const size_t *sizes, int n, int flags) {
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		int f = i < n - 1 ? ZMQ_SNDMORE : 0;
		if (i == 0) {
			f |= flags;
		}
		while (zmq_send(s, buf + off, sizes[i], f) < 0) {
			if (errno != EINTR) {
				return -1;
			}
		}
		off += sizes[i];
	}
	return 0;
}

// zb_sendrep sends the message of n frames laid end to end in buf up to
// count times, every one without waiting. It returns how many went out;
// *err is the errno that stopped it (EAGAIN: the peer is full), 0 when all
// did.
static long zb_sendrep(void *s, const char *buf, const size_t *sizes, int n, long count, int *err) {
	*err = 0;
	for (long k = 0; k < count; k++) {
		if (zb_sendm(s, buf, sizes, n, ZMQ_DONTWAIT) < 0) {
			*err = errno;
			return k;
		}
	}
	return count;
}
*/
import "C"

import (
	"reflect"
	"syscall"
	"unsafe"

	"github.com/pebbe/zmq4"
)

// socField locates pebbe/zmq4's libzmq socket handle (the unexported field
// `soc unsafe.Pointer` of zmq4.Socket, v1.4.0). The layout is checked once
// at start-up: should a pebbe release change it, Fast is false and every
// caller uses pebbe's own calls. The ztopo_slowpath build tag forces that
// fallback, so that the tests run it (`make test` does).
var socField, Fast = func() (uintptr, bool) {
	f, ok := reflect.TypeOf(zmq4.Socket{}).FieldByName("soc")
	if forceSlow || !ok || f.Type != reflect.TypeOf(unsafe.Pointer(nil)) {
		return 0, false
	}
	return f.Offset, true
}()

// Handle returns the libzmq socket (void *) behind z, for C helpers that
// drive it without pebbe's per-frame calls; ok is false when pebbe's layout
// is not the one checked at start-up. Valid while z is open, and only on the
// goroutine that owns z.
func Handle(z *zmq4.Socket) (h unsafe.Pointer, ok bool) {
	if !Fast || z == nil {
		return nil, false
	}
	return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(z), socField)), true
}

func handle(z *zmq4.Socket) unsafe.Pointer {
	h, _ := Handle(z)
	return h
}

const (
	rxScratch = 64 << 10
	maxFrames = C.ZB_MAXF
	// txFlat bounds the messages sent from one flat copy; bigger ones go
	// frame by frame rather than grow the buffer for good.
	txFlat = 64 << 10
	// slowBatch bounds the messages one Recv takes without Fast.
	slowBatch = 256
)

// IO is one socket owner's receive and send state. A batch is handled
// completely before the next Recv, so one IO serves every socket of its
// goroutine.
type IO struct {
	rx      *C.zb_rx
	scratch []byte
	frames  [][]byte // frames of the current batch, aliasing scratch
	tx      []byte
	txSizes []C.size_t
}

// New returns an IO ready for use.
func New() *IO {
	return &IO{
		rx:      new(C.zb_rx),
		scratch: make([]byte, rxScratch),
		frames:  make([][]byte, 0, maxFrames),
		txSizes: make([]C.size_t, 0, 8),
	}
}

// Transient reports whether err, from Recv, means only "nothing more for
// now": the socket is drained (EAGAIN) or a signal cut the batch short
// (EINTR).
func Transient(err error) bool {
	switch zmq4.AsErrno(err) {
	case zmq4.Errno(syscall.EAGAIN), zmq4.Errno(syscall.EINTR):
		return true
	}
	return false
}

// Recv receives what sock has without waiting, one batch, and calls fn with
// each message. The frames alias a buffer the next Recv reuses: fn copies
// what it keeps. It reports whether anything came, and the error that ended
// the batch: nil when it stopped early and more may wait, a Transient error
// when the socket is drained.
func (z *IO) Recv(sock *zmq4.Socket, fn func(msg [][]byte)) (bool, error) {
	if !Fast {
		return recvSlow(sock, fn)
	}
	nf := int(C.zb_recvb(handle(sock), z.rx, (*C.char)(unsafe.Pointer(&z.scratch[0])), C.size_t(len(z.scratch))))
	frames := z.frames[:0]
	off := 0
	for i := range nf {
		n := int(z.rx.size[i])
		if i == nf-1 && z.rx.kept != 0 {
			b := make([]byte, n)
			var p unsafe.Pointer
			if n > 0 {
				p = unsafe.Pointer(&b[0])
			}
			C.zb_take(&z.rx.msg, p, C.size_t(n))
			frames = append(frames, b)
			continue
		}
		frames = append(frames, z.scratch[off:off+n:off+n])
		off += n
	}
	var err error
	if z.rx.err != 0 {
		err = zmq4.Errno(syscall.Errno(z.rx.err))
	}
	start := 0
	for i := range nf {
		if z.rx.more[i] != 0 {
			continue
		}
		fn(frames[start : i+1])
		start = i + 1
	}
	if start < nf {
		// The batch ended inside a message: the rest of it is there
		// already (a message arrives whole); take it frame by frame.
		// pebbe retries a receive a signal interrupts.
		msg := make([][]byte, 0, nf-start+4)
		for _, f := range frames[start:nf] {
			msg = append(msg, append([]byte(nil), f...))
		}
		rest, rerr := recvRest(sock, msg)
		clear(frames)
		if rerr != nil {
			return true, rerr
		}
		fn(rest)
		return true, err
	}
	clear(frames)
	return nf > 0, err
}

// Clone copies frames (a received message that aliases the batch buffer)
// into one allocation for the bytes and one for the slice.
func Clone(frames [][]byte) [][]byte {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	buf := make([]byte, n)
	out := make([][]byte, len(frames))
	for i, f := range frames {
		k := copy(buf, f)
		out[i] = buf[:k:k]
		buf = buf[k:]
	}
	return out
}

// recvRest appends the remaining frames of a message to msg.
func recvRest(sock *zmq4.Socket, msg [][]byte) ([][]byte, error) {
	for {
		b, err := sock.RecvBytes(zmq4.DONTWAIT)
		if err != nil {
			return nil, err
		}
		msg = append(msg, b)
		more, err := sock.GetRcvmore()
		if err != nil {
			return nil, err
		}
		if !more {
			return msg, nil
		}
	}
}

// recvSlow is Recv through pebbe's calls.
func recvSlow(sock *zmq4.Socket, fn func([][]byte)) (bool, error) {
	got := false
	for range slowBatch {
		b, err := sock.RecvBytes(zmq4.DONTWAIT)
		if err != nil {
			return got, err
		}
		got = true
		msg := [][]byte{b}
		more, err := sock.GetRcvmore()
		if err != nil {
			return got, err
		}
		if more {
			if msg, err = recvRest(sock, msg); err != nil {
				return got, err
			}
		}
		fn(msg)
	}
	return got, nil
}

// Send sends head's frames then body's as one message, in one cgo call
// when the message is small enough to copy flat. flags apply to the first
// frame (zmq4.DONTWAIT or 0): a message is accepted whole or not at all. A
// signal never fails a send: an interrupted frame is sent again.
func (z *IO) Send(sock *zmq4.Socket, head, body [][]byte, flags zmq4.Flag) error {
	total := 0
	for _, f := range head {
		total += len(f)
	}
	for _, f := range body {
		total += len(f)
	}
	if !Fast || total > txFlat {
		return sendSlow(sock, head, body, flags)
	}
	buf := z.tx[:0]
	sizes := z.txSizes[:0]
	for _, part := range [2][][]byte{head, body} {
		for _, f := range part {
			buf = append(buf, f...)
			sizes = append(sizes, C.size_t(len(f)))
		}
	}
	z.tx, z.txSizes = buf, sizes
	if len(sizes) == 0 {
		return nil
	}
	var p *C.char
	if len(buf) > 0 {
		p = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	if rc, errno := C.zb_sendm(handle(sock), p, &sizes[0], C.int(len(sizes)), C.int(flags)); rc < 0 {
		if e, ok := errno.(syscall.Errno); ok {
			return zmq4.Errno(e)
		}
		return errno
	}
	return nil
}

// sendSlow is Send through pebbe's calls (which retry after a signal).
func sendSlow(sock *zmq4.Socket, head, body [][]byte, flags zmq4.Flag) error {
	n := len(head) + len(body)
	i := 0
	for _, part := range [2][][]byte{head, body} {
		for _, f := range part {
			fl := zmq4.Flag(0)
			if i == 0 {
				fl = flags
			}
			if i < n-1 {
				fl |= zmq4.SNDMORE
			}
			if _, err := sock.SendBytes(f, fl); err != nil {
				return err
			}
			i++
		}
	}
	return nil
}

// FrameScratch is a Frames' receive buffer: frames up to this size cost one
// cgo call; larger ones a second one to copy them out.
const FrameScratch = 4096

// Frames is one socket's frame-at-a-time receive and repeated send (zsock's
// Recv, Discard and SendRepeat), for callers that check Fast first. Like
// IO it belongs to the goroutine that owns the socket.
type Frames struct {
	rx      *C.zb_frx
	scratch []byte
	tx      []byte
	txSizes []C.size_t
}

// NewFrames returns a Frames ready for use.
func NewFrames() *Frames {
	return &Frames{rx: new(C.zb_frx), scratch: make([]byte, FrameScratch), txSizes: make([]C.size_t, 0, 4)}
}

// Recv receives one frame into a new slice of its exact size, in one cgo
// call when it fits the scratch buffer; more says whether frames follow.
func (f *Frames) Recv(sock *zmq4.Socket, flags zmq4.Flag) (b []byte, more bool, err error) {
	n, errno := C.zb_recv1(handle(sock), C.int(flags), f.rx, unsafe.Pointer(&f.scratch[0]), C.size_t(len(f.scratch)))
	if n < 0 {
		return nil, false, asErrno(errno)
	}
	b = make([]byte, int(n))
	if f.rx.kept != 0 {
		C.zb_take(&f.rx.msg, unsafe.Pointer(unsafe.SliceData(b)), C.size_t(n))
	} else {
		copy(b, f.scratch[:n])
	}
	return b, f.rx.more != 0, nil
}

// Discard receives, without waiting and without copying them into Go, up
// to max whole messages. It returns how many came and their bytes, and the
// error that ended it (nil when max came).
func (f *Frames) Discard(sock *zmq4.Socket, max int) (n int, bytes uint64, err error) {
	var b C.ulonglong
	var errno C.int
	n = int(C.zb_discard(handle(sock), C.long(max), f.rx, &b, &errno))
	if errno != 0 {
		err = zmq4.Errno(syscall.Errno(errno))
	}
	return n, uint64(b), err
}

// SendRepeat sends the message frames up to n times without waiting, in one
// cgo call. It returns how many went out, and the error that stopped it
// (EAGAIN when the peer stopped taking them).
func (f *Frames) SendRepeat(sock *zmq4.Socket, frames [][]byte, n int) (int, error) {
	buf, sizes := f.tx[:0], f.txSizes[:0]
	for _, fr := range frames {
		buf = append(buf, fr...)
		sizes = append(sizes, C.size_t(len(fr)))
	}
	f.tx, f.txSizes = buf, sizes
	var p *C.char
	if len(buf) > 0 {
		p = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	var errno C.int
	sent := int(C.zb_sendrep(handle(sock), p, &sizes[0], C.int(len(sizes)), C.long(n), &errno))
	if errno != 0 {
		return sent, zmq4.Errno(syscall.Errno(errno))
	}
	return sent, nil
}
