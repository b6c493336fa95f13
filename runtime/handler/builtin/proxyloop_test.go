package builtin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/runtime/node"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// TestProxyStopsAfterTCPClients stops a queue proxy right after tcp REQ
// clients came and went, many times: libzmq 4.3.4's steerable proxy can miss
// the first TERMINATE then, and the node must still stop.
func TestProxyStopsAfterTCPClients(t *testing.T) {
	zctx := socktest.Context(t)
	for i := 0; i < 25; i++ {
		front, back := zsocktest.TCP(t), fmt.Sprintf("inproc://stoploop-%d", i)
		ctx, cancel := context.WithCancel(context.Background())
		var dones []chan error
		start := func(sp *spec.Node, h any) {
			d := make(chan error, 1)
			n := node.New(node.Config{Spec: sp, Context: zctx, Handler: h})
			go func() { d <- n.Run(ctx) }()
			dones = append(dones, d)
		}
		start(&spec.Node{Name: "proxy", Sockets: []*spec.Socket{
			{Name: "backend", Type: spec.DEALER, Bind: []string{back}},
			{Name: "frontend", Type: spec.ROUTER, Bind: []string{front}},
		}}, &Proxy{})
		for w := 0; w < 3; w++ {
			start(&spec.Node{Name: fmt.Sprint("worker.", w), Sockets: []*spec.Socket{{Name: "in", Type: spec.REP, Connect: []string{back}}}}, &Forward{})
		}
		for k := 0; k < 3; k++ {
			c, err := zsock.Open(zctx, &spec.Socket{Name: "c", Type: spec.REQ, Connect: []string{front}})
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < 3; j++ {
				if err := c.Send(zsocktest.Frames("x"), 0); err != nil {
					t.Fatal(err)
				}
				socktest.Recv(t, c)
			}
			c.Close()
		}
		cancel()
		for k, d := range dones {
			select {
			case <-d:
			case <-time.After(bound):
				t.Fatalf("round %d: node %d does not stop", i, k)
			}
		}
	}
}
