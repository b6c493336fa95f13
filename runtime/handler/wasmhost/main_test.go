package wasmhost_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
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
		if err := BuildWasm(pkg, out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// BuildWasm builds the Go package in dir as a WASI reactor module.
func BuildWasm(dir, out string) error {
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", dir, err, b)
	}
	return nil
}
