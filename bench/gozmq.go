package main

// The hand-written pebbe/zmq4 equivalents: what a competent user writes
// without ztopo. One context per program, one goroutine per role, each
// owning its sockets; RecvMessageBytes/SendMessage loops where a stage must
// pass any multipart message on, RecvBytes/SendBytes where the program knows
// its messages are one frame. Blocked goroutines are released the zguide way:
// terminating the context makes their calls fail with ETERM, and each closes
// its own sockets on the way out.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// recvTimeout bounds every receive that waits for a result (sinks, the
// latency client, the fan-out publisher's subscription wait), so that a
// broken run fails instead of hanging; it is far above any healthy gap.
const recvTimeout = 30 * time.Second

// hand is the skeleton of a hand-written program: a context, goroutines,
// the first failure.
type hand struct {
	ctx *zmq.Context
	// mu orders every socket creation before the context's end: pebbe's
	// Context keeps its open flag in a plain field that NewSocket reads and
	// Term writes, and the race detector cannot see the ordering that the
	// messages between goroutines give.
	mu     sync.Mutex
	ended  bool
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	failed chan struct{} // closed on the first failure
	stop   chan struct{} // closed when the program winds down
}

func newHand() (*hand, error) {
	ctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	return &hand{ctx: ctx, failed: make(chan struct{}), stop: make(chan struct{})}, nil
}

// socket creates a socket with linger 0: nothing ever waits on unsent
// messages when the context terminates.
func (h *hand) socket(t zmq.Type) (*zmq.Socket, error) {
	h.mu.Lock()
	if h.ended {
		h.mu.Unlock()
		return nil, zmq.ETERM
	}
	s, err := h.ctx.NewSocket(t)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.SetLinger(0); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// spawn runs f in a goroutine; an error other than ETERM fails the program.
func (h *hand) spawn(f func() error) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := f(); err != nil && !isTerm(err) {
			h.fail(err)
		}
	}()
}

func (h *hand) fail(err error) {
	h.once.Do(func() {
		h.err = err
		close(h.failed)
	})
}

// wait blocks until done is closed or something failed, then finishes.
func (h *hand) wait(done <-chan struct{}) error {
	select {
	case <-done:
	case <-h.failed:
	}
	return h.finish()
}

// finish releases goroutines waiting on stop, terminates the context (which
// wakes every goroutine blocked in a ZeroMQ call with ETERM and returns once
// all of them closed their sockets) and returns the first failure.
func (h *hand) finish() error {
	close(h.stop)
	h.mu.Lock()
	h.ended = true
	h.mu.Unlock()
	terr := h.ctx.Term()
	h.wg.Wait()
	if h.err != nil {
		return h.err
	}
	return terr
}

func isTerm(err error) bool { return zmq.AsErrno(err) == zmq.ETERM }

// forward passes every message from in to out until the context ends.
func forward(in, out *zmq.Socket) error {
	for {
		msg, err := in.RecvMessageBytes(0)
		if err != nil {
			return err
		}
		if _, err := out.SendMessage(msg); err != nil {
			return err
		}
	}
}

// source sends n copies of msg on a socket that connects or binds ep, then
// keeps the socket open until the program winds down: a linger-0 close
// right after the last send would drop what is still queued. It starts once
// after is closed, and closes bound once it has bound or connected.
func (h *hand) source(t zmq.Type, bind bool, ep string, n int, msg []byte, after, bound chan struct{}) {
	h.spawn(func() error {
		if !h.await(after) {
			return nil
		}
		s, err := h.socket(t)
		if err != nil {
			return err
		}
		defer s.Close()
		if bind {
			err = s.Bind(ep)
		} else {
			err = s.Connect(ep)
		}
		if err != nil {
			return err
		}
		close(bound)
		for i := 0; i < n; i++ {
			if _, err := s.SendBytes(msg, 0); err != nil {
				return err
			}
		}
		<-h.stop
		return nil
	})
}

// await waits until ch is closed (true) or the program winds down (false).
// Connecting only after the peer has bound spares a tcp connect the
// reconnect interval (100 ms) it would wait after a refused first try.
func (h *hand) await(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-h.stop:
		return false
	}
}

