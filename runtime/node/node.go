// Package node runs one node instance: a single goroutine that opens the
// instance's sockets, passes its start barrier, feeds its handler and closes
// everything again. Nothing else ever touches those sockets.
//
// Stopping: the node binds an inproc PAIR control socket
// (inproc://ztopo/ctl/<instance>/<seq>) and polls it together with its
// receive sockets. A small signaller goroutine, which owns the other end,
// sends "TERMINATE" when the Run context is cancelled or the handler is
// swapped, so a node blocked in a poll, a send held back by a full peer, a
// sync barrier or libzmq's steerable proxy wakes up at once. The word is the
// steerable proxy's own command, so the proxy builtin uses the control socket
// directly as the proxy's control socket.
//
// Handlers live in an atomic slot. SwapHandler stores a new one; the old one
// gets no further calls and is Closed (handler.Closer) from the node's
// goroutine — an Async one only after its pending results came back. A swap
// never closes a socket: messages keep queueing in libzmq meanwhile.
//
// Reactive handlers (handler.Handler) get one message at a time: a message
// from an `in` socket goes to every `out` socket; one from an `inout` socket
// is answered on it with its routing envelope restored. On REP and on a REQ
// (which then acts as an lbbroker worker: it announces itself with READY)
// a dropped message is answered with one empty frame, since those sockets
// must alternate receive and send. Runners (generate, proxy, lbbroker) get the
// sockets and own the loop.
//
// Run's result: nil when the handler completed, the context's error when the
// node was stopped, any other error when it failed (a socket error, a
// handler error wrapping handler.ErrFatal, a panic).
package node

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock"
	"github.com/ztopo/ztopo/spec"
)

// Ready is what a REQ worker sends first, the zguide's load-balancing
// broker's announcement.
const Ready = "READY"

// DefaultDrain is the drain bound when Config.Drain is zero.
const DefaultDrain = 5 * time.Second

// Config describes a node instance to run.
type Config struct {
	Spec    *spec.Node
	Context *zmq4.Context // the process's context, shared by every node
	// Handler is a handler.Handler (optionally Async) or a handler.Runner,
	// built by the owner from the node's factory.
	Handler any
	Logger  hclog.Logger
	// Stats per socket name, kept by the owner across restarts; missing
	// entries are created.
	Stats map[string]*zsock.Stats
	// Allow holds the live allow lists of CURVE server sockets, by socket
	// name, kept by the owner across restarts (a reload widens them in
	// place); missing entries: the spec's lists.
	Allow map[string]*zsock.Allow
	// Drain bounds the waits of an orderly end: the linger of a completed
	// node's sockets (its last messages still reach their peers after it has
	// gone), and how long pending Async results are awaited. 0: DefaultDrain.
	Drain time.Duration
	// OnOpen, if set, is called from the node's goroutine once its sockets
	// (and the REP of a `sync: {expect}` barrier) are bound and connected,
	// before the barrier: peers that connect to what it binds may start.
	OnOpen func()
	// OnRunning, if set, is called from the node's goroutine when the handler
	// starts, after the sync barrier.
	OnRunning func()
	// OnCompleted, if set, is called from the node's goroutine when the
	// handler completed.
	OnCompleted func()
	// HoldOnComplete keeps a completed node's sockets open until Run's
	// context is cancelled. Messages it sent may still sit in libzmq's
	// queues, and closing a socket does not reliably deliver them even with
	// a linger (libzmq issue 4660 for ipc, 3774 for tcp): they leave while
	// the socket stays open. The engine stops completed nodes after the
	// drain.
	HoldOnComplete bool
	// NoBindRetry: a bind on an address in use fails at once (zsock).
	NoBindRetry bool
	// WatchPeers counts the connections accepted on the sockets' tcp and
	// ipc binds into Stats (zsock.Stats.Peers): the engine's drain asks
	// whether a relay has a peer outside the topology.
	WatchPeers bool
}

