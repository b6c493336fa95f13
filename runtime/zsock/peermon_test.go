package zsock

import (
	"testing"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/spec"
)

// TestPeers: a socket opened with WatchPeers counts the connections
// accepted on its tcp bind, and forgets one that closed, counting it lost;
// without the option, or once closed, its peers are unknown; a socket
// reopened on the same Stats counts one more lost (its peers reconnect).
func TestPeers(t *testing.T) {
	ctx := newCtx(t)
	s, err := OpenWith(ctx, &spec.Socket{Name: "out", Type: spec.XPUB, Bind: []string{"tcp://127.0.0.1:*"}}, Options{WatchPeers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseLinger(0)
	if n, known := s.Stats.Peers(); !known || n != 0 {
		t.Fatalf("before any peer: Peers = %d, %v, want 0, true", n, known)
	}
	var subs []*zmq4.Socket
	for range 2 {
		sub, err := ctx.NewSocket(zmq4.SUB)
		if err != nil {
			t.Fatal(err)
		}
		sub.SetLinger(0)
		if err := sub.Connect(s.Bound[0]); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	defer func() {
		for _, sub := range subs {
			if sub != nil {
				sub.Close()
			}
		}
	}()
	testutil.WaitFor(t, "two peers counted", func() bool { n, _ := s.Stats.Peers(); return n == 2 })
	if lost := s.Stats.PeersLost(); lost != 0 {
		t.Errorf("before any close: PeersLost = %d, want 0", lost)
	}
	subs[0].Close()
	subs[0] = nil
	testutil.WaitFor(t, "the closed peer forgotten", func() bool { n, _ := s.Stats.Peers(); return n == 1 })
	if lost := s.Stats.PeersLost(); lost != 1 {
		t.Errorf("after a peer closed: PeersLost = %d, want 1", lost)
	}

	plain, err := OpenWith(ctx, &spec.Socket{Name: "plain", Type: spec.XPUB, Bind: []string{"tcp://127.0.0.1:*"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.CloseLinger(0)
	if _, known := plain.Stats.Peers(); known {
		t.Errorf("without WatchPeers: peers known, want unknown")
	}
	s.CloseLinger(0)
	if _, known := s.Stats.Peers(); known {
		t.Errorf("after close: peers known, want unknown")
	}
	again, err := OpenWith(ctx, &spec.Socket{Name: "out", Type: spec.XPUB, Bind: []string{"tcp://127.0.0.1:*"}}, Options{Stats: s.Stats, WatchPeers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer again.CloseLinger(0)
	if n, known := again.Stats.Peers(); !known || n != 0 {
		t.Errorf("reopened: Peers = %d, %v, want 0, true", n, known)
	}
	if lost := again.Stats.PeersLost(); lost != 2 {
		t.Errorf("reopened: PeersLost = %d, want 2", lost)
	}
}
