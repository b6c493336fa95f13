package wasmhost_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ztopo/ztopo/wasm/wasmtest"
)

// The modules the tests run, built once by TestMain with the Go toolchain
// that runs the tests (nothing is committed as a binary).
var (
	upperWasm  string // wasm/examples/upper
	faultsWasm string // testdata/faults
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmhost")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	upperWasm = filepath.Join(dir, "upper.wasm")
	faultsWasm = filepath.Join(dir, "faults.wasm")
	for pkg, out := range map[string]string{"../../../wasm/examples/upper": upperWasm, "./testdata/faults": faultsWasm} {
		if err := wasmtest.BuildModule(pkg, out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
