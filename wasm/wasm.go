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

import (
	"encoding/binary"
	"errors"
)

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
		n := binary.LittleEndian.Uint32(buf)
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
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f)))
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
