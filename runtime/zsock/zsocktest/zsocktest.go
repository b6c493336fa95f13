// Package zsocktest has helpers for tests that need real endpoints (free
// loopback ports, short ipc paths) and contexts that must end cleanly.
package zsocktest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
)

// TCP returns a tcp://127.0.0.1:PORT endpoint on a port the kernel just
// reported free. Another process may grab it in between; the window is tiny
// and zsock retries binds that find the address in use.
func TCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("free port: %v", err)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", port)
}

// IPC returns an ipc:// endpoint in a fresh private directory removed at the
// end of the test. It does not use t.TempDir: its paths can exceed the 107
// bytes a unix socket path may have.
func IPC(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zt")
	if err != nil {
		t.Fatalf("ipc dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return "ipc://" + filepath.Join(dir, name)
}

// termBound bounds a test context's termination: longer means a socket was
// left open (libzmq waits for every socket to close).
const termBound = 30 * time.Second

// TermAtEnd terminates zctx when the test ends, after every cleanup
// registered later (so every socket's close) has run, and fails the test
// if termination errs or hangs past a bound: a socket was left open.
func TermAtEnd(t testing.TB, zctx *zmq4.Context) {
	t.Helper()
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- zctx.Term() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("context termination: %v", err)
			}
		case <-time.After(termBound):
			t.Errorf("context termination hangs after %v: a socket was left open", termBound)
		}
	})
}

// Frames is a message of the frames ss.
func Frames(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
