// Package wasm is the Go SDK for ztopo's WebAssembly handlers: a node with
// `handler: {wasm: upper.wasm}` runs the module inside its own process, one
// call per message, sandboxed, and swaps to a rebuilt module while traffic
// flows.
//
// A handler is a Go program built for WASI preview 1 as a reactor:
//
//	//go:build wasip1
//
//	package main
//
//	import "github.com/ztopo/ztopo/wasm"
//
//	func init() {
//		wasm.Handle(func(frames [][]byte) ([][]byte, error) {
//			last := frames[len(frames)-1]
//			for i, b := range last {
//				if 'a' <= b && b <= 'z' {
//					last[i] = b - 'a' + 'A'
//				}
//			}
//			return frames, nil
//		})
//	}
//
//	func main() {}
//
// built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o upper.wasm .
//
// Register the handler in init: a reactor's main is never run.
//
// The handler gets the message's frames (routing envelopes removed, as for
// every handler) and returns the frames to send on: nil drops the message,
// an error fails it (the node logs it, counts it, and answers a request
// with an error reply). The frames are views into a buffer the SDK reuses
// for the next message: change them in place and return them (the fastest
// path: nothing is copied out of the module), or return new slices; copy
// what you keep beyond the call. A panic fails the message, not the module.
//
// The ABI underneath (ztopo-wasm/1) is small enough to target from any
// language that compiles to WebAssembly; README.md in this directory
// describes it, and Frames/AppendFrames here are its frame encoding.
package wasm

import "errors"

// Handler handles one message; see the package documentation.
type Handler func(frames [][]byte) ([][]byte, error)

// ErrBadEncoding is returned by Frames for bytes that are not a sequence
// of length-prefixed frames.
var ErrBadEncoding = errors.New("wasm: bad frame encoding")

// Frames decodes buf — each frame a 4-byte little-endian length followed by
// its bytes — appending to dst views into buf.
func Frames(dst [][]byte, buf []byte) ([][]byte, error) {
	for len(buf) > 0 {
		if len(buf) < 4 {
			return dst, ErrBadEncoding
		}
		n := le32(buf)
		buf = buf[4:]
		if uint64(n) > uint64(len(buf)) {
			return dst, ErrBadEncoding
		}
		dst = append(dst, buf[:n:n])
		buf = buf[n:]
	}
	return dst, nil
}

// AppendFrames appends the encoding of frames to dst.
func AppendFrames(dst []byte, frames [][]byte) []byte {
	for _, f := range frames {
		n := uint32(len(f))
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
		dst = append(dst, f...)
	}
	return dst
}

// EncodedLen is the length of frames' encoding.
func EncodedLen(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += 4 + len(f)
	}
	return n
}

// le32 is the little-endian uint32 at the start of b. (The SDK does not
// import encoding/binary or fmt: they and what they import, reflect among
// them, would make every module larger and slower to compile and start.)
func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// panicText describes a recovered panic value without fmt: strings,
// errors and Stringers as themselves, integers in decimal.
func panicText(r any) string {
	switch v := r.(type) {
	case string:
		return v
	case error:
		return v.Error()
	case interface{ String() string }:
		return v.String()
	case int:
		return itoa(int64(v))
	case int64:
		return itoa(v)
	case int32:
		return itoa(int64(v))
	}
	return "a value that is not a string, an error or an integer"
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	u := uint64(n)
	if n < 0 {
		u = uint64(-n)
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if n < 0 {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
