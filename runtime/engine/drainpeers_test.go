package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// TestDrainOutsidePeer: a fan-out through a proxy whose XPUB binds tcp.
// Once the subscriber completed, the proxy can only feed peers outside the
// topology: with none connected (its peer monitor counts only the
// subscriber's connection) the stop skips the drain; with an outside
// subscriber connected, it drains, as it must for a peer that may still be
// owed messages in flight.
func TestDrainOutsidePeer(t *testing.T) {
	const n = 2000
	for _, outside := range []bool{false, true} {
		name := "no outside peer"
		if outside {
			name = "outside peer"
		}
		t.Run(name, func(t *testing.T) {
			front, back, syncEP := zsocktest.TCP(t), zsocktest.TCP(t), zsocktest.TCP(t)
			expect := 1
			if outside {
				expect = 2
			}
			// No send high-water mark, no drops: the subscriber gets all.
			nodrop := []spec.Option{{Name: "sndhwm", Value: 0}, {Name: "xpub_nodrop", Value: 1}}
			out := sock("out", spec.PUB, nil, list(front))
			out.Options = nodrop
			backend := sock("backend", spec.XPUB, list(back), nil)
			backend.Options = nodrop
			pub := builtinNode("publisher", "generate", map[string]any{"count": n, "size": 16}, out)
			pub.Sync = &spec.Sync{Expect: expect, Bind: syncEP}
			sub := builtinNode("subscriber", "count", map[string]any{"expect": n},
				&spec.Socket{Name: "in", Type: spec.SUB, Connect: list(back), Subscribe: list("")})
			sub.Sync = &spec.Sync{Connect: syncEP, ConnectNode: "publisher"}
			topo := &spec.Topology{Version: 1, Name: "fanout", Nodes: []*spec.Node{
				pub,
				builtinNode("proxy", "proxy", nil, sock("frontend", spec.XSUB, list(front), nil), backend),
				sub,
			}}
			lg, logs := newLogger(t)
			e, err := New(topo, Options{Logger: lg})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			if outside {
				zctx, err := zmq4.NewContext()
				if err != nil {
					t.Fatal(err)
				}
				defer zctx.Term()
				peer, err := zsock.Open(zctx, &spec.Socket{Name: "peer", Type: spec.SUB, Connect: list(back), Subscribe: list("")})
				if err != nil {
					t.Fatal(err)
				}
				defer peer.CloseLinger(0)
				stats := e.insts["proxy"].stats["backend"]
				testutil.WaitFor(t, "the proxy to count the outside peer", func() bool {
					p, known := stats.Peers()
					return known && p == 2
				})
				req, err := zsock.Open(zctx, &spec.Socket{Name: "sync", Type: spec.REQ, Connect: list(syncEP)})
				if err != nil {
					t.Fatal(err)
				}
				defer req.CloseLinger(0)
				if err := req.Send([][]byte{{}}, 0); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err = <-done:
			case <-time.After(bound + 30*time.Second):
				t.Fatal("Run hangs")
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := statusOf(e, "subscriber").Sockets[0].MsgsIn; got != n {
				t.Errorf("subscriber received %d, want %d", got, n)
			}
			drained := strings.Contains(logs.String(), "draining")
			skipped := strings.Contains(logs.String(), "no drain")
			if drained != outside || skipped == outside {
				t.Errorf("drained %v, skipped %v; want drained %v with an outside peer %v", drained, skipped, outside, outside)
			}
		})
	}
}