// sink binds a PULL at ep, closes bound, and receives n messages, then
// closes done; check, when not nil, looks at the first message.
func (h *hand) sink(ep string, n int, got *int64, bound, done chan struct{}, check func([]byte) error) {
	h.spawn(func() error {
		s, err := h.socket(zmq.PULL)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.SetRcvtimeo(recvTimeout); err != nil {
			return err
		}
		if err := s.Bind(ep); err != nil {
			return err
		}
		close(bound)
		for *got < int64(n) {
			b, err := s.RecvBytes(0)
			if err != nil {
				return fmt.Errorf("sink after %d messages: %w", *got, err)
			}
			if *got == 0 && check != nil {
				if err := check(b); err != nil {
					return err
				}
			}
			*got++
		}
		close(done)
		return nil
	})
}

func goPushPull(p Params) (Result, error) {
	eps, sink, err := newEndpoints(p.Transport, "sink")
	if err != nil {
		return Result{}, err
	}
	defer eps.close()
	ep := sink[0]
	start := time.Now()
	h, err := newHand()
	if err != nil {
		return Result{}, err
	}
	var got int64
	bound, done := make(chan struct{}), make(chan struct{})
	h.sink(ep, p.Count, &got, bound, done, nil)
	h.source(zmq.PUSH, false, ep, p.Count, payload(p.Size), bound, make(chan struct{}))
	err = h.wait(done)
	return Result{Expected: int64(p.Count), Msgs: got, Seconds: time.Since(start).Seconds()}, err
}

// goPipeline is the zguide's ventilator, four workers and a sink, all
// goroutines of one program, over tcp.
func goPipeline(p Params) (Result, error) {
	return goStages(p, 4, nil)
}

func goForwardStage(p Params) (Result, error) {
	return goStages(p, 1, nil)
}

// goProxyStage is the forwarding stage as zmq.Proxy (libzmq's device loop),
// the baseline of the proxy builtin.
func goProxyStage(p Params) (Result, error) {
	return goStagesWith(p, 1, nil, true)
}

func goUpperStage(p Params) (Result, error) {
	return goStages(p, 1, upper)
}

// upper upper-cases the ASCII letters of msg's last frame in place.
func upper(msg [][]byte) {
	last := msg[len(msg)-1]
	for i, c := range last {
		if 'a' <= c && c <= 'z' {
			last[i] = c - ('a' - 'A')
		}
	}
}

func isUpper(b []byte) error {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			return fmt.Errorf("sink got %q: not upper-cased", b)
		}
	}
	return nil
}

// goStages runs source -> workers × stage -> sink; stage nil forwards.
func goStages(p Params, workers int, stage func([][]byte)) (Result, error) {
	return goStagesWith(p, workers, stage, false)
}

// goStagesWith is goStages; with proxy, each worker is zmq.Proxy(in, out).
func goStagesWith(p Params, workers int, stage func([][]byte), proxy bool) (Result, error) {
	eps, ep, err := newEndpoints(p.Transport, "vent", "sink")
	if err != nil {
		return Result{}, err
	}
	defer eps.close()
	ventEP, sinkEP := ep[0], ep[1]
	start := time.Now()
	h, err := newHand()
	if err != nil {
		return Result{}, err
	}
	var got int64
	done := make(chan struct{})
	var check func([]byte) error
	if stage != nil {
		check = isUpper
	}
	sinkBound, ventBound := make(chan struct{}), make(chan struct{})
	h.sink(sinkEP, p.Count, &got, sinkBound, done, check)
	h.source(zmq.PUSH, true, ventEP, p.Count, payload(p.Size), sinkBound, ventBound)
	for i := 0; i < workers; i++ {
		h.spawn(func() error {
			if !h.await(ventBound) {
				return nil
			}
			in, err := h.socket(zmq.PULL)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := h.socket(zmq.PUSH)
			if err != nil {
				return err
			}
			defer out.Close()
			if err := in.Connect(ventEP); err != nil {
				return err
			}
			if err := out.Connect(sinkEP); err != nil {
				return err
			}
			if proxy {
				return zmq.Proxy(in, out, nil)
			}
			if stage == nil {
				return forward(in, out)
			}
			for {
				msg, err := in.RecvMessageBytes(0)
				if err != nil {
					return err
				}
				stage(msg)
				if _, err := out.SendMessage(msg); err != nil {
					return err
				}
			}
		})
	}
	err = h.wait(done)
	return Result{Expected: int64(p.Count), Msgs: got, Seconds: time.Since(start).Seconds()}, err
}

