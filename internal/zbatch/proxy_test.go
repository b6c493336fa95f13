package zbatch

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
)

// proxyRig is a context with sockets that all close, bounded, at the end
// of the test, and the Proxy run on a goroutine (which owns front, back,
// capture and its end of control from then on).
type proxyRig struct {
	t    *testing.T
	zctx *zmq4.Context
	done chan error
	ctl  *zmq4.Socket
}

func newRig(t *testing.T) *proxyRig {
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	r := &proxyRig{t: t, zctx: zctx}
	t.Cleanup(func() { zctx.Term() })
	return r
}

// pair makes two sockets of the rig's context joined over inproc: bound,
// of type bt, binds inproc://NAME-TEST; connected, of type ct, connects
// to it. hwm, if given, is each one's send and receive high water mark.
func (r *proxyRig) pair(bt, ct zmq4.Type, name string, hwm ...int) (bound, connected *zmq4.Socket) {
	r.t.Helper()
	endpoint := "inproc://" + name + "-" + r.t.Name()
	bound, connected = r.sock(bt, hwm), r.sock(ct, hwm)
	if err := bound.Bind(endpoint); err != nil {
		r.t.Fatal(err)
	}
	if err := connected.Connect(endpoint); err != nil {
		r.t.Fatal(err)
	}
	return bound, connected
}

func (r *proxyRig) sock(typ zmq4.Type, hwm []int) *zmq4.Socket {
	r.t.Helper()
	s, err := r.zctx.NewSocket(typ)
	if err != nil {
		r.t.Fatal(err)
	}
	_ = s.SetLinger(0)
	_ = s.SetRcvtimeo(10 * time.Second)
	for _, n := range hwm {
		_ = s.SetSndhwm(n)
		_ = s.SetRcvhwm(n)
	}
	return s
}

// start runs Proxy; stop sends TERMINATE and checks it returned nil.
func (r *proxyRig) start(front, back, capture *zmq4.Socket) {
	r.t.Helper()
	r.run(func(ctl *zmq4.Socket) error { return Proxy(front, back, capture, ctl) }, front, back, capture)
}

// run runs loop with its end of the control pair on a goroutine that owns
// the sockets given, and closes them when loop returns.
func (r *proxyRig) run(loop func(ctl *zmq4.Socket) error, owned ...*zmq4.Socket) {
	r.t.Helper()
	var ctl *zmq4.Socket
	r.ctl, ctl = r.pair(zmq4.PAIR, zmq4.PAIR, "ctl")
	r.done = make(chan error, 1)
	go func() {
		err := loop(ctl)
		for _, s := range append(owned, ctl) {
			if s != nil {
				s.Close()
			}
		}
		r.done <- err
	}()
	r.t.Cleanup(func() { r.ctl.Close() })
}

func (r *proxyRig) stats() [8]uint64 {
	r.t.Helper()
	if _, err := r.ctl.Send("STATISTICS", 0); err != nil {
		r.t.Fatal(err)
	}
	reply, err := r.ctl.RecvMessageBytes(0)
	if err != nil || len(reply) != 8 {
		r.t.Fatalf("STATISTICS: got %d frames, %v, want 8", len(reply), err)
	}
	var st [8]uint64
	for i, f := range reply {
		st[i] = binary.NativeEndian.Uint64(f)
	}
	return st
}

// wantStats checks that STATISTICS are want.
func (r *proxyRig) wantStats(want [8]uint64) {
	r.t.Helper()
	if st := r.stats(); st != want {
		r.t.Errorf("statistics: got %v, want %v", st, want)
	}
}

// waitStats asks for STATISTICS until cond holds of them or 10s pass, and
// returns the last.
func (r *proxyRig) waitStats(cond func([8]uint64) bool) [8]uint64 {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.stats()
		if cond(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *proxyRig) stop() {
	r.t.Helper()
	if _, err := r.ctl.Send("TERMINATE", 0); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Proxy after TERMINATE: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatal("Proxy did not return after TERMINATE")
	}
}

