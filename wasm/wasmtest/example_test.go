package wasmtest_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ztopo/ztopo/wasm/wasmtest"
)

// The upper example, built for WASI and run as ztopo runs it.
func Example() {
	dir, err := os.MkdirTemp("", "wasmtest")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "upper.wasm")
	if err := wasmtest.BuildModule("../examples/upper", path); err != nil {
		log.Fatal(err)
	}
	h, err := wasmtest.Start(path, wasmtest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	out, err := h.Call("topic", "hello, wasm")
	fmt.Println(out, err)
	// Output: [topic HELLO, WASM] <nil>
}
