//go:build wasip1

package wasm

import "unsafe"

var (
	handler Handler
	in      []byte   // the buffer the host writes messages into
	frames  [][]byte // views into in, reused
	out     []byte   // the encoding of frames that are not in place, reused
)

// Handle registers h as the module's handler. Call it from an init
// function, once.
func Handle(h Handler) {
	if handler != nil {
		panic("wasm: Handle called twice")
	}
	handler = h
}

//go:wasmimport ztopo fail
func hostFail(addr, n uint32)

//go:wasmexport ztopo_buffer
func ztopoBuffer(size uint32) uint32 {
	if uint32(cap(in)) < size {
		in = make([]byte, size)
	}
	in = in[:cap(in)]
	return addr(in)
}

//go:wasmexport ztopo_handle
func ztopoHandle(n uint32) (result uint64) {
	if handler == nil {
		fail("no handler registered: call wasm.Handle in an init function")
		return 0
	}
	if int(n) > len(in) {
		fail("message larger than the buffer")
		return 0
	}
	msg := in[:n]
	// Frames and inPlace, written out here: a call costs a Go module
	// more than the decoding of a small message does.
	fs := frames[:0]
	for b := msg; len(b) > 0; {
		if len(b) < 4 {
			fail(ErrBadEncoding.Error())
			return 0
		}
		l := load32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			fail(ErrBadEncoding.Error())
			return 0
		}
		fs = append(fs, b[:l:l])
		b = b[l:]
	}
	if cap(fs) != cap(frames) {
		frames = fs // grown: a pointer store, with its write barrier, only then
	}
	// recover is a call into the runtime, whose code is far from this
	// one's: only a handler that did not return (it panicked) pays for it.
	returned := false
	defer func() {
		if returned {
			return
		}
		if r := recover(); r != nil {
			fail("panic: " + panicText(r))
			result = 0
		}
	}()
	res, err := handler(fs)
	returned = true
	if err != nil {
		fail(err.Error())
		return 0
	}
	if len(res) == 0 {
		return 0
	}
	// The result is the input as it stands when it is the message's own
	// frames, each where it was decoded (changed in place or not).
	p := 0
	for _, f := range res {
		if len(msg)-p < 4 {
			p = -1
			break
		}
		l := int(load32(msg[p:]))
		if len(f) != l || (l > 0 && &f[0] != &msg[p+4]) {
			p = -1
			break
		}
		p += 4 + l
	}
	if p == len(msg) {
		return uint64(addr(msg))<<32 | uint64(n)
	}
	out = AppendFrames(out[:0], res)
	if len(out) == 0 {
		return 0
	}
	return uint64(addr(out))<<32 | uint64(len(out))
}

func fail(text string) {
	if text == "" {
		text = "error"
	}
	b := []byte(text)
	hostFail(addr(b), uint32(len(b)))
}

// load32 is le32 as one 32-bit load: WebAssembly is little-endian and
// loads need no alignment, and Go's wasm backend does not merge the four
// byte loads of le32 into one.
func load32(b []byte) uint32 {
	_ = b[3]
	return *(*uint32)(unsafe.Pointer(unsafe.SliceData(b)))
}

func addr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
