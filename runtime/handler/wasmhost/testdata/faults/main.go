//go:build wasip1

// Command faults is the wasm handler the host's tests run: its payload
// says what to do. Built by the tests with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o faults.wasm .
package main

import (
	"errors"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ztopo/ztopo/wasm"
)

// trap executes the WebAssembly instruction unreachable (trap_wasm.s).
func trap()

var (
	sink  []byte
	spins int
	calls int
)

func init() {
	wasm.Handle(func(frames [][]byte) ([][]byte, error) {
		calls++
		last := frames[len(frames)-1]
		cmd, arg, _ := strings.Cut(string(last), ":")
		switch cmd {
		case "trap":
			trap()
		case "oob":
			p := (*byte)(unsafe.Pointer(uintptr(0xfffffff0)))
			sink = []byte{*p}
		case "oom":
			sink = make([]byte, 1<<30)
		case "loop":
			for {
				spins++
			}
		case "fail":
			return nil, errors.New("refused: " + arg)
		case "panic":
			panic("boom")
		case "drop":
			return nil, nil
		case "calls":
			// How many messages this instance has seen: a replaced
			// instance starts again from 1.
			return [][]byte{[]byte(strconv.Itoa(calls))}, nil
		case "big":
			n, _ := strconv.Atoi(arg)
			return [][]byte{[]byte("x"), make([]byte, n)}, nil
		case "split":
			var out [][]byte
			for _, w := range strings.Fields(arg) {
				out = append(out, []byte(w))
			}
			return out, nil
		}
		// Otherwise: "V2:" and the text upper-cased, a new frame (the
		// second version of upper in the swap tests).
		out := append(make([]byte, 0, 3+len(last)), "V2:"...)
		for _, b := range last {
			if 'a' <= b && b <= 'z' {
				b = b - 'a' + 'A'
			}
			out = append(out, b)
		}
		frames[len(frames)-1] = out
		return frames, nil
	})
}

func main() {}
