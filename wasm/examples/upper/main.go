//go:build wasip1

// Command upper is the example WebAssembly handler: the ASCII letters of
// each message's last frame upper-cased, in place. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o upper.wasm ./wasm/examples/upper
package main

import "github.com/ztopo/ztopo/wasm"

func init() {
	wasm.Handle(func(frames [][]byte) ([][]byte, error) {
		if len(frames) == 0 {
			return nil, nil
		}
		last := frames[len(frames)-1]
		for i, b := range last {
			if 'a' <= b && b <= 'z' {
				last[i] = b - 'a' + 'A'
			}
		}
		return frames, nil
	})
}

func main() {}
