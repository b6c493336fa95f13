package zsock

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <string.h>
#include <errno.h>

// zt_rx is a socket's receive state, allocated once per Socket: passing
// anything by address to C makes Go allocate it, so the message and the
// results live here rather than on the stack of every call.
typedef struct {
	zmq_msg_t msg;
	int more; // the frame has more frames after it
	int kept; // the frame did not fit dst: msg stays open for zt_take
} zt_rx;

// zt_recv receives one frame in a single cgo crossing: receive, RCVMORE
// (zmq_msg_more, not a getsockopt), copy to dst when it fits, close. It
// returns the frame's size, or -1 with errno set.
static long zt_recv(void *s, int flags, zt_rx *rx, void *dst, size_t cap) {
	zmq_msg_init(&rx->msg);
	if (zmq_msg_recv(&rx->msg, s, flags) < 0) {
		int e = errno;
		zmq_msg_close(&rx->msg);
		errno = e;
		return -1;
	}
	size_t n = zmq_msg_size(&rx->msg);
	rx->more = zmq_msg_more(&rx->msg);
	if (n <= cap) {
		if (n > 0) {
			memcpy(dst, zmq_msg_data(&rx->msg), n);
		}
		zmq_msg_close(&rx->msg);
		rx->kept = 0;
	} else {
		rx->kept = 1;
	}
	return (long)n;
}

// zt_take copies a kept frame to dst (n bytes, its whole size) and closes it.
static void zt_take(zt_rx *rx, void *dst, size_t n) {
	memcpy(dst, zmq_msg_data(&rx->msg), n);
	zmq_msg_close(&rx->msg);
}
*/
import "C"

import (
	"syscall"
	"unsafe"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
)

// scratchSize is the receive buffer of a socket: frames up to this size
// cost one cgo call; larger ones a second one to copy them out.
const scratchSize = 4096

// handle is the libzmq socket behind z; valid while z is open.
func handle(z *zmq4.Socket) unsafe.Pointer {
	h, _ := zbatch.Handle(z)
	return h
}

// rxState is a Socket's receive state, made on its first receive.
type rxState struct {
	rx      *C.zt_rx
	scratch []byte
}

// recvFrame receives one frame into a new slice of its exact size.
func (s *Socket) recvFrame(flags zmq4.Flag) (b []byte, more bool, err error) {
	if !zbatch.Fast {
		return s.recvFramePebbe(flags)
	}
	st := s.rxs
	if st == nil {
		st = &rxState{rx: new(C.zt_rx), scratch: make([]byte, scratchSize)}
		s.rxs = st
	}
	n, errno := C.zt_recv(handle(s.Z), C.int(flags), st.rx, unsafe.Pointer(&st.scratch[0]), C.size_t(len(st.scratch)))
	if n < 0 {
		if e, ok := errno.(syscall.Errno); ok {
			return nil, false, zmq4.Errno(e)
		}
		return nil, false, errno
	}
	if n == 0 {
		b = []byte{}
	} else {
		b = make([]byte, int(n))
		if st.rx.kept != 0 {
			C.zt_take(st.rx, unsafe.Pointer(&b[0]), C.size_t(n))
		} else {
			copy(b, st.scratch[:n])
		}
	}
	return b, st.rx.more != 0, nil
}

func (s *Socket) recvFramePebbe(flags zmq4.Flag) ([]byte, bool, error) {
	b, err := s.Z.RecvBytes(flags)
	if err != nil {
		return nil, false, err
	}
	more, err := s.Z.GetRcvmore()
	return b, more, err
}