// Node is one node instance. Create it with New, run it with Run (once),
// and from any goroutine swap its handler or read its socket counters.
type Node struct {
	cfg  Config
	log  hclog.Logger
	slot atomic.Pointer[slot]
	wake chan struct{}

	mu        sync.Mutex
	runCancel context.CancelFunc // cancels the running Runner, if any
	stale     []any              // swapped-out handlers the node has yet to retire

	seenGen atomic.Uint64 // generation of the handler the node last started

	// inHand counts the messages the node took from its sockets whose
	// output has not been sent yet: the one a synchronous handler is
	// working on, and those an Async handler holds. The engine's drain
	// waits for it to reach zero (a busy handler is not idle).
	inHand atomic.Int64
	// quiesce asks a Runner to stop producing while the node keeps its
	// sockets open (StopProducing).
	quiesce atomic.Bool
	// dropped counts the messages the node took in and abandoned because
	// it was stopped: a handler interrupted, an output that could not be
	// sent any more, results an Async handler still held.
	dropped atomic.Int64

	stats map[string]*zsock.Stats

	// tapWake is set by TapChanged until the node has looked at its taps
	// again: while it forwards inside the C proxy, the signaller repeats
	// the wake-up until then.
	tapWake atomic.Bool
	// proxied counts the runs of this node whose messages libzmq's proxy
	// moves right now (setFast): their counters lag (CountersLag).
	proxied atomic.Int32
	// quickUntil (Unix ns): until then the signaller refreshes a proxied
	// run's counters every statsBusy. A proxy's start and every refresh
	// that saw messages move push it statsLinger ahead.
	quickUntil atomic.Int64
	// refresh carries FreshCounters' requests to the running signaller.
	refresh chan chan bool
}

// MaxCountersLag is the longest a proxied node's counters trail the
// messages it moved: the signaller refreshes them every statsIdle when
// idle, and waits up to statsReply for the proxy's answer.
const MaxCountersLag = statsIdle + statsReply

// quickCountersLag is how far they trail while the signaller refreshes
// them every statsBusy (quickUntil).
const quickCountersLag = statsBusy + statsReply

// CountersLag is how far the node's counters may trail what it moves from
// now on: 0 while its own loop counts each message; while libzmq's proxy
// moves them, quickCountersLag for statsLinger after the proxy started or
// was last seen moving messages, MaxCountersLag after a longer stillness.
// A drain must see them still for longer than that before it calls the
// node idle, and must ask again at every look: the answer grows when the
// node has been still for statsLinger.
func (n *Node) CountersLag() time.Duration {
	if n.proxied.Load() == 0 {
		return 0
	}
	if time.Now().UnixNano() < n.quickUntil.Load() {
		return quickCountersLag
	}
	return MaxCountersLag
}

// FreshCounters brings the counters of a node whose messages libzmq's
// proxy moves up to date: the signaller asks the proxy at once, and
// FreshCounters waits for the answer, at most bound. It reports whether
// the counters now hold everything the node moved before the call — at
// once when its own loop counts each message — so that a drain can judge
// it by them as it judges any other node, without waiting out CountersLag.
// Safe from any goroutine.
func (n *Node) FreshCounters(bound time.Duration) bool {
	if n.proxied.Load() == 0 {
		return true
	}
	req := make(chan bool, 1)
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case n.refresh <- req:
	case <-t.C:
		return false
	}
	select {
	case fresh := <-req:
		return fresh
	case <-t.C:
		return false
	}
}

type slot struct {
	h   any
	gen uint64
}

// New returns a node ready to Run.
func New(cfg Config) *Node {
	if cfg.Drain <= 0 {
		cfg.Drain = DefaultDrain
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), refresh: make(chan chan bool), stats: map[string]*zsock.Stats{}}
	for _, s := range cfg.Spec.Sockets {
		st := cfg.Stats[s.Name]
		if st == nil {
			st = &zsock.Stats{}
		}
		n.stats[s.Name] = st
	}
	n.slot.Store(&slot{h: cfg.Handler})
	return n
}

// Stats returns the counters of the named socket, or nil.
func (n *Node) Stats(socket string) *zsock.Stats { return n.stats[socket] }

// Handler returns the current handler.
func (n *Node) Handler() any { return n.slot.Load().h }

