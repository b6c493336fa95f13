package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

var upperH = handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
	return [][]byte{bytes.ToUpper(m.Frames[len(m.Frames)-1])}, nil
})

func workerNode(name, ep string, w spec.Worker) *spec.Node {
	w.Socket = "broker"
	if w.Liveness == 0 {
		w.Liveness = 3
	}
	if w.Reconnect == 0 {
		w.Reconnect, w.ReconnectMax = 10*time.Millisecond, 40*time.Millisecond
	}
	return &spec.Node{Name: name, Worker: &w, Sockets: []*spec.Socket{{Name: "broker", Type: spec.DEALER, Role: spec.RoleInOut, Connect: []string{ep}}}}
}

// recvSkipping receives the next message that is not a heartbeat.
func recvSkipping(t *testing.T, get func() [][]byte, heartbeat string) [][]byte {
	t.Helper()
	for {
		m := get()
		if q(m[1:]) != heartbeat {
			return m
		}
	}
}

// TestPPPWorker: the worker side of the Paranoid Pirate Protocol frame by
// frame: READY, a request answered through its envelope, heartbeats, and a
// reconnect (a new connection, READY again) when the broker stays silent.
func TestPPPWorker(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://ppp-worker"
	broker := peer(t, zctx, spec.ROUTER, ep, "")
	st := start(t, zctx, Config{Spec: workerNode("w", ep, spec.Worker{Protocol: spec.ProtoPPP, Heartbeat: 30 * time.Millisecond}), Handler: upperH})
	m := socktest.Recv(t, broker)
	id := string(m[0])
	if got, want := q(m[1:]), q([][]byte{{1}}); got != want {
		t.Fatalf("announcement: got %s, want %s", got, want)
	}
	hb := q([][]byte{{2}})
	// The first heartbeat is due before the broker's silence counts.
	if got := q(socktest.Recv(t, broker)[1:]); got != hb {
		t.Fatalf("after READY: got %s, want a heartbeat %s", got, hb)
	}
	for i := 0; i < 3; i++ {
		if err := broker.Send(zsocktest.Frames(id, "c7", "", "hello"), 0); err != nil {
			t.Fatal(err)
		}
		got := recvSkipping(t, func() [][]byte { return socktest.Recv(t, broker) }, hb)
		if want := q(zsocktest.Frames(id, "c7", "", "HELLO")); q(got) != want {
			t.Fatalf("reply %d: got %s, want %s", i, q(got), want)
		}
	}
	// The broker keeps quiet: the worker gives up on this connection and
	// announces itself on a new one.
	for {
		m := socktest.Recv(t, broker)
		if q(m[1:]) == hb {
			continue
		}
		if got, want := q(m[1:]), q([][]byte{{1}}); got != want {
			t.Fatalf("after silence: got %s, want READY %s", got, want)
		}
		if string(m[0]) == id {
			t.Fatalf("READY again on the same connection %q", id)
		}
		break
	}
	st.cancel()
	if err := st.wait(t); err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
}

// TestMDPWorker: the worker side of MDP 0.1 (MDPW01) frame by frame:
// READY with the service, REQUEST answered by REPLY to the client, a
// dropped answer is an empty body, heartbeats, and DISCONNECT makes it
// reconnect and announce itself again.
func TestMDPWorker(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://mdp-worker"
	broker := peer(t, zctx, spec.ROUTER, ep, "")
	drop := handler.HandlerFunc(func(_ context.Context, m handler.Msg) ([][]byte, error) {
		if string(m.Frames[0]) == "drop" {
			return nil, nil
		}
		return upperH(context.Background(), m)
	})
	start(t, zctx, Config{Spec: workerNode("w", ep, spec.Worker{Protocol: spec.ProtoMDP, Service: "echo", Heartbeat: 30 * time.Millisecond, Liveness: 100}), Handler: drop})
	m := socktest.Recv(t, broker)
	id := string(m[0])
	if got, want := q(m[1:]), q([][]byte{{}, []byte("MDPW01"), {1}, []byte("echo")}); got != want {
		t.Fatalf("announcement: got %s, want %s", got, want)
	}
	hb := q([][]byte{{}, []byte("MDPW01"), {4}})
	ask := func(body string) [][]byte {
		t.Helper()
		if err := broker.Send([][]byte{[]byte(id), {}, []byte("MDPW01"), {2}, []byte("client9"), {}, []byte(body)}, 0); err != nil {
			t.Fatal(err)
		}
		return recvSkipping(t, func() [][]byte { return socktest.Recv(t, broker) }, hb)
	}
	if got, want := q(ask("hello")), q([][]byte{[]byte(id), {}, []byte("MDPW01"), {3}, []byte("client9"), {}, []byte("HELLO")}); got != want {
		t.Fatalf("reply: got %s, want %s", got, want)
	}
	if got, want := q(ask("drop")), q([][]byte{[]byte(id), {}, []byte("MDPW01"), {3}, []byte("client9"), {}, {}}); got != want {
		t.Fatalf("dropped: got %s, want %s", got, want)
	}
	for {
		if m := socktest.Recv(t, broker); q(m[1:]) == hb {
			break
		}
	}
	if err := broker.Send([][]byte{[]byte(id), {}, []byte("MDPW01"), {5}}, 0); err != nil {
		t.Fatal(err)
	}
	for {
		m := socktest.Recv(t, broker)
		if q(m[1:]) == hb && string(m[0]) == id {
			continue
		}
		if got, want := q(m[1:]), q([][]byte{{}, []byte("MDPW01"), {1}, []byte("echo")}); got != want || string(m[0]) == id {
			t.Fatalf("after DISCONNECT: got %s from %q, want %s from a new connection", got, m[0], want)
		}
		break
	}
}

// TestWorkerSwapKeepsConnection: a handler swap leaves the worker's
// connection and registration as they are: no second READY, and the next
// request is answered by the new handler.
func TestWorkerSwapKeepsConnection(t *testing.T) {
	zctx := socktest.Context(t)
	ep := "inproc://ppp-swap"
	broker := peer(t, zctx, spec.ROUTER, ep, "")
	st := start(t, zctx, Config{Spec: workerNode("w", ep, spec.Worker{Protocol: spec.ProtoPPP, Heartbeat: time.Hour}), Handler: upperH})
	m := socktest.Recv(t, broker)
	id := string(m[0])
	if err := broker.Send(zsocktest.Frames(id, "c", "", "one"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, broker)), q(zsocktest.Frames(id, "c", "", "ONE")); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	st.n.SwapHandler(forward)
	testutil.WaitFor(t, "condition", func() bool { return st.n.seenGen.Load() == 1 })
	if err := broker.Send(zsocktest.Frames(id, "c", "", "two"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, broker)), q(zsocktest.Frames(id, "c", "", "two")); got != want {
		t.Fatalf("after the swap: got %s, want %s (and no second READY)", got, want)
	}
}