// clientEnv passes Params.Client to a Go child: zbench.c's binary, whose
// `client` subcommand times a CClient scenario's round trips.
const clientEnv = "ZTOPO_BENCH_CLIENT"

// roundTrips times p's round trips against the server at ep: by the C
// client, a process of its own, when p names it (the reply must be the
// request), else by reqClient in this process.
func roundTrips(p Params, ep string, want func([]byte) []byte, start time.Time) (Result, error) {
	bin := p.Client
	if bin == "" || want != nil {
		lat, err := reqClient(ep, warmup(p), p.Count, p.Size, want)
		return latencyResult(p, lat, start), err
	}
	out, err := exec.Command(bin, "client", "--connect", ep, "--count", strconv.Itoa(p.Count),
		"--size", strconv.Itoa(p.Size), "--warmup", strconv.Itoa(warmup(p))).Output()
	var r Result
	if line := lastLine(string(out)); line != "" {
		if jerr := json.Unmarshal([]byte(line), &r); jerr != nil && err == nil {
			err = fmt.Errorf("client: unreadable result %q: %v", line, jerr)
		}
	}
	if err == nil && r.Err != "" {
		err = fmt.Errorf("client: %s", r.Err)
	}
	r.Expected, r.Seconds = int64(p.Count), time.Since(start).Seconds()
	return r, err
}

// reqClient is the latency client shared by the ztopo and go runs of a
// round-trip scenario: its own context, one REQ, warm round trips first,
// then n timed ones. Each reply must be the request, or want(request) when
// want is not nil.
func reqClient(ep string, warm, n, size int, want func([]byte) []byte) ([]time.Duration, error) {
	return withREQ(ep, func(s *zmq.Socket) ([]time.Duration, error) {
		msg := payload(size)
		expect := msg
		if want != nil {
			expect = want(bytes.Clone(msg))
		}
		lat := make([]time.Duration, 0, n)
		for i := 0; i < warm+n; i++ {
			t := time.Now()
			if _, err := s.SendBytes(msg, 0); err != nil {
				return lat, err
			}
			rep, err := s.RecvBytes(0)
			if err != nil {
				return lat, fmt.Errorf("round trip %d: %w", i, err)
			}
			if i >= warm {
				lat = append(lat, time.Since(t))
			}
			if string(rep) != string(expect) {
				return lat, fmt.Errorf("round trip %d: got %q, want %q", i, rep, expect)
			}
		}
		return lat, nil
	})
}

// withREQ runs use on a REQ socket connected to ep in a context of its
// own (linger 0, each receive bounded by recvTimeout), then ends the
// context: the client side of the round-trip and reload scenarios.
func withREQ(ep string, use func(*zmq.Socket) ([]time.Duration, error)) ([]time.Duration, error) {
	ctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	lat, err := func() ([]time.Duration, error) {
		s, err := ctx.NewSocket(zmq.REQ)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if err := s.SetLinger(0); err != nil {
			return nil, err
		}
		if err := s.SetRcvtimeo(recvTimeout); err != nil {
			return nil, err
		}
		if err := s.Connect(ep); err != nil {
			return nil, err
		}
		return use(s)
	}()
	return lat, errors.Join(err, ctx.Term())
}

func latencyResult(p Params, lat []time.Duration, start time.Time) Result {
	p50, p99 := percentiles(lat)
	return Result{Expected: int64(p.Count), Msgs: int64(len(lat)), Seconds: time.Since(start).Seconds(), P50us: p50, P99us: p99}
}

// echo answers every request on a REP socket with the same frames.
func echo(s *zmq.Socket) error {
	for {
		msg, err := s.RecvMessageBytes(0)
		if err != nil {
			return err
		}
		if _, err := s.SendMessage(msg); err != nil {
			return err
		}
	}
}

func goReqRepDirect(p Params) (Result, error) {
	ep, err := freeTCP()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	h, err := newHand()
	if err != nil {
		return Result{}, err
	}
	h.spawn(func() error {
		s, err := h.socket(zmq.REP)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.Bind(ep); err != nil {
			return err
		}
		return echo(s)
	})
	r, err := roundTrips(p, ep, nil, start)
	if err != nil {
		h.fail(err)
	}
	err = h.finish()
	return r, err
}