// SwapHandler makes h the node's handler. The previous one gets no further
// calls once the node notices (at its next message, or at once when idle)
// and is then closed by the node; a running Runner is asked to return.
// Safe from any goroutine, before or during Run.
func (n *Node) SwapHandler(h any) {
	n.mu.Lock()
	old := n.slot.Load()
	n.slot.Store(&slot{h: h, gen: old.gen + 1})
	n.stale = append(n.stale, old.h)
	if n.runCancel != nil {
		n.runCancel()
	}
	n.mu.Unlock()
	n.wakeUp()
	n.awaitFastStop(old.gen + 1)
}

// swapBound bounds how long SwapHandler waits for a C loop to let go.
const swapBound = 2 * time.Second

// awaitFastStop returns once no C loop (proxy, echo, sink) takes messages
// for a handler older than generation gen, so that every message sent
// after SwapHandler returned is the new handler's, as on the Go loop,
// which checks the handler after each receive. Bounded by swapBound: a
// node that does not get there in time is reported by its own loop.
func (n *Node) awaitFastStop(gen uint64) {
	deadline := time.Now().Add(swapBound)
	for pause := 50 * time.Microsecond; n.proxied.Load() > 0 && n.seenGen.Load() < gen && time.Now().Before(deadline); pause = min(2*pause, 5*time.Millisecond) {
		time.Sleep(pause)
	}
}

// TapChanged tells the node that a tap was attached to, or detached from,
// one of its sockets' Stats: a forward, echo or counting sink on the fast
// path (fastpath.go) leaves its C loop while a tap is attached, so that the tap sees each
// message, and goes back to it once none is. Safe from any goroutine.
func (n *Node) TapChanged() {
	switch n.Handler().(type) {
	case handler.Passthrough, handler.Discarder:
	default:
		return // never in a C loop; a wake-up would only disturb a Runner
	}
	n.tapWake.Store(true)
	n.wakeUp()
}

// InFlight is how many messages the node has taken from its sockets and
// not yet answered or passed on: 1 while a synchronous handler works on
// one, plus what an Async handler holds. Safe from any goroutine.
func (n *Node) InFlight() int64 { return n.inHand.Load() }

// Dropped is how many messages the node took from its sockets and
// abandoned because it was stopped before their output went out.
func (n *Node) Dropped() int64 { return n.dropped.Load() }

// StopProducing asks a Runner (generate) to stop sending while the node
// keeps its sockets open until Run's context ends, so that what it already
// sent still leaves libzmq's queues — as a completed node does. A reactive
// handler is not affected. Safe from any goroutine, before or during Run.
func (n *Node) StopProducing() {
	n.mu.Lock()
	n.quiesce.Store(true)
	if n.runCancel != nil {
		n.runCancel()
	}
	n.mu.Unlock()
	n.wakeUp()
}

// wakeUp tells a running node to look at its slot, taps and stop request
// again; a wake-up already pending says it too.
func (n *Node) wakeUp() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// errQuiesced is how runRunner says that a Runner stopped producing on
// StopProducing.
var errQuiesced = errors.New("node stopped producing")

// Completes reports whether handler h may complete on its own.
func Completes(h any) bool {
	c, ok := h.(handler.Completer)
	return ok && c.Completes()
}

var ctlSeq atomic.Uint64

// resendEvery is how often the signaller repeats a control message the node
// has not acted on yet.
const resendEvery = 100 * time.Millisecond

// errStopped is how inner loops say "the node is stopping"; Run turns it
// into the context's error.
var errStopped = errors.New("node stopped")

