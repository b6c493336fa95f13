package engine

import (
	"net"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/testutil"
)

// TestTCPUnsent: bytes written to a peer that does not read stay in the
// send queue and are counted; once the peer reads them, none are.
func TestTCPUnsent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-accepted
	defer peer.Close()
	// The peer does not read: fill its receive buffer, then some.
	c.(*net.TCPConn).SetWriteBuffer(64 << 10)
	peer.(*net.TCPConn).SetReadBuffer(64 << 10)
	buf := make([]byte, 4<<20)
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	written, _ := c.Write(buf) // stops at the deadline once both buffers are full
	if written == 0 {
		t.Fatal("wrote nothing")
	}
	testutil.WaitFor(t, "unsent bytes", func() bool { n, err := tcpUnsent(); return err == nil && n > 0 })
	// Read everything: the queue empties.
	go func() {
		b := make([]byte, 64<<10)
		for got := 0; got < written; {
			n, err := peer.Read(b)
			if err != nil {
				return
			}
			got += n
		}
	}()
	testutil.WaitFor(t, "no unsent bytes", func() bool { n, err := tcpUnsent(); return err == nil && n == 0 })
}