// goReqRepBroker is the zguide's shared queue: a ROUTER/DEALER proxy with
// one REP worker behind it on inproc.
func goReqRepBroker(p Params) (Result, error) {
	front, err := freeTCP()
	if err != nil {
		return Result{}, err
	}
	back := "inproc://bench-backend"
	start := time.Now()
	h, err := newHand()
	if err != nil {
		return Result{}, err
	}
	bound := make(chan struct{})
	h.spawn(func() error {
		fe, err := h.socket(zmq.ROUTER)
		if err != nil {
			return err
		}
		defer fe.Close()
		be, err := h.socket(zmq.DEALER)
		if err != nil {
			return err
		}
		defer be.Close()
		if err := fe.Bind(front); err != nil {
			return err
		}
		if err := be.Bind(back); err != nil {
			return err
		}
		close(bound)
		return zmq.Proxy(fe, be, nil)
	})
	h.spawn(func() error {
		select {
		case <-bound:
		case <-h.stop:
			return nil
		}
		s, err := h.socket(zmq.REP)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.Connect(back); err != nil {
			return err
		}
		return echo(s)
	})
	r, err := roundTrips(p, front, nil, start)
	if err != nil {
		h.fail(err)
	}
	err = h.finish()
	return r, err
}

// fanoutSubs is the number of subscribers of the fan-out scenario.
const fanoutSubs = 4

// goFanout publishes through an XSUB/XPUB proxy to four subscribers. The
// publisher is an XPUB so that it can see subscriptions arrive: each
// subscriber also subscribes to a topic of its own ("sub-0"...), which no
// message matches, and the publisher starts only when it has seen all four
// through the proxy (verbose XPUBs pass every subscription on). That is
// exact where a sleep would only be likely. Both XPUBs have no send
// high-water mark (SNDHWM 0) and XPUB_NODROP: with the default mark and
// XPUB_NODROP alone, libzmq 4.3.4 still lost a few messages of 500,000 now
// and then under load, and a scenario that counts exactly must not lose any.
func goFanout(p Params) (Result, error) {
	ports := make([]int, 2)
	for i := range ports {
		port, err := freePort()
		if err != nil {
			return Result{}, err
		}
		ports[i] = port
	}
	front := fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	back := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	start := time.Now()
	h, err := newHand()
	if err != nil {
		return Result{}, err
	}
	proxyBound := make(chan struct{})
	h.spawn(func() error {
		fe, err := h.socket(zmq.XSUB)
		if err != nil {
			return err
		}
		defer fe.Close()
		be, err := h.socket(zmq.XPUB)
		if err != nil {
			return err
		}
		defer be.Close()
		if err := be.SetXpubVerbose(1); err != nil {
			return err
		}
		if err := be.SetXpubNodrop(true); err != nil {
			return err
		}
		if err := be.SetSndhwm(0); err != nil {
			return err
		}
		if err := fe.Bind(front); err != nil {
			return err
		}
		if err := be.Bind(back); err != nil {
			return err
		}
		close(proxyBound)
		return zmq.Proxy(fe, be, nil)
	})
	counts := make([]int64, fanoutSubs)
	var subs sync.WaitGroup
	for i := range counts {
		subs.Add(1)
		h.spawn(func() error {
			defer subs.Done()
			if !h.await(proxyBound) {
				return nil
			}
			s, err := h.socket(zmq.SUB)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.SetRcvtimeo(recvTimeout); err != nil {
				return err
			}
			if err := s.SetSubscribe(""); err != nil {
				return err
			}
			if err := s.SetSubscribe(fmt.Sprintf("sub-%d", i)); err != nil {
				return err
			}
			if err := s.Connect(back); err != nil {
				return err
			}
			for counts[i] < int64(p.Count) {
				if _, err := s.RecvBytes(0); err != nil {
					return fmt.Errorf("subscriber %d after %d messages: %w", i, counts[i], err)
				}
				counts[i]++
			}
			return nil
		})
	}
	h.spawn(func() error {
		if !h.await(proxyBound) {
			return nil
		}
		s, err := h.socket(zmq.XPUB)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.SetXpubVerbose(1); err != nil {
			return err
		}
		if err := s.SetXpubNodrop(true); err != nil {
			return err
		}
		if err := s.SetSndhwm(0); err != nil {
			return err
		}
		if err := s.SetRcvtimeo(recvTimeout); err != nil {
			return err
		}
		if err := s.Connect(front); err != nil {
			return err
		}
		seen := map[string]bool{}
		for len(seen) < fanoutSubs {
			sub, err := s.RecvBytes(0)
			if err != nil {
				return fmt.Errorf("publisher waiting for subscribers (%d seen): %w", len(seen), err)
			}
			if len(sub) > 1 && sub[0] == 1 && string(sub[1:]) != "" {
				seen[string(sub[1:])] = true
			}
		}
		msg := payload(p.Size)
		for i := 0; i < p.Count; i++ {
			if _, err := s.SendBytes(msg, 0); err != nil {
				return err
			}
		}
		<-h.stop
		return nil
	})
	done := make(chan struct{})
	go func() { subs.Wait(); close(done) }()
	err = h.wait(done)
	var got int64
	for _, c := range counts {
		got += c
	}
	return Result{Expected: int64(p.Count) * fanoutSubs, Msgs: got, Seconds: time.Since(start).Seconds()}, err
}