// Run runs the node until its handler completes (nil), ctx is cancelled
// (ctx's error) or it fails (any other error). Every socket it opened is
// closed when it returns.
func (n *Node) Run(ctx context.Context) (err error) {
	r := &run{n: n, ctx: ctx, log: n.log, errs: errLog{log: n.log}, byName: map[string]*rsock{}, pending: map[uint64]pendingMsg{}}
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
		// Any cleanup left (after a panic) happens here, on this goroutine.
		r.closeAll(false)
	}()

	if err := r.openControl(); err != nil {
		return err
	}
	if err := r.openSockets(); err != nil {
		return err
	}
	rep, err := r.openSyncRep()
	if err != nil {
		return err
	}
	if n.cfg.OnOpen != nil {
		n.cfg.OnOpen()
	}
	if err := r.barrier(rep); err != nil {
		if errors.Is(err, errStopped) {
			return ctx.Err()
		}
		return err
	}
	if n.cfg.OnRunning != nil {
		n.cfg.OnRunning()
	}
	completed, err := r.loop()
	if len(r.acks) > 0 {
		r.flushAcks() // the last messages' acknowledgements, before any hold
	}
	if completed && err == nil && len(r.reliable) > 0 {
		// Complete only once everything sent is acknowledged.
		if left := r.relDrain(time.Time{}); left > 0 {
			completed = false
		}
	}
	if errors.Is(err, errQuiesced) {
		// What it sent may still be queued: keep the sockets open until
		// stopped, then close them with the drain linger, as a completed
		// node does.
		r.holdOpen()
		r.finish(true)
		if err = ctx.Err(); err == nil {
			err = context.Canceled
		}
		return err
	}
	if err == nil && !completed {
		err = ctx.Err()
		if err == nil {
			err = context.Canceled
		}
	}
	if errors.Is(err, errStopped) {
		err = ctx.Err()
	}
	if completed && err == nil {
		if n.cfg.OnCompleted != nil {
			n.cfg.OnCompleted()
		}
		if n.cfg.HoldOnComplete {
			r.holdOpen()
		}
	}
	r.finish(completed && err == nil)
	return err
}

// holdOpen waits, sockets open, until the node is stopped. Incoming
// messages stay queued in libzmq (up to the high-water mark) and are
// dropped at close: a completed node has nothing more to do with them.
// Except on at-least-once edges, where what comes is taken, acknowledged
// and dropped: its sender completes only once everything it sent is
// acknowledged, and a copy sent again (a peer on the way died holding it)
// of a message this node already took would otherwise keep that sender,
// and the topology, from ever completing.
func (r *run) holdOpen() {
	r.n.log.Debug("completed; holding sockets open until stopped")
	var acked []*rsock
	for _, s := range r.recv {
		if s.acks {
			acked = append(acked, s)
		}
	}
	for !r.stopped() {
		poller := zmq4.NewPoller()
		poller.Add(r.ctl, zmq4.POLLIN)
		for _, s := range acked {
			poller.Add(s.sock.Z, zmq4.POLLIN)
		}
		if _, err := poller.Poll(-1); err != nil && !zsock.IsInterrupted(err) {
			return
		}
		r.readCtl()
		for _, s := range acked {
			for {
				frames, err := s.sock.Recv(zmq4.DONTWAIT)
				if err != nil {
					break
				}
				_, body := s.sock.SplitEnvelope(frames)
				if in, _ := relSplit(body); in != nil {
					r.ackUp(in.key, in.id)
				}
			}
		}
		if len(r.acks) > 0 {
			r.flushAcks()
		}
	}
}

