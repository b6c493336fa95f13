package zbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pebbe/zmq4"
)

// pair returns a connected PUSH and PULL on their own context, each with a
// bounded linger, closed at the end of the test.
func pair(t *testing.T, hwm int) (push, pull *zmq4.Socket) {
	t.Helper()
	zctx, err := zmq4.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	pull, err = zctx.NewSocket(zmq4.PULL)
	if err != nil {
		t.Fatal(err)
	}
	push, err = zctx.NewSocket(zmq4.PUSH)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		push.Close()
		pull.Close()
		zctx.Term()
	})
	for _, s := range []*zmq4.Socket{push, pull} {
		if err := s.SetLinger(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if hwm > 0 {
		_ = push.SetSndhwm(hwm)
		_ = pull.SetRcvhwm(hwm)
	}
	ep := fmt.Sprintf("inproc://zbatch-%s", t.Name())
	if err := pull.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := push.Connect(ep); err != nil {
		t.Fatal(err)
	}
	return push, pull
}

// recvAll receives with Recv, polling between batches, until want messages
// came or the bound passed.
func recvAll(t *testing.T, io *IO, pull *zmq4.Socket, want int, fn func([][]byte)) int {
	t.Helper()
	poller := zmq4.NewPoller()
	poller.Add(pull, zmq4.POLLIN)
	deadline := time.Now().Add(20 * time.Second)
	got := 0
	for got < want && time.Now().Before(deadline) {
		_, err := io.Recv(pull, func(msg [][]byte) {
			got++
			fn(msg)
		})
		if err != nil && !Transient(err) {
			t.Fatalf("Recv: %v", err)
		}
		if err != nil {
			if _, err := poller.Poll(10 * time.Millisecond); err != nil && zmq4.AsErrno(err) != zmq4.Errno(syscall.EINTR) {
				t.Fatalf("poll: %v", err)
			}
		}
	}
	return got
}

// TestMessagesArriveWhole sends messages of many shapes (empty frames,
// several frames, frames larger than the receive buffer, messages with more
// frames than one batch holds) and checks each arrives whole and in order.
func TestMessagesArriveWhole(t *testing.T) {
	push, pull := pair(t, 0)
	sender, receiver := New(), New()
	big := bytes.Repeat([]byte("x"), rxScratch+10)
	many := make([][]byte, maxFrames+5)
	for i := range many {
		many[i] = []byte(strconv.Itoa(i))
	}
	cases := []struct {
		head, body [][]byte
	}{
		{nil, [][]byte{[]byte("one")}},
		{[][]byte{[]byte("REQ"), []byte("7")}, [][]byte{[]byte("a"), {}, []byte("c")}},
		{[][]byte{{}}, nil},
		{[][]byte{[]byte("h")}, [][]byte{big}},
		{[][]byte{big}, [][]byte{[]byte("tail")}},
		{nil, many},
		{[][]byte{[]byte("last")}, [][]byte{[]byte("z")}},
	}
	var want [][][]byte
	for _, c := range cases {
		if err := sender.Send(push, c.head, c.body, 0); err != nil {
			t.Fatalf("Send: %v", err)
		}
		want = append(want, append(append([][]byte{}, c.head...), c.body...))
	}
	var got [][][]byte
	n := recvAll(t, receiver, pull, len(want), func(msg [][]byte) {
		got = append(got, Clone(msg)) // msg aliases the batch buffer
	})
	if n != len(want) {
		t.Fatalf("received %d messages, want %d", n, len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("message %d: %d frames, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if !bytes.Equal(got[i][j], want[i][j]) {
				t.Fatalf("message %d frame %d: %.20q (%d bytes), want %.20q (%d bytes)", i, j, got[i][j], len(got[i][j]), want[i][j], len(want[i][j]))
			}
		}
	}
}

// TestSignalsLoseNothing sends through a tiny high-water mark, so that
// sends block in libzmq, while every thread of the process is sent signals
// (SIGURG, which the Go runtime takes and ignores). An interrupted send must
// be sent again and an interrupted receive must lose nothing: every
// message arrives exactly once, in order. Before Send retried EINTR, a
// signal during a send lost the message with "interrupted system call".
func TestSignalsLoseNothing(t *testing.T) {
	const n = 100_000
	push, pull := pair(t, 4)
	stop := make(chan struct{})
	var signals atomic.Int64
	go func() {
		pid := os.Getpid()
		for {
			select {
			case <-stop:
				return
			default:
			}
			tasks, err := os.ReadDir("/proc/self/task")
			if err != nil {
				return
			}
			for _, task := range tasks {
				tid, err := strconv.Atoi(task.Name())
				if err == nil && syscall.Tgkill(pid, tid, syscall.SIGURG) == nil {
					signals.Add(1)
				}
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var once sync.Once
	stopSignals := func() { once.Do(func() { close(stop) }) }
	defer stopSignals()

	// The signals end with the sends: pebbe's poll restarts after every
	// signal, and a storm that never ends would never let it return.
	sent := make(chan error, 1)
	go func() {
		defer stopSignals()
		io := New()
		var seq [8]byte
		for i := range n {
			binary.BigEndian.PutUint64(seq[:], uint64(i))
			if err := io.Send(push, [][]byte{[]byte("REQ")}, [][]byte{seq[:], []byte("payload")}, 0); err != nil {
				sent <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sent <- nil
	}()
	next := uint64(0)
	bad := 0
	got := recvAll(t, New(), pull, n, func(msg [][]byte) {
		if len(msg) != 3 || binary.BigEndian.Uint64(msg[1]) != next {
			bad++
		}
		next++
	})
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got != n || bad != 0 {
		t.Fatalf("received %d messages (%d out of order or malformed), want %d", got, bad, n)
	}
	if signals.Load() == 0 {
		t.Fatal("no signal was sent: the test proved nothing")
	}
	t.Logf("%d messages through %d signals", n, signals.Load())
}

// TestPollerSocketsAndDescriptors: one poll reports a socket and a Waker's
// descriptor apart, through zb_poll and through the fallback used
// when pebbe's socket layout is unknown.
func TestPollerSocketsAndDescriptors(t *testing.T) {
	for _, tc := range []struct {
		name string
		poll func(p *Poller, timeout time.Duration) (int, error)
	}{
		{"zb_poll", (*Poller).Poll},
		{"fallback", func(p *Poller, timeout time.Duration) (int, error) {
			for i := range p.items {
				p.items[i].revents = 0
			}
			return p.pollSlow(timeout)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			push, pull := pair(t, 0)
			w, err := NewWaker()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var p Poller
			si := p.Add(pull, zmq4.POLLIN)
			wi := p.AddFd(w.Fd(), zmq4.POLLIN)
			poll := func(timeout time.Duration) int {
				t.Helper()
				n, err := tc.poll(&p, timeout)
				if err != nil {
					t.Fatalf("poll: %v", err)
				}
				return n
			}
			if n := poll(10 * time.Millisecond); n != 0 {
				t.Fatalf("idle poll: %d ready, want 0", n)
			}
			go w.Wake()
			if n := poll(20 * time.Second); n != 1 || p.Ready(wi) == 0 || p.Ready(si) != 0 {
				t.Fatalf("after Wake: %d ready (socket %v, waker %v), want the waker alone", n, p.Ready(si), p.Ready(wi))
			}
			w.Drain()
			if n := poll(0); n != 0 {
				t.Fatalf("after Drain: %d ready, want 0", n)
			}
			if _, err := push.SendBytes([]byte("m"), 0); err != nil {
				t.Fatal(err)
			}
			if n := poll(20 * time.Second); n != 1 || p.Ready(si)&zmq4.POLLIN == 0 || p.Ready(wi) != 0 {
				t.Fatalf("after a send: %d ready (socket %v, waker %v), want the socket alone", n, p.Ready(si), p.Ready(wi))
			}
			p.Update(si, 0)
			if n := poll(0); n != 0 {
				t.Fatalf("socket no longer watched: %d ready, want 0", n)
			}
		})
	}
}

// TestPollerSkipsOnlyArmedSockets: a socket the owner vouches for (Drained
// after an EAGAIN, Untouched after an idle poll) is not looked at before
// the wait, and a message for it is still reported; Untouched after a poll
// that found the socket ready does not hide the waiting message.
func TestPollerSkipsOnlyArmedSockets(t *testing.T) {
	if !Fast {
		t.Skip("the fallback looks at every socket")
	}
	push, pull := pair(t, 0)
	var p Poller
	si := p.Add(pull, zmq4.POLLIN)
	// A signal ends a Poll with EINTR, which means "look again"; the look
	// again is not skipped (the owner's word was for the interrupted one),
	// so a skip is checked only where no signal came.
	interrupted := false
	poll := func(timeout time.Duration) int {
		t.Helper()
		interrupted = false
		for {
			n, err := p.Poll(timeout)
			if errors.Is(err, zmq4.Errno(syscall.EINTR)) {
				interrupted = true
				continue
			}
			if err != nil {
				t.Fatalf("poll: %v", err)
			}
			return n
		}
	}
	send := func() {
		t.Helper()
		if _, err := push.SendBytes([]byte("m"), 0); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() {
		t.Helper()
		if _, err := pull.RecvBytes(zmq4.DONTWAIT); err != nil {
			t.Fatalf("receive: %v", err)
		}
	}

	// Drained: the receive that found nothing armed the descriptor.
	if _, err := pull.RecvBytes(zmq4.DONTWAIT); !errors.Is(err, zmq4.Errno(syscall.EAGAIN)) {
		t.Fatalf("receive on an empty socket: %v, want EAGAIN", err)
	}
	p.Drained(si)
	send()
	if n := poll(20 * time.Second); n != 1 || p.Ready(si)&zmq4.POLLIN == 0 || p.skip[si] != 1 && !interrupted {
		t.Fatalf("drained, then a message: %d ready (socket %v, skipped %v), want the socket, skipped", n, p.Ready(si), p.skip[si])
	}

	// Untouched after a poll that found it ready: looked at, still ready.
	p.Untouched(si)
	if n := poll(0); n != 1 || p.Ready(si)&zmq4.POLLIN == 0 || p.skip[si] != 0 {
		t.Fatalf("untouched while a message waits: %d ready (skipped %v), want the socket, looked at", n, p.skip[si])
	}
	recv()

	// Untouched after an idle poll: skipped, and the next message wakes it.
	if n := poll(10 * time.Millisecond); n != 0 {
		t.Fatalf("idle poll: %d ready, want 0", n)
	}
	p.Untouched(si)
	go func() {
		time.Sleep(10 * time.Millisecond)
		send()
	}()
	if n := poll(20 * time.Second); n != 1 || p.Ready(si)&zmq4.POLLIN == 0 || p.skip[si] != 1 && !interrupted {
		t.Fatalf("untouched after an idle poll, then a message: %d ready (skipped %v), want the socket, skipped", n, p.skip[si])
	}
	recv()

	// No word from the owner: looked at every time, as zmq_poll does.
	send()
	send()
	if n := poll(20 * time.Second); n != 1 {
		t.Fatalf("two messages: %d ready, want 1", n)
	}
	recv()
	if n := poll(0); n != 1 || p.skip[si] != 0 {
		t.Fatalf("one of two received: %d ready (skipped %v), want the socket, looked at", n, p.skip[si])
	}
	recv()
	if n := poll(0); n != 0 {
		t.Fatalf("both received: %d ready, want 0", n)
	}
}

// TestWakerAfterClose: a Wake racing a Close never writes to a released
// descriptor (which a new file could have taken); Close twice is fine.
func TestWakerAfterClose(t *testing.T) {
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	other, err := NewWaker() // likely takes the same descriptor number
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	w.Wake()
	w.Drain()
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var p Poller
	p.AddFd(other.Fd(), zmq4.POLLIN)
	if n, err := p.Poll(0); err != nil || n != 0 {
		t.Fatalf("the other waker is readable (%d, %v): a closed Waker wrote to its descriptor", n, err)
	}
}

// TestFastMatchesBuild checks both sides of the switch: the ztopo_slowpath
// tag turns the fast path off, and without it the fast path is on — so a
// pebbe release that moves the socket handle is noticed here rather than
// silently costing the fast path.
func TestFastMatchesBuild(t *testing.T) {
	if forceSlow && Fast {
		t.Fatal("ztopo_slowpath build: Fast = true, want false")
	}
	if !forceSlow && !Fast {
		t.Fatal("Fast = false: pebbe/zmq4's Socket no longer has the expected soc field; the fast paths are off")
	}
}
