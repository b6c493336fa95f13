//go:build wasip1

package wasm

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

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
	var err error
	frames, err = Frames(frames[:0], msg)
	if err != nil {
		fail(err.Error())
		return 0
	}
	defer func() {
		if r := recover(); r != nil {
			fail(fmt.Sprint("panic: ", r))
			result = 0
		}
	}()
	res, err := handler(frames)
	if err != nil {
		fail(err.Error())
		return 0
	}
	if len(res) == 0 {
		return 0
	}
	if inPlace(res, msg) {
		return uint64(addr(msg))<<32 | uint64(n)
	}
	out = AppendFrames(out[:0], res)
	if len(out) == 0 {
		return 0
	}
	return uint64(addr(out))<<32 | uint64(len(out))
}

// inPlace reports whether res is the message's own frames, each where it
// was decoded (changed in place or not), so that the input buffer is the
// output as it stands.
func inPlace(res [][]byte, msg []byte) bool {
	p := 0
	for _, f := range res {
		if len(msg)-p < 4 {
			return false
		}
		l := int(binary.LittleEndian.Uint32(msg[p:]))
		if len(f) != l || (l > 0 && &f[0] != &msg[p+4]) {
			return false
		}
		p += 4 + l
	}
	return p == len(msg)
}

func fail(text string) {
	if text == "" {
		text = "error"
	}
	b := []byte(text)
	hostFail(addr(b), uint32(len(b)))
}

func addr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