// run is the state of one Run, owned by the node's goroutine.
type run struct {
	n    *Node
	ctx  context.Context
	log  hclog.Logger
	errs errLog // handler errors, rate-limited

	ctl     *zmq4.Socket
	ctlAddr string
	sigQuit chan struct{}
	sigDone chan struct{}
	socks   []*rsock
	byName  map[string]*rsock
	recv    []*rsock // role in and inout, polled
	outs    []*rsock // role out
	closed  bool
	workers bool // some socket speaks a worker protocol (worker.go)

	// At-least-once delivery (delivery.go).
	reliable []*rsock                // sockets that deliver at least once
	relCur   *relIn                  // header of the message being handled
	relUp    *upCount                // its acknowledgement, owed once its copies are acknowledged
	acks     map[string][][]byte     // acknowledgements to send, by sender key
	ackSocks map[string]*zmq4.Socket // PUSH to each sender's acknowledgement endpoint

	// Async bookkeeping.
	tag      uint64
	pending  map[uint64]pendingMsg
	retiring []handler.Async
	// carry is a message the reactive loop received after a swap was
	// published, for the swapped-in handler (reactive.go).
	carry    *pendingIn
	poller   *zbatch.Poller // the reactive loop's, for lockstep holds
	ctlUsed  uint64         // uses of ctl outside the reactive loop's poller: readCtl, other pollers
	draining bool           // finishing: sends never wait
	// sleeping is set while the reactive loop waits with results
	// outstanding; resultReady then wakes it through resultWaker, made
	// when a Notifier handler first runs.
	sleeping    atomic.Bool
	resultWaker *zbatch.Waker

	// fast is set while a forward runs as libzmq's proxy (fastpath.go);
	// the signaller reads the proxy's counters into the socket stats.
	fast atomic.Pointer[proxyStats]
	// statsKick tells the signaller that a proxy started: refresh its
	// counters soon rather than at the idle pace.
	statsKick chan struct{}
	// ctlMu orders the signaller's words on the control pair against the
	// start and end of a proxy run (startProxy, stopProxy): every command
	// a proxy reads was sent while its own proxyStats was r.fast, so a
	// TERMINATE always follows that run's final STATISTICS. Without it a
	// TERMINATE sent while no proxy ran (or a STATISTICS meant for the
	// run before) was read by the next run, which then stopped with the
	// messages it had moved never counted.
	ctlMu sync.Mutex
}

type rsock struct {
	name      string
	sock      *zsock.Socket
	role      spec.Role
	lockstep  bool // REP, REQ worker: must reply before receiving again
	worker    bool // REQ acting as an lbbroker worker
	inflight  int  // async messages awaiting their result (lockstep sockets)
	pollIdx   int
	drained   bool         // the loop's last use was a receive that found nothing (zbatch.Poller.Drained)
	announced bool         // the worker's READY went out
	warned    bool         // a send failure was logged
	wk        *workerState // the reliable worker protocol spoken here (worker.go)
	rel       *relSender   // delivery: at-least-once (delivery.go)
	acks      bool         // reliable senders feed it: read headers, acknowledge
}

type pendingMsg struct {
	from *rsock
	env  [][]byte
	rel  *relIn // delivery header, nil: none
}

func (r *run) openControl() error {
	n := r.n
	r.ctlAddr = fmt.Sprintf("inproc://ztopo/ctl/%s/%d", n.cfg.Spec.Name, ctlSeq.Add(1))
	ctl, err := n.cfg.Context.NewSocket(zmq4.PAIR)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	_ = ctl.SetLinger(0)
	if err := ctl.Bind(r.ctlAddr); err != nil {
		ctl.Close()
		return fmt.Errorf("control socket: bind %s: %w", r.ctlAddr, err)
	}
	r.ctl = ctl
	r.sigQuit = make(chan struct{})
	r.sigDone = make(chan struct{})
	r.statsKick = make(chan struct{}, 1)
	go r.signaller(r.ctx, r.sigQuit, r.sigDone)
	return nil
}

// signaller owns the connecting end of the control pair: it turns context
// cancellation and handler swaps into a message the node can poll.
func (r *run) signaller(ctx context.Context, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	s, err := r.n.cfg.Context.NewSocket(zmq4.PAIR)
	if err != nil {
		r.log.Error("control signaller: cannot create socket", "error", err)
		return
	}
	defer s.Close()
	_ = s.SetLinger(0)
	if err := s.Connect(r.ctlAddr); err != nil {
		r.log.Error("control signaller: cannot connect", "error", err)
		return
	}
	send := func() {
		r.ctlMu.Lock()
		defer r.ctlMu.Unlock()
		r.finalProxyStats(s)
		// Never blocks: the node's end is bound before this goroutine starts,
		// so the pipe exists, and it holds far more than the few wake-ups
		// that can be outstanding.
		if _, err := s.Send(handler.ControlTerminate, zmq4.DONTWAIT); err != nil && !zsock.IsAgain(err) {
			r.log.Debug("control signaller: send failed", "error", err)
		}
	}
	// libzmq 4.3.4's steerable proxy can miss a control message that
	// arrives while it waits (seen with tcp peers coming and going); another
	// one gets through. So the word is repeated until the node has acted:
	// stopped (quit), or picked up the swapped-in handler.
	ctxDone := ctx.Done()
	stopping := false
	var again <-chan time.Time
	stats := time.NewTimer(statsIdle)
	defer stats.Stop()
	for {
		select {
		case <-stats.C:
			next, _ := r.refreshProxyStats(s)
			stats.Reset(next)
		case req := <-r.n.refresh:
			next, fresh := r.refreshProxyStats(s)
			stats.Reset(next)
			req <- fresh
		case <-r.statsKick:
			stats.Reset(statsBusy)
		case <-ctxDone:
			ctxDone, stopping = nil, true
			send()
			again = time.After(resendEvery)
		case <-r.n.wake:
			send()
			again = time.After(resendEvery)

		case <-again:
			again = nil
			if stopping || r.n.slot.Load().gen > r.n.seenGen.Load() || (r.fast.Load() != nil && r.n.tapWake.Load()) {
				send()
				again = time.After(resendEvery)
			}
		case <-quit:
			return
		}
	}
}

