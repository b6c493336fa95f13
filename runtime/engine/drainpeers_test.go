package engine

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
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
			e, logs, wait := startFanout(t, fanout(n, n, expect, front, syncEP, back))
			if outside {
				zctx := newZctx(t)
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
				sendSync(t, zctx, syncEP)
			}
			wait()
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

// TestDrainOutsidePeerReconnecting: the peer count alone would hide an
// outside peer here. The proxy's XPUB has two topology peers, the
// subscriber and an idle tap (a forward whose SUB subscribes to nothing),
// and an outside subscriber; the tap's connection is cut (shutdown(2) on
// its descriptor, as a network drop would) and, with a reconnect interval
// of ten minutes, stays down. The count is then 2 connections for 2
// topology sockets, yet one is the outside peer's: the stop must drain.
// The subscriber completes at n/2, while the proxy may still have the
// rest to pass on to the outside peer; without the drain it lost
// thousands of them (seen: 3000 to 8000 of 20000), with it it gets all n.
func TestDrainOutsidePeerReconnecting(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to find the tap's connection by")
	}
	const n = 20000
	front, back, tapEP, syncEP := zsocktest.TCP(t), zsocktest.TCP(t), zsocktest.TCP(t), zsocktest.TCP(t)
	topo := fanout(n, n/2, 2, front, syncEP, back, tapEP)
	tapIn := sock("in", spec.SUB, nil, list(tapEP))
	tapIn.Options = []spec.Option{{Name: "reconnect_ivl", Value: 10 * time.Minute}}
	topo.Nodes = append(topo.Nodes, builtinNode("tap", "forward", nil, tapIn, sock("out", spec.PUB, list("inproc://drain-test-tap"), nil)))
	e, logs, wait := startFanout(t, topo)

	stats := e.insts["proxy"].stats["backend"]
	peersAre := func(want int64) func() bool {
		return func() bool { p, known := stats.Peers(); return known && p == want }
	}
	testutil.WaitFor(t, "the proxy to count the subscriber and the tap", peersAre(2))
	cutConnection(t, tapEP)
	testutil.WaitFor(t, "the proxy to count the tap's connection gone", peersAre(1))

	zctx := newZctx(t)
	// No receive high-water mark: libzmq takes in all that arrives,
	// however slowly the test reads it.
	peer, err := zsock.OpenWith(zctx, &spec.Socket{Name: "peer", Type: spec.SUB, Connect: list(back), Subscribe: list(""),
		Options: []spec.Option{{Name: "rcvhwm", Value: 0}}}, zsock.Options{WatchHandshakes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.CloseLinger(0)
	// Handshake done: its subscription is on its way, ahead of the sync.
	testutil.WaitFor(t, "the outside peer's handshake", func() bool { ok, err := peer.ReadMonitor(); return err == nil && ok })
	testutil.WaitFor(t, "the proxy to count the outside peer", peersAre(2))
	if lost := stats.PeersLost(); lost != 1 {
		t.Fatalf("PeersLost = %d, want 1 (the tap's connection)", lost)
	}
	// The outside peer reads from here on, in a goroutine of its own.
	got := make(chan int, 1)
	quit := make(chan struct{})
	outside := -1
	defer func() {
		if outside < 0 { // a failure before its count was taken
			close(quit)
			<-got
		}
	}()
	go func() {
		count := 0
		defer func() { got <- count }()
		for count < n {
			select {
			case <-quit:
				return
			default:
			}
			if _, err := peer.Recv(zmq4.DONTWAIT); err != nil {
				if !zsock.IsAgain(err) {
					return
				}
				time.Sleep(time.Millisecond)
				continue
			}
			count++
		}
	}()
	sendSync(t, zctx, syncEP)
	wait()
	select {
	case outside = <-got:
	case <-time.After(testutil.Bound):
		// What was lost never comes: stop reading.
		close(quit)
		outside = <-got
	}
	if got := statusOf(e, "subscriber").Sockets[0].MsgsIn; got != n/2 {
		t.Errorf("subscriber received %d, want %d", got, n/2)
	}
	if outside != n {
		t.Errorf("outside peer received %d, want %d", outside, n)
	}
	if !strings.Contains(logs.String(), "draining") || strings.Contains(logs.String(), "no drain") {
		t.Errorf("the stop did not drain with an outside peer in a reconnecting peer's place; log:\n%s", logs.String())
	}
}

// fanout: a generate of n messages publishes through a proxy (XSUB on
// front, XPUB bound on backs) to a count subscriber on backs[0] that
// expects expect; the publisher waits for syncExpect sync peers on syncEP,
// the subscriber one of them. No send high-water mark, no drops.
func fanout(n, expect, syncExpect int, front, syncEP string, backs ...string) *spec.Topology {
	nodrop := []spec.Option{{Name: "sndhwm", Value: 0}, {Name: "xpub_nodrop", Value: 1}}
	out := sock("out", spec.PUB, nil, list(front))
	out.Options = nodrop
	backend := sock("backend", spec.XPUB, backs, nil)
	backend.Options = nodrop
	pub := builtinNode("publisher", "generate", map[string]any{"count": n, "size": 16}, out)
	pub.Sync = &spec.Sync{Expect: syncExpect, Bind: syncEP}
	sub := builtinNode("subscriber", "count", map[string]any{"expect": expect},
		&spec.Socket{Name: "in", Type: spec.SUB, Connect: list(backs[0]), Subscribe: list("")})
	sub.Sync = &spec.Sync{Connect: syncEP, ConnectNode: "publisher"}
	return &spec.Topology{Version: 1, Name: "fanout", Nodes: []*spec.Node{
		pub,
		builtinNode("proxy", "proxy", nil, sock("frontend", spec.XSUB, list(front), nil), backend),
		sub,
	}}
}

// startFanout runs topo and returns the engine, its log, and wait, which
// waits (bounded) for Run to end and fails the test unless it ended well.
func startFanout(t *testing.T, topo *spec.Topology) (*Engine, *testutil.Buffer, func()) {
	t.Helper()
	lg, logs := newLogger(t)
	e, err := New(topo, Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return e, logs, func() {
		t.Helper()
		select {
		case err = <-done:
		case <-time.After(bound + 30*time.Second):
			t.Fatal("Run hangs")
		}
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}

// newZctx is a context for the test's own peers, terminated at its end
// (after their sockets closed).
func newZctx(t *testing.T) *zmq4.Context {
	t.Helper()
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zctx.Term() })
	return zctx
}

// sendSync is an outside peer's sync request to the publisher's barrier.
func sendSync(t *testing.T, zctx *zmq4.Context, syncEP string) {
	t.Helper()
	req, err := zsock.Open(zctx, &spec.Socket{Name: "sync", Type: spec.REQ, Connect: list(syncEP)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { req.CloseLinger(0) })
	if err := req.Send([][]byte{{}}, 0); err != nil {
		t.Fatal(err)
	}
}

// cutConnection shuts down (shutdown(2), both ways) this process's tcp
// connection to endpoint ep, on the connecting side: libzmq sees it end as
// it would a network drop, and closes the descriptor itself. There must be
// exactly one.
func cutConnection(t *testing.T, ep string) {
	t.Helper()
	port, err := strconv.Atoi(ep[strings.LastIndexByte(ep, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var cut []int
	for _, f := range fds {
		fd, err := strconv.Atoi(f.Name())
		if err != nil {
			continue
		}
		if link, _ := os.Readlink("/proc/self/fd/" + f.Name()); !strings.HasPrefix(link, "socket:") {
			continue
		}
		peer, err := syscall.Getpeername(fd)
		if err != nil {
			continue
		}
		local, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		p4, ok1 := peer.(*syscall.SockaddrInet4)
		l4, ok2 := local.(*syscall.SockaddrInet4)
		if ok1 && ok2 && p4.Port == port && l4.Port != port {
			cut = append(cut, fd)
		}
	}
	if len(cut) != 1 {
		t.Fatalf("connections to %s: %d, want 1", ep, len(cut))
	}
	if err := syscall.Shutdown(cut[0], syscall.SHUT_RDWR); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
