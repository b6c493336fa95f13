package engine

import (
	"fmt"
	"net"
	"testing"
)

// freeIPv6Port returns a port free on [::1], or skips the test when the
// machine has no IPv6 loopback.
func freeIPv6Port(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Issue 11 item 14: binds on the IPv6 wildcard and peers by reference (they
// connect to [::1]) need ZMQ_IPV6 on both ends; the pipeline drains with
// exact counts.
func TestIPv6WildcardPipeline(t *testing.T) {
	const n = 2000
	a, b := freeIPv6Port(t), freeIPv6Port(t)
	yaml := fmt.Sprintf(`version: 1
name: loss-ipv6
nodes:
  src:
    handler: generate
    config: {count: %d}
    sockets:
      out: {type: PUSH, bind: "tcp://[::]:%d"}
  worker:
    replicas: 2
    handler: forward
    sockets:
      in: {type: PULL, connect: src.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: %d}
    sockets:
      in: {type: PULL, bind: "tcp://[::]:%d"}
`, n, a, n, b)
	lg, _ := newLogger(t)
	topo := rlParse(t, rlDir(t), yaml, nil)
	if got := topo.Node("worker.0").Socket("in").Connect; len(got) != 1 || got[0] != fmt.Sprintf("tcp://[::1]:%d", a) {
		t.Fatalf("worker.0 connects to %v, want tcp://[::1]:%d", got, a)
	}
	r := rlStart(t, topo, Options{Logger: lg})
	r.mustWait(t)
	r.wantSink(t, n)
	var w uint64
	for _, name := range []string{"worker.0", "worker.1"} {
		w += rlStat(r.e, name, "in").MsgsIn
	}
	if w != n {
		t.Errorf("workers received %d, want %d", w, n)
	}
}
