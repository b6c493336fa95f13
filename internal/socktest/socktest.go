// Package socktest has the zsock-level helpers the node and builtin tests
// share: a context that ends cleanly, test-side sockets closed at cleanup,
// bounded receives. It lives apart from zsock/zsocktest because it opens
// sockets through zsock, whose own tests import zsocktest; nothing outside
// _test.go files imports it.
package socktest

import (
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// Bound is how long a receive waits before the test fails: generous, for a
// loaded machine.
const Bound = 30 * time.Second

// Context is a context made as the engine makes its own, terminated
// (bounded) when the test ends, after every cleanup registered later (so
// every socket's close) has run.
func Context(t testing.TB) *zmq4.Context {
	t.Helper()
	zctx, err := zsock.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	zsocktest.TermAtEnd(t, zctx)
	return zctx
}

// Open opens a test-side socket, closed at cleanup (before the context).
func Open(t testing.TB, zctx *zmq4.Context, s *spec.Socket) *zsock.Socket {
	t.Helper()
	zs, err := zsock.Open(zctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zs.Close() })
	return zs
}

// Recv receives one message, failing the test when none comes within
// Bound.
func Recv(t testing.TB, s *zsock.Socket) [][]byte {
	t.Helper()
	p := zmq4.NewPoller()
	p.Add(s.Z, zmq4.POLLIN)
	if polled, err := p.Poll(Bound); err != nil || len(polled) == 0 {
		t.Fatalf("nothing received (%v)", err)
	}
	m, err := s.Recv(0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