func (r *run) openSockets() error {
	n := r.n
	sp := n.cfg.Spec
	watch := sp.Sync != nil
	for _, s := range sp.Sockets {
		zs, err := zsock.OpenWith(n.cfg.Context, s, zsock.Options{Stats: n.stats[s.Name], Allow: n.cfg.Allow[s.Name], WatchHandshakes: watch, WatchPeers: n.cfg.WatchPeers, SeeSubscriptions: seeSubscriptions(sp, s), Node: sp.Name, Logger: n.log, NoBindRetry: n.cfg.NoBindRetry})
		if err != nil {
			return err
		}
		role := s.EffectiveRole()
		rs := &rsock{name: s.Name, sock: zs, role: role}
		t := s.Type
		rs.lockstep = t == spec.REP || t == spec.REQ
		rs.worker = t == spec.REQ && role != spec.RoleOut
		r.setupWorker(rs)
		r.socks = append(r.socks, rs)
		if err := r.openReliable(rs); err != nil {
			return err
		}
		r.byName[s.Name] = rs
		switch role {
		case spec.RoleIn, spec.RoleInOut:
			r.recv = append(r.recv, rs)
		case spec.RoleOut:
			r.outs = append(r.outs, rs)
		}
	}
	return nil
}

// seeSubscriptions says whether socket s of node sp is opened to see its
// subscriptions: a PUB that connects, of a node with a `sync: {expect}`
// barrier. Its subscribers reach it through something it connects to (a
// proxy's XSUB), and their sync requests say nothing about that last hop:
// the barrier waits for a subscription to arrive (waitSubscribed). A PUB
// that binds gets its subscribers' subscriptions straight from them.
func seeSubscriptions(sp *spec.Node, s *spec.Socket) bool {
	return sp.Sync != nil && sp.Sync.Expect > 0 && s.Type == spec.PUB && len(s.Connect) > 0
}

// readCtl consumes every waiting control message and reports whether the
// node must stop.
func (r *run) readCtl() bool {
	r.ctlUsed++
	for {
		if _, err := r.ctl.RecvBytes(zmq4.DONTWAIT); err != nil {
			break
		}
	}
	return r.ctx.Err() != nil
}

// finish ends a run in order: pending async results are awaited (bounded),
// handlers closed, sockets closed — with the drain linger when the node
// completed, so its last messages still go out.
func (r *run) finish(completed bool) {
	if r.carry != nil {
		r.carry = nil
		r.n.dropped.Add(1) // taken in, and stopped before a handler had it
	}
	r.drainAsync()
	r.errs.flush()
	if r.relPending() > 0 {
		// Stopped with messages unacknowledged: give their receivers the
		// drain grace (they may still be sending them again).
		r.relDrain(time.Now().Add(r.n.cfg.Drain))
	}
	r.closeAll(completed)
}