// sendNumbered sends messages from to to-1 on s, message i the frames
// head..., "m<i>", "tail", and returns their bytes as STATISTICS counts
// them: every frame's.
func sendNumbered(t *testing.T, s *zmq4.Socket, from, to int, head ...string) (bytes uint64) {
	t.Helper()
	for i := from; i < to; i++ {
		m := append(append([]string(nil), head...), fmt.Sprintf("m%d", i), "tail")
		for _, f := range m {
			bytes += uint64(len(f))
		}
		if _, err := s.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	return bytes
}

// recvNumbered receives count messages on s, each named what in a failure,
// and fails unless message i is head..., "m<i>", "tail": what sendNumbered
// sent, whole and in order.
func recvNumbered(t *testing.T, s *zmq4.Socket, what string, count int, head ...string) {
	t.Helper()
	for i := 0; i < count; i++ {
		m, err := s.RecvMessage(0)
		want := append(append([]string(nil), head...), fmt.Sprintf("m%d", i), "tail")
		if err != nil || !slices.Equal(m, want) {
			t.Fatalf("%s %d: got %q, %v", what, i, m, err)
		}
	}
}

// TestProxyStreamer: PULL -> PUSH with capture; every message arrives
// whole and in order, capture gets every frame and the commands, and
// STATISTICS counts as libzmq's proxy does.
func TestProxyStreamer(t *testing.T) {
	r := newRig(t)
	front, src := r.pair(zmq4.PULL, zmq4.PUSH, "front")
	back, sink := r.pair(zmq4.PUSH, zmq4.PULL, "back")
	capture, capSink := r.pair(zmq4.PUSH, zmq4.PULL, "cap")
	defer src.Close()
	defer sink.Close()
	defer capSink.Close()
	r.start(front, back, capture)

	const count = 1000 // several bursts
	bytes := sendNumbered(t, src, 0, count)
	recvNumbered(t, sink, "message", count)
	r.wantStats([8]uint64{count, bytes, 0, 0, 0, 0, count, bytes})
	recvNumbered(t, capSink, "capture", count)
	if m, err := capSink.RecvMessage(0); err != nil || len(m) != 1 || m[0] != "STATISTICS" {
		t.Errorf("capture of the command: got %q, %v", m, err)
	}
	r.stop()
}

// echoRig runs the C echo loop on a REP and returns the rig and a client
// of type ct connected to it, closed at the end of the test.
func echoRig(t *testing.T, ct zmq4.Type) (*proxyRig, *zmq4.Socket) {
	t.Helper()
	if !Fast {
		t.Skip("no C echo loop on the fallback")
	}
	r := newRig(t)
	rep, client := r.pair(zmq4.REP, ct, "echo")
	t.Cleanup(func() { client.Close() })
	r.run(func(ctl *zmq4.Socket) error { return Echo(rep, ctl) }, rep)
	return r, client
}

// TestEcho: a REP answered by the C echo loop returns every request's
// frames whole and in order, a burst of pipelined requests (more than one
// burst's worth) included, and counts them as the proxy counts its
// frontend.
func TestEcho(t *testing.T) {
	// A DEALER speaks to a REP with an empty delimiter, and need not wait
	// for a reply before its next request.
	r, client := echoRig(t, zmq4.DEALER)
	const count = 1000
	bytes := sendNumbered(t, client, 0, count, "")
	recvNumbered(t, client, "reply", count, "")
	r.wantStats([8]uint64{count, bytes, count, bytes})
	r.stop()
}

// TestEchoOneAtATime: a REQ client waits for each reply, so the C echo
// loop waits between any two requests: each request wakes it, and so do
// the commands that come while it waits, STATISTICS, PAUSE, RESUME (which
// answers the request that came while it was paused) and TERMINATE.
func TestEchoOneAtATime(t *testing.T) {
	r, client := echoRig(t, zmq4.REQ)
	ask := func(m string) {
		t.Helper()
		if _, err := client.Send(m, 0); err != nil {
			t.Fatal(err)
		}
		if got, err := client.Recv(0); err != nil || got != m {
			t.Fatalf("reply to %q: got %q, %v", m, got, err)
		}
	}
	const count = 200
	var bytes uint64
	for i := 0; i < count; i++ {
		m := fmt.Sprintf("m%d", i)
		bytes += uint64(len(m))
		ask(m)
		if i%50 == 49 {
			r.wantStats([8]uint64{uint64(i + 1), bytes, uint64(i + 1), bytes})
		}
	}
	if _, err := r.ctl.Send("PAUSE", 0); err != nil {
		t.Fatal(err)
	}
	r.wantStats([8]uint64{count, bytes, count, bytes}) // the PAUSE was taken
	if _, err := client.Send("paused", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ctl.Send("RESUME", 0); err != nil {
		t.Fatal(err)
	}
	if got, err := client.Recv(0); err != nil || got != "paused" {
		t.Fatalf("reply after RESUME: got %q, %v", got, err)
	}
	bytes += uint64(len("paused"))
	r.wantStats([8]uint64{count + 1, bytes, count + 1, bytes})
	r.stop()
}

// TestSink: the C sink takes whole messages up to its limit and leaves the
// rest queued; a second run takes what is left and more, counts them in
// STATISTICS as they come, and returns on TERMINATE with what it took.
func TestSink(t *testing.T) {
	if !Fast {
		t.Skip("no C sink loop on the fallback")
	}
	r := newRig(t)
	pull, src := r.pair(zmq4.PULL, zmq4.PUSH, "sink")
	defer src.Close()
	first := sendNumbered(t, src, 0, 600)
	rest := sendNumbered(t, src, 600, 900)
	// Its own control pair: the rig's is for the second run.
	ca, cb := r.pair(zmq4.PAIR, zmq4.PAIR, "sink-ctl")
	defer ca.Close()
	defer cb.Close()
	got, err := Sink(pull, cb, 600)
	if err != nil || !got.Full || got.Msgs != 600 || got.Bytes != first || got.First.IsZero() || got.Last.Before(got.First) {
		t.Fatalf("first run: got %+v, %v; want 600 messages, %d bytes, full, first <= last", got, err, first)
	}
	sunk := make(chan Sunk, 1)
	r.run(func(ctl *zmq4.Socket) error {
		got, err := Sink(pull, ctl, 1<<62)
		sunk <- got
		return err
	}, pull)
	rest += sendNumbered(t, src, 900, 1000)
	if st := r.waitStats(func(st [8]uint64) bool { return st[0] == 400 }); st[0] != 400 {
		t.Fatalf("statistics: got %v, want 400 messages", st)
	}
	r.wantStats([8]uint64{400, rest})
	r.stop()
	if got := <-sunk; got.Full || got.Msgs != 400 || got.Bytes != rest {
		t.Errorf("second run: got %+v, want 400 messages, %d bytes, not full", got, rest)
	}
}

// TestProxyBroker: ROUTER <-> DEALER both ways, request-reply through it.
func TestProxyBroker(t *testing.T) {
	r := newRig(t)
	front, client := r.pair(zmq4.ROUTER, zmq4.REQ, "front")
	back, worker := r.pair(zmq4.DEALER, zmq4.REP, "back")
	defer client.Close()
	defer worker.Close()
	r.start(front, back, nil)
	for i := 0; i < 50; i++ {
		req := fmt.Sprintf("req %d", i)
		if _, err := client.Send(req, 0); err != nil {
			t.Fatal(err)
		}
		got, err := worker.Recv(0)
		if err != nil || got != req {
			t.Fatalf("worker: got %q, %v, want %q", got, err, req)
		}
		if _, err := worker.Send("re "+got, 0); err != nil {
			t.Fatal(err)
		}
		rep, err := client.Recv(0)
		if err != nil || rep != "re "+req {
			t.Fatalf("client: got %q, %v, want %q", rep, err, "re "+req)
		}
	}
	st := r.stats()
	if st[0] != 50 || st[2] != 50 || st[4] != 50 || st[6] != 50 {
		t.Errorf("statistics: got %v, want 50 messages each way", st)
	}
	r.stop()
}

// TestProxyHoldsWhenFull: a message the backend refuses is held, not lost
// and not busy-waited on; the proxy still answers commands meanwhile, and
// the message goes out once there is room.
func TestProxyHoldsWhenFull(t *testing.T) {
	if !Fast {
		// The fallback is libzmq's own zmq_proxy_steerable, which blocks in
		// its send to a full backend and answers no command meanwhile: what
		// this test checks is the C proxy's.
		t.Skip("pebbe's fallback (ztopo_slowpath): libzmq's proxy blocks on a full backend")
	}
	r := newRig(t)
	front, src := r.pair(zmq4.PULL, zmq4.PUSH, "front")
	back, sink := r.pair(zmq4.PUSH, zmq4.PULL, "back", 5)
	defer src.Close()
	defer sink.Close()
	r.start(front, back, nil)
	const count = 100 // far more than the 10 the backend's pipe holds
	for i := 0; i < count; i++ {
		if _, err := src.Send(fmt.Sprint(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	// The backend fills; the proxy holds one and still answers.
	st := r.waitStats(func(st [8]uint64) bool { return st[6] >= 10 })
	if st[6] < 10 || st[6] >= count {
		t.Fatalf("with the sink not reading: got %d sent, want the pipe full (10 to 99)", st[6])
	}
	for i := 0; i < count; i++ {
		got, err := sink.Recv(0)
		if err != nil || got != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q, %v", i, got, err)
		}
	}
	if st := r.stats(); st[0] != count || st[6] != count {
		t.Errorf("statistics: got %v, want %d in and out", st, count)
	}
	r.stop()
}
