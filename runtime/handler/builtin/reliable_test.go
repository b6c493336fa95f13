package builtin

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/internal/socktest"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

func waitLog(t *testing.T, logs *testutil.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(bound); !strings.Contains(logs.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLBBrokerSwapKeepsIdleWorkers: a REQ worker that announced READY to
// one lbbroker is served by the lbbroker that replaces it in a handler
// swap, without announcing itself again.
func TestLBBrokerSwapKeepsIdleWorkers(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "broker", Sockets: []*spec.Socket{
		{Name: "backend", Type: spec.ROUTER, Bind: []string{"inproc://lbs-back"}},
		{Name: "frontend", Type: spec.ROUTER, Bind: []string{"inproc://lbs-front"}},
	}}
	r := runNode(t, zctx, sp, build(t, "lbbroker", nil, nil))
	w := socktest.Open(t, zctx, &spec.Socket{Name: "w", Type: spec.REQ, Connect: []string{"inproc://lbs-back"}, Identity: "w1"})
	if err := w.Send(zsocktest.Frames("READY"), 0); err != nil {
		t.Fatal(err)
	}
	c := socktest.Open(t, zctx, &spec.Socket{Name: "c", Type: spec.REQ, Connect: []string{"inproc://lbs-front"}, Identity: "c1"})
	for i, swap := range []bool{false, true, true} {
		if swap {
			// The worker is idle: its reply reached the client, and the
			// broker listed it again before it forwarded that reply.
			r.n.SwapHandler(build(t, "lbbroker", nil, nil))
		}
		if err := c.Send(zsocktest.Frames("job"), 0); err != nil {
			t.Fatal(err)
		}
		if got, want := q(socktest.Recv(t, w)), q(zsocktest.Frames("c1", "", "job")); got != want {
			t.Fatalf("round %d: worker got %s, want %s", i, got, want)
		}
		if err := w.Send(zsocktest.Frames("c1", "", "done"), 0); err != nil {
			t.Fatal(err)
		}
		if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames("done")); got != want {
			t.Fatalf("round %d: client got %s, want %s", i, got, want)
		}
	}
}

// TestPPQueueFrames: the queue's side of the Paranoid Pirate Protocol,
// frame by frame, with a DEALER worker and a REQ client.
func TestPPQueueFrames(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "queue", Sockets: []*spec.Socket{
		{Name: "backend", Type: spec.ROUTER, Bind: []string{"inproc://ppq-back"}},
		{Name: "frontend", Type: spec.ROUTER, Bind: []string{"inproc://ppq-front"}},
	}}
	logs := &testutil.Buffer{}
	lg := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	// The worker below answers heartbeats only when the test reads them:
	// a heartbeat long enough that a test held up on a loaded machine
	// does not see it evicted before the end.
	const hb = 500 * time.Millisecond
	r := runNode(t, zctx, sp, build(t, "ppqueue", map[string]any{"heartbeat": hb}, lg))
	// A client first: it waits until a worker is ready.
	c := socktest.Open(t, zctx, &spec.Socket{Name: "c", Type: spec.REQ, Connect: []string{"inproc://ppq-front"}, Identity: "c1"})
	if err := c.Send(zsocktest.Frames("job"), 0); err != nil {
		t.Fatal(err)
	}
	w := socktest.Open(t, zctx, &spec.Socket{Name: "w", Type: spec.DEALER, Connect: []string{"inproc://ppq-back"}, Identity: "w1"})
	if err := w.Send([][]byte{{1}}, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, w)), q(zsocktest.Frames("c1", "", "job")); got != want {
		t.Fatalf("worker got %s, want %s", got, want)
	}
	if err := w.Send(zsocktest.Frames("c1", "", "done"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames("done")); got != want {
		t.Fatalf("client got %s, want %s", got, want)
	}
	// Idle again, the worker gets heartbeats; a swapped-in queue knows it.
	r.n.SwapHandler(build(t, "ppqueue", map[string]any{"heartbeat": hb}, lg))
	if got, want := q(socktest.Recv(t, w)), q([][]byte{{2}}); got != want {
		t.Fatalf("worker got %s, want a heartbeat %s", got, want)
	}
	// A live worker answers heartbeats, as a Paranoid Pirate worker does.
	if err := w.Send([][]byte{{2}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(zsocktest.Frames("job2"), 0); err != nil {
		t.Fatal(err)
	}
	for {
		m := socktest.Recv(t, w)
		if len(m) == 1 && string(m[0]) == "\x02" {
			if err := w.Send([][]byte{{2}}, 0); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, want := q(m), q(zsocktest.Frames("c1", "", "job2")); got != want {
			t.Fatalf("worker got %s, want %s", got, want)
		}
		break
	}
	if err := w.Send(zsocktest.Frames("c1", "", "done2"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames("done2")); got != want {
		t.Fatalf("client got %s, want %s", got, want)
	}
	// Silent for three heartbeats: evicted.
	waitLog(t, logs, `worker evicted: heartbeats missed: worker="\"w1\""`)
}

// TestMDBrokerProtocolErrors: a worker that breaks MDP is told to
// DISCONNECT (a second READY, a heartbeat from a worker the broker does not
// know); mmi services other than mmi.service answer 501.
func TestMDBrokerProtocolErrors(t *testing.T) {
	zctx := socktest.Context(t)
	sp := &spec.Node{Name: "broker", Sockets: []*spec.Socket{{Name: "frontend", Type: spec.ROUTER, Bind: []string{"inproc://mdb-err"}}}}
	runNode(t, zctx, sp, build(t, "mdbroker", map[string]any{"heartbeat": time.Hour}, nil))
	w := socktest.Open(t, zctx, &spec.Socket{Name: "w", Type: spec.DEALER, Connect: []string{"inproc://mdb-err"}, Identity: "w1"})
	disconnect := q([][]byte{{}, []byte("MDPW01"), {5}})
	if err := w.Send([][]byte{{}, []byte("MDPW01"), {4}}, 0); err != nil {
		t.Fatal(err)
	}
	if got := q(socktest.Recv(t, w)); got != disconnect {
		t.Fatalf("heartbeat from a stranger: got %s, want %s", got, disconnect)
	}
	ready := [][]byte{{}, []byte("MDPW01"), {1}, []byte("svc")}
	for i := 0; i < 2; i++ {
		if err := w.Send(ready, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := q(socktest.Recv(t, w)); got != disconnect {
		t.Fatalf("second READY: got %s, want %s", got, disconnect)
	}
	c := socktest.Open(t, zctx, &spec.Socket{Name: "c", Type: spec.REQ, Connect: []string{"inproc://mdb-err"}})
	if err := c.Send(zsocktest.Frames("MDPC01", "mmi.nosuch", "x"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames("MDPC01", "mmi.nosuch", "501")); got != want {
		t.Fatalf("mmi.nosuch: got %s, want %s", got, want)
	}
	// The worker was forgotten: its service has none.
	if err := c.Send(zsocktest.Frames("MDPC01", "mmi.service", "svc"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := q(socktest.Recv(t, c)), q(zsocktest.Frames("MDPC01", "mmi.service", "404")); got != want {
		t.Fatalf("mmi.service svc: got %s, want %s", got, want)
	}
}
