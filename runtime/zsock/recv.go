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

// zt_discard receives, without waiting and without copying anything out,
// up to max whole messages. It returns how many came and adds their bytes
// to *bytes; *err is the errno that ended the loop (0: max reached). The
// rest of a message is always there with its first frame: a signal inside
// one is retried.
static long zt_discard(void *s, long max, zt_rx *rx, unsigned long long *bytes, int *err) {
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

// zt_sendrep sends the message of nf frames laid end to end in buf up to
// count times, every one without waiting. It returns how many went out;
// *err is the errno that stopped it (EAGAIN: the peer is full), 0 when all
// did. A frame refused with EINTR was not taken and is sent again.
static long zt_sendrep(void *s, const char *buf, const size_t *sizes, int nf, long count, int *err) {
	*err = 0;
	for (long k = 0; k < count; k++) {
		size_t off = 0;
		for (int i = 0; i < nf; i++) {
			int f = i < nf - 1 ? ZMQ_SNDMORE : 0;
			if (i == 0) {
				f |= ZMQ_DONTWAIT;
			}
			while (zmq_send(s, buf + off, sizes[i], f) < 0) {
				if (errno != EINTR) {
					*err = errno;
					return k;
				}
			}
			off += sizes[i];
		}
	}
	return count;
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
	st := s.rxOf()
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

// rxOf returns s's receive state, made on first use.
func (s *Socket) rxOf() *rxState {
	if s.rxs == nil {
		s.rxs = &rxState{rx: new(C.zt_rx), scratch: make([]byte, scratchSize)}
	}
	return s.rxs
}

// discardBatch bounds the messages one Discard takes, so that a node that
// discards still looks at its control socket often.
const discardBatch = 4096

// Discard receives up to max whole messages without waiting and without
// copying them into Go (at most discardBatch), counting them; it is for a
// node whose handler only counts what it gets. It returns how many came,
// and an error satisfying IsAgain once nothing more waits.
func (s *Socket) Discard(max int) (int, error) {
	max = min(max, discardBatch)
	if max <= 0 {
		return 0, nil
	}
	if !zbatch.Fast {
		for n := 0; n < max; n++ {
			if _, err := s.Recv(zmq4.DONTWAIT); err != nil {
				return n, err
			}
		}
		return max, nil
	}
	st := s.rxOf()
	var bytes C.ulonglong
	var errno C.int
	n := int(C.zt_discard(handle(s.Z), C.long(max), st.rx, &bytes, &errno))
	s.Stats.msgsIn.Add(uint64(n))
	s.Stats.bytesIn.Add(uint64(bytes))
	if errno != 0 {
		return n, zmq4.Errno(syscall.Errno(errno))
	}
	return n, nil
}

// SendRepeat sends the message frames up to n times without waiting, in
// one cgo call, counting what went out. It returns how many did, and an
// error satisfying IsAgain when the peer stopped taking them.
func (s *Socket) SendRepeat(frames [][]byte, n int) (int, error) {
	if len(frames) == 0 || n <= 0 {
		return 0, nil
	}
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	if !zbatch.Fast || len(frames) > 64 {
		for k := 0; k < n; k++ {
			if err := s.Send(frames, zmq4.DONTWAIT); err != nil {
				return k, err
			}
		}
		return n, nil
	}
	st := s.txOf()
	buf := st.buf[:0]
	sizes := st.sizes[:0]
	for _, f := range frames {
		buf = append(buf, f...)
		sizes = append(sizes, C.size_t(len(f)))
	}
	st.buf, st.sizes = buf, sizes
	var p *C.char
	if len(buf) > 0 {
		p = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	var errno C.int
	sent := int(C.zt_sendrep(handle(s.Z), p, &sizes[0], C.int(len(sizes)), C.long(n), &errno))
	s.Stats.msgsOut.Add(uint64(sent))
	s.Stats.bytesOut.Add(uint64(sent * size))
	if errno != 0 {
		err := zmq4.Errno(syscall.Errno(errno))
		if !IsAgain(err) {
			s.Stats.sendErrors.Add(1)
		}
		return sent, err
	}
	return sent, nil
}

// txState is SendRepeat's buffer: the message laid flat for C.
type txState struct {
	buf   []byte
	sizes []C.size_t
}

func (s *Socket) txOf() *txState {
	if s.txs == nil {
		s.txs = &txState{sizes: make([]C.size_t, 0, 4)}
	}
	return s.txs
}

func (s *Socket) recvFramePebbe(flags zmq4.Flag) ([]byte, bool, error) {
	b, err := s.Z.RecvBytes(flags)
	if err != nil {
		return nil, false, err
	}
	more, err := s.Z.GetRcvmore()
	return b, more, err
}