// goStartup starts p.Nodes goroutines — a source, p.Nodes-2 forwarders, a
// sink — each opening its sockets on inproc, and times how long until every
// one of them is up. Then p.Count messages go through, so that every
// forwarder really runs.
func goStartup(p Params) (Result, error) {
	start := time.Now()
	h, err := newHand()
	if err != nil {
		return Result{}, err
	}
	// Two sockets per forwarder: the default limit (1023) is too small for
	// a thousand nodes, as a user finds out at once.
	if err := h.ctx.SetMaxSockets(4*p.Nodes + 64); err != nil {
		return Result{}, err
	}
	const ventEP, sinkEP = "inproc://bench-vent", "inproc://bench-sink"
	var up sync.WaitGroup
	up.Add(p.Nodes)
	begin := make(chan struct{})
	var got int64
	done := make(chan struct{})
	h.spawn(func() error {
		s, err := h.socket(zmq.PULL)
		if err != nil {
			up.Done()
			return err
		}
		defer s.Close()
		if err := s.SetRcvtimeo(recvTimeout); err != nil {
			up.Done()
			return err
		}
		err = s.Bind(sinkEP)
		up.Done()
		if err != nil {
			return err
		}
		for ; got < int64(p.Count); got++ {
			if _, err := s.RecvBytes(0); err != nil {
				return err
			}
		}
		close(done)
		return nil
	})
	for i := 0; i < p.Nodes-2; i++ {
		h.spawn(func() error {
			in, err := h.socket(zmq.PULL)
			if err != nil {
				up.Done()
				return err
			}
			defer in.Close()
			out, err := h.socket(zmq.PUSH)
			if err != nil {
				up.Done()
				return err
			}
			defer out.Close()
			err = errors.Join(in.Connect(ventEP), out.Connect(sinkEP))
			up.Done()
			if err != nil {
				return err
			}
			return forward(in, out)
		})
	}
	h.spawn(func() error {
		s, err := h.socket(zmq.PUSH)
		if err != nil {
			up.Done()
			return err
		}
		defer s.Close()
		err = s.Bind(ventEP)
		up.Done()
		if err != nil {
			return err
		}
		select {
		case <-begin:
		case <-h.stop:
			return nil
		}
		msg := payload(p.Size)
		for i := 0; i < p.Count; i++ {
			if _, err := s.SendBytes(msg, 0); err != nil {
				return err
			}
		}
		<-h.stop
		return nil
	})
	up.Wait()
	r := Result{Expected: int64(p.Count), StartupMs: float64(time.Since(start).Microseconds()) / 1e3}
	r.RSSMiB, r.Threads = procStatus()
	close(begin)
	select {
	case <-done:
	case <-h.failed:
	}
	// Every forwarder is now blocked in a receive: the most threads the
	// program holds.
	rss, threads := procStatus()
	r.RSSMiB, r.Threads = max(r.RSSMiB, rss), max(r.Threads, threads)
	err = h.finish()
	r.Msgs = got
	r.Seconds = time.Since(start).Seconds()
	return r, err
}
