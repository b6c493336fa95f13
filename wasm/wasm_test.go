package wasm_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ztopo/ztopo/wasm"
)

func TestFrames(t *testing.T) {
	for _, frames := range [][][]byte{
		nil,
		{{}},
		{[]byte("a"), {}, []byte("hello")},
		{make([]byte, 70000)},
	} {
		enc := wasm.AppendFrames(nil, frames)
		if len(enc) != wasm.EncodedLen(frames) {
			t.Fatalf("%d frames: encoded %d bytes, EncodedLen says %d", len(frames), len(enc), wasm.EncodedLen(frames))
		}
		got, err := wasm.Frames(nil, enc)
		if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", frames) && len(frames) > 0 {
			t.Fatalf("got %q, %v; want %q", got, err, frames)
		}
	}
	for _, bad := range []string{"\x01", "\x05\x00\x00\x00abc", "\x00\x00\x00\x00\x01"} {
		if _, err := wasm.Frames(nil, []byte(bad)); !errors.Is(err, wasm.ErrBadEncoding) {
			t.Fatalf("%q: got %v, want ErrBadEncoding", bad, err)
		}
	}
}

func ExampleAppendFrames() {
	enc := wasm.AppendFrames(nil, [][]byte{[]byte("hi"), {}})
	fmt.Printf("% x\n", enc)
	// Output: 02 00 00 00 68 69 00 00 00 00
}