func (r *run) closeAll(completed bool) {
	if r.closed {
		return
	}
	r.closed = true
	cctx, cancel := context.WithTimeout(context.Background(), r.n.cfg.Drain)
	defer cancel()
	for _, h := range r.takeStale() {
		r.closeHandler(cctx, h)
	}
	for _, a := range r.retiring {
		r.closeHandler(cctx, a)
	}
	r.retiring = nil
	r.closeHandler(cctx, r.n.slot.Load().h)
	// Closed handlers call resultReady no more.
	if r.resultWaker != nil {
		_ = r.resultWaker.Close()
	}
	r.closeReliable()
	for _, s := range r.socks {
		l := s.sock.Linger()
		// A completed node's last output may still be queued: give it the
		// drain grace to leave (over tcp; see HoldOnComplete). Receiving
		// sockets keep their own linger — a SUB's pending unsubscription to
		// a publisher that is gone would only hold up context termination.
		if completed && s.role != spec.RoleIn && l >= 0 && l < r.n.cfg.Drain {
			l = r.n.cfg.Drain
		}
		if err := s.sock.CloseLinger(l); err != nil {
			r.log.Debug("close socket", "socket", s.name, "error", err)
		}
	}
	r.socks = nil
	if r.ctl != nil {
		close(r.sigQuit)
		<-r.sigDone
		r.ctl.Close()
		r.ctl = nil
	}
}

func (r *run) takeStale() []any {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	st := r.n.stale
	r.n.stale = nil
	return st
}

func (r *run) closeHandler(ctx context.Context, h any) {
	c, ok := h.(handler.Closer)
	if !ok {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("handler close panicked", "panic", fmt.Sprint(p))
		}
	}()
	if err := c.Close(ctx); err != nil {
		r.log.Warn("handler close failed", "error", err)
	}
}

// loop runs handlers until completion, stop or failure, following swaps.
func (r *run) loop() (completed bool, err error) {
	var prev any // the handler that ran before a swap
	for {
		if r.ctx.Err() != nil {
			return false, nil
		}
		r.retireStale()
		cur := r.n.slot.Load()
		r.n.seenGen.Store(cur.gen)
		var swapped bool
		switch h := cur.h.(type) {
		case handler.Runner:
			if inh, ok := h.(handler.Inheritor); ok && prev != nil && prev != cur.h {
				inh.Inherit(prev)
			}
			completed, swapped, err = r.runRunner(h, cur)
		case handler.Handler:
			completed, swapped, err = r.reactive(cur)
		default:
			return false, fmt.Errorf("handler %T is neither a Handler nor a Runner", cur.h)
		}
		if err != nil || completed || !swapped {
			return completed, err
		}
		if r.n.slot.Load() != cur {
			r.log.Info("handler swapped")
		}
		prev = cur.h
	}
}

// retireStale closes the handlers swapped out since the last look, now that
// they get no more calls; an Async one first returns what it holds.
func (r *run) retireStale() {
	for _, h := range r.takeStale() {
		if a, ok := h.(handler.Async); ok && a.Pending() > 0 {
			r.retiring = append(r.retiring, a)
			continue
		}
		cctx, cancel := context.WithTimeout(context.Background(), r.n.cfg.Drain)
		r.closeHandler(cctx, h)
		cancel()
	}
}

func (r *run) runRunner(h handler.Runner, cur *slot) (completed, swapped bool, err error) {
	n := r.n
	n.mu.Lock()
	rctx, cancel := context.WithCancel(r.ctx)
	if n.slot.Load() != cur {
		cancel() // swapped before it even started
	}
	n.runCancel = cancel
	if n.quiesce.Load() {
		cancel()
	}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.runCancel = nil
		n.mu.Unlock()
		cancel()
	}()

	err = h.Run(rctx, &sockets{r: r, ctx: rctx})
	switch {
	case r.ctx.Err() != nil:
		return false, false, nil
	case rctx.Err() != nil && n.quiesce.Load() && n.slot.Load() == cur:
		return false, false, errQuiesced
	case rctx.Err() != nil && n.slot.Load() != cur:
		return false, true, nil
	case err == nil || errors.Is(err, handler.ErrDone):
		return true, false, nil
	case errors.Is(err, errStopped):
		return false, false, nil
	}
	return false, false, err
}
