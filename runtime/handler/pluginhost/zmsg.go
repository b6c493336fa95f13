package pluginhost

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <string.h>
#include <errno.h>

#define ZT_MAXF 1024

// zt_rxb is the loop's receive state, allocated once: passing anything
// by address to C makes Go allocate it, so the message and the results
// live here rather than on the stack of every call.
typedef struct {
	zmq_msg_t msg;
	int err;   // errno that ended the batch (EAGAIN when drained)
	int kept;  // the last frame did not fit: msg stays open for zt_take
	int more[ZT_MAXF];
	size_t size[ZT_MAXF];
} zt_rxb;

// zt_recvb receives, without waiting, whole messages into dst in a single
// cgo crossing until the socket is drained, dst is full or ZT_MAXF frames
// are in. It returns the number of frames; the batch ends mid-message
// only when a frame does not fit (kept) or the frame limit is reached.
static int zt_recvb(void *s, zt_rxb *rx, char *dst, size_t cap) {
	int nf = 0;
	size_t used = 0;
	rx->err = 0;
	rx->kept = 0;
	while (nf < ZT_MAXF) {
		zmq_msg_init(&rx->msg);
		if (zmq_msg_recv(&rx->msg, s, ZMQ_DONTWAIT) < 0) {
			rx->err = errno;
			zmq_msg_close(&rx->msg);
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
		if (!more && (cap - used < 256 || nf > ZT_MAXF - 16)) {
			return nf;
		}
	}
	return nf;
}

// zt_take copies a kept frame to dst (n bytes, its whole size) and closes it.
static void zt_take(zt_rxb *rx, void *dst, size_t n) {
	if (n > 0) {
		memcpy(dst, zmq_msg_data(&rx->msg), n);
	}
	zmq_msg_close(&rx->msg);
}

// zt_sendm sends n frames laid end to end in buf as one message. It
// returns 0, or -1 with errno set.
static int zt_sendm(void *s, const char *buf, const size_t *sizes, int n) {
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		if (zmq_send(s, buf + off, sizes[i], i < n - 1 ? ZMQ_SNDMORE : 0) < 0) {
			return -1;
		}
		off += sizes[i];
	}
	return 0;
}
*/
import "C"

import (
	"syscall"
	"unsafe"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/zsock"
)

// fastIO: with libzmq's own socket handle (zsock.Handle) the loop receives
// a whole batch of messages, and sends a message, in one cgo call; pebbe's
// RecvBytes makes five per frame and SendBytes one. Should a pebbe release
// change the layout zsock checks, fastIO is false and the loop uses pebbe's
// calls.
var _, fastIO = zsock.Handle(nil)

func handle(z *zmq4.Socket) unsafe.Pointer {
	h, _ := zsock.Handle(z)
	return h
}

const (
	rxScratch = 64 << 10
	maxFrames = C.ZT_MAXF
	// txFlat bounds the messages sent from one flat copy; bigger ones go
	// frame by frame rather than grow the buffer for good.
	txFlat = 64 << 10
)

// zio is the loop's receive and send state, shared by every generation:
// a batch is handled completely before the next receive.
type zio struct {
	rx      *C.zt_rxb
	scratch []byte
	frames  [][]byte // frames of the current batch, aliasing scratch
	msg     [][]byte
	tx      []byte
	txSizes []C.size_t
}

func newZIO() *zio {
	return &zio{
		rx:      new(C.zt_rxb),
		scratch: make([]byte, rxScratch),
		frames:  make([][]byte, 0, maxFrames),
		txSizes: make([]C.size_t, 0, 8),
	}
}

// recvBatch receives what sock has, a batch at a time, and calls fn with
// each message. The frames alias a buffer reused by the next batch: fn
// copies what it keeps. It reports whether anything came and the error
// that ended it (EAGAIN once drained).
func (z *zio) recvBatch(sock *zmq4.Socket, fn func([][]byte)) (bool, error) {
	nf := int(C.zt_recvb(handle(sock), z.rx, (*C.char)(unsafe.Pointer(&z.scratch[0])), C.size_t(len(z.scratch))))
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
			C.zt_take(z.rx, p, C.size_t(n))
			frames = append(frames, b)
			continue
		}
		frames = append(frames, z.scratch[off:off+n:off+n])
		off += n
	}
	// No errno: the batch stopped early and more may wait.
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
		msg := make([][]byte, 0, nf-start+4)
		for _, f := range frames[start:nf] {
			msg = append(msg, append([]byte(nil), f...))
		}
		for {
			b, err := sock.RecvBytes(zmq4.DONTWAIT)
			if err != nil {
				return true, err
			}
			msg = append(msg, b)
			more, err := sock.GetRcvmore()
			if err != nil {
				return true, err
			}
			if !more {
				break
			}
		}
		fn(msg)
	}
	clear(frames)
	return nf > 0, err
}

// sendReq sends [peer, REQ, id, frames...] in one cgo call.
func (z *zio) sendReq(sock *zmq4.Socket, peer, id []byte, frames [][]byte) error {
	if !fastIO {
		return sendReq(sock, peer, id, frames)
	}
	head := [3][]byte{peer, reqCmd, id}
	total := 0
	for _, f := range head {
		total += len(f)
	}
	for _, f := range frames {
		total += len(f)
	}
	if total > txFlat {
		return sendReq(sock, peer, id, frames)
	}
	buf := z.tx[:0]
	sizes := z.txSizes[:0]
	for _, f := range head {
		buf = append(buf, f...)
		sizes = append(sizes, C.size_t(len(f)))
	}
	for _, f := range frames {
		buf = append(buf, f...)
		sizes = append(sizes, C.size_t(len(f)))
	}
	z.tx, z.txSizes = buf, sizes
	var p *C.char
	if len(buf) > 0 {
		p = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	if rc, errno := C.zt_sendm(handle(sock), p, &sizes[0], C.int(len(sizes))); rc < 0 {
		if e, ok := errno.(syscall.Errno); ok {
			return zmq4.Errno(e)
		}
		return errno
	}
	return nil
}
