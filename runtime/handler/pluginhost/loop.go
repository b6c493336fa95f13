package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/pebbe/zmq4"
	"github.com/ztopo/ztopo/internal/zbatch"
	"github.com/ztopo/ztopo/plugins"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/supervise"
	"github.com/ztopo/ztopo/runtime/zsock"
)

type eventKind int

const (
	evCall  eventKind = iota // a message from Submit or Handle
	evSwap                   // Swap: start cfg, reply when it is READY or failed
	evExit                   // gen's process has exited
	evClose                  // Close: STOP everything, grace, kill
	evKill                   // Close's ctx is done: kill everything now
)

type event struct {
	kind  eventKind
	call  *call
	cfg   Config
	reply chan error
	gen   *gen
}

// call is one message between Submit and its Result. Calls not yet
// answered are in loop.calls and, in arrival order (which is deadline
// order, the timeout being fixed), in loop.list.
type call struct {
	id       uint64
	tag      uint64
	frames   [][]byte
	reply    chan handler.Result // Handle's; nil: Results
	gen      *gen                // where it was sent; nil while waiting
	sent     time.Time
	deadline time.Time
	done     bool

	prev, next *call
}

type genState int

const (
	starting genState = iota // waiting for READY
	ready                    // READY; takes new messages when it is loop.cur
	draining                 // replaced by a swap: answers what it holds
	stopping                 // sent STOP, waiting for the exit until stopBy
)

var stateNames = [...]string{"starting", "ready", "draining", "stopping"}

// idleSince is when g last showed progress while owing answers.
func (g *gen) idleSince() time.Time {
	if g.lastAnswer.After(g.busySince) {
		return g.lastAnswer
	}
	return g.busySince
}

// gen is one plugin process and its ROUTER.
type gen struct {
	n        int
	cfg      Config
	router   *zmq4.Socket
	mon      *zmq4.Socket // the ROUTER's disconnect events
	path     string       // of the ipc endpoint
	proc     *supervise.Process
	peer     []byte // routing id from READY
	state    genState
	killed   bool
	exited   bool
	inflight int
	readyBy  time.Time
	stopBy   time.Time
	// owed counts requests sent and not answered, timed-out ones
	// included (the plugin still holds them); busySince is when owed
	// last rose from 0. Both, with lastAnswer, detect a hang.
	owed       int
	busySince  time.Time
	lastAnswer time.Time
	onReady    func(error)
	warned     bool
}

type loop struct {
	h       *Host
	poller  zbatch.Poller
	dirty   bool // gens changed: rebuild the poller
	gens    []*gen
	cur     *gen // takes new messages once ready; nil while restarting
	curCfg  Config
	waiting []*call // arrived while no plugin was ready, in order
	calls   map[uint64]*call
	list    call // sentinel of the unanswered calls, oldest first
	nextID  uint64
	genSeq  int

	limiter   *supervise.Limiter // the node's restart policy over plugin restarts
	restartAt time.Time
	swapping  bool
	closing   bool
	failed    error
	now       time.Time
	idbuf     []byte
	zio       *zbatch.IO
	head      [][]byte // [peer, REQ, id] of the request being sent
	batch     []event
}

var (
	reqCmd  = []byte(plugins.Req)
	stopCmd = []byte(plugins.Stop)
)

// run is the loop goroutine: it owns every generation's ROUTER, and reports the first plugin's handshake on
// initDone.
func (h *Host) run(ctx context.Context, initDone chan<- error) {
	defer h.books.Finished()
	defer h.events.Close() // after an early return; else a no-op
	l := &loop{h: h, calls: map[uint64]*call{}, curCfg: h.cfg, now: time.Now(), zio: zbatch.New(),
		limiter: supervise.NewLimiter(h.cfg.Restart)}
	l.list.next, l.list.prev = &l.list, &l.list

	stopCtx := context.AfterFunc(ctx, func() {
		h.books.Fail(fmt.Errorf("%w: %v", ErrClosed, context.Cause(ctx)))
		h.events.Put(event{kind: evClose})
	})
	defer stopCtx()

	first, err := l.startGen(h.cfg, nil)
	if err != nil {
		initDone <- err
		return
	}
	first.onReady = func(err error) {
		if err == nil {
			l.setCur(first)
		} else {
			l.fail(err)
		}
		initDone <- err
	}

	for !((l.closing || l.failed != nil) && len(l.gens) == 0) {
		l.turn()
	}
	for _, ev := range h.events.Close() {
		l.handle(ev)
	}
	for _, c := range l.calls {
		l.finish(c, handler.Result{Err: h.books.ClosedErr()})
	}
}

// turn does one round: events, answers, timers; it sleeps in a poll only
// when none of those had anything to do.
func (l *loop) turn() {
	l.now = time.Now()
	progress := false
	l.batch = l.h.events.Take(l.batch)
	for i := range l.batch {
		l.handle(l.batch[i])
		l.batch[i] = event{}
		progress = true
	}
	for i := 0; i < len(l.gens); i++ {
		if l.recvFrom(l.gens[i]) {
			progress = true
		}
		if l.events(l.gens[i]) {
			progress = true
		}
	}
	l.timers()
	if progress {
		return
	}
	if l.dirty {
		l.poller = zbatch.Poller{}
		l.poller.AddFd(l.h.events.Fd(), zmq4.POLLIN)
		for _, g := range l.gens {
			if g.router != nil {
				l.poller.Add(g.router, zmq4.POLLIN)
				l.poller.Add(g.mon, zmq4.POLLIN)
			}
		}
		l.dirty = false
	}
	if _, err := l.poller.Poll(l.sleepFor()); err != nil {
		if zmq4.AsErrno(err) == zmq4.Errno(syscall.EINTR) {
			return
		}
		l.h.log.Error("plugin host poll failed", "error", err)
		time.Sleep(10 * time.Millisecond)
		return
	}
	if l.poller.Ready(0) != 0 {
		l.h.events.Drain()
	}
}

// sleepFor is the time until the next timer, at most a second.
func (l *loop) sleepFor() time.Duration {
	next := l.now.Add(time.Second)
	if c := l.list.next; c != &l.list && c.deadline.Before(next) {
		next = c.deadline
	}
	if !l.restartAt.IsZero() && l.restartAt.Before(next) {
		next = l.restartAt
	}
	for _, g := range l.gens {
		if g.state == starting && g.readyBy.Before(next) {
			next = g.readyBy
		}
		if g.state == stopping && !g.killed && g.stopBy.Before(next) {
			next = g.stopBy
		}
		if g.owed > 0 && !g.killed {
			if t := g.idleSince().Add(l.h.cfg.Timeout); t.Before(next) {
				next = t
			}
		}
	}
	// Poll counts whole milliseconds: round up rather than spin.
	return max(next.Sub(l.now)+time.Millisecond-1, time.Millisecond)
}

func (l *loop) handle(ev event) {
	switch ev.kind {
	case evCall:
		c := ev.call
		if l.closing || l.failed != nil {
			l.finishNew(c, l.h.books.ClosedErr())
			return
		}
		l.nextID++
		c.id = l.nextID
		c.deadline = l.now.Add(l.h.cfg.Timeout)
		l.calls[c.id] = c
		c.prev, c.next = l.list.prev, &l.list
		l.list.prev.next = c
		l.list.prev = c
		if g := l.cur; g != nil && g.state == ready && len(l.waiting) == 0 {
			l.send(c, g)
		} else {
			l.waiting = append(l.waiting, c)
		}
	case evSwap:
		l.startSwap(ev.cfg, ev.reply)
	case evExit:
		l.exited(ev.gen)
	case evClose:
		l.close()
	case evKill:
		l.close()
		for _, g := range l.gens {
			l.kill(g, "host closing")
		}
	}
}

// finishNew answers a call that never entered the loop's books.
func (l *loop) finishNew(c *call, err error) {
	c.done = true
	l.h.books.Answer(c.tag, c.reply, handler.Result{Err: err})
}

func (l *loop) startGen(cfg Config, onReady func(error)) (*gen, error) {
	l.genSeq++
	g := &gen{n: l.genSeq, cfg: cfg, onReady: onReady}
	g.path = endpointPath(cfg.Dir, cfg.Node, g.n)
	endpoint := "ipc://" + g.path
	router, err := l.h.zctx.NewSocket(zmq4.ROUTER)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: router: %w", err)
	}
	_ = router.SetLinger(0)
	// Config.Inflight bounds what is queued; a second bound in the socket
	// would drop messages (ROUTER) instead of pushing back.
	_ = router.SetSndhwm(0)
	_ = router.SetRcvhwm(0)
	// A plugin's oversized message is refused by libzmq, which drops its
	// connection, instead of being read into memory.
	_ = router.SetMaxmsgsize(cfg.MaxMessage)
	// A send to a plugin that went away fails instead of vanishing.
	_ = router.SetRouterMandatory(1)
	_ = os.Remove(g.path) // a leftover of a killed ztopo
	// The monitor reports a plugin's dropped connection (see events).
	mon, err := zsock.MonitorPair(l.h.zctx, router, "pluginhost", zmq4.EVENT_DISCONNECTED)
	if err != nil {
		router.Close()
		return nil, err
	}
	if err := router.Bind(endpoint); err != nil {
		zsock.StopMonitor(router, mon)
		router.Close()
		return nil, fmt.Errorf("pluginhost: bind %s: %w", endpoint, err)
	}
	env := append(os.Environ(), cfg.Env...)
	env = append(env,
		plugins.EnvEndpoint+"="+endpoint,
		plugins.EnvNode+"="+cfg.Node,
		plugins.EnvTopology+"="+cfg.Topology)
	// No context: the loop runs its own stop sequence (STOP, then kill).
	p, err := supervise.Start(context.Background(), supervise.Config{
		Argv:    append([]string{cfg.Path}, cfg.Args...),
		Env:     env,
		Logger:  cfg.Logger,
		Name:    cfg.Node,
		LogArgs: []any{"plugin", cfg.Path},
	})
	if err != nil {
		zsock.StopMonitor(router, mon)
		router.Close()
		_ = os.Remove(g.path)
		// supervise names the node; this error names the plugin instead.
		if cause := errors.Unwrap(err); cause != nil {
			err = cause
		}
		return nil, handler.Permanent(fmt.Errorf("%w: start %s: %v", ErrHandshake, cfg.Path, err))
	}
	g.router, g.mon, g.proc = router, mon, p
	// Starting a big executable can take a while on a busy machine: the
	// plugin's time to READY counts from here.
	g.readyBy = time.Now().Add(cfg.ReadyTimeout)
	l.gens = append(l.gens, g)
	l.dirty = true
	l.h.log.Debug("plugin started", "plugin", cfg.Path, "pid", p.Pid(), "gen", g.n)
	go func() {
		<-p.Done()
		l.h.events.Put(event{kind: evExit, gen: g})
	}()
	return g, nil
}

// setCur makes g take new messages and sends it those that waited.
func (l *loop) setCur(g *gen) {
	l.cur, l.curCfg = g, g.cfg
	l.h.pid.Store(int64(g.proc.Pid()))
	waiting := l.waiting
	l.waiting = nil
	for _, c := range waiting {
		if !c.done {
			l.send(c, g)
		}
	}
}

func (l *loop) startSwap(cfg Config, reply chan error) {
	switch {
	case l.closing || l.failed != nil:
		reply <- l.h.books.ClosedErr()
		return
	case l.swapping:
		reply <- errors.New("pluginhost: a swap is already in progress")
		return
	}
	g, err := l.startGen(cfg, nil)
	if err != nil {
		reply <- err
		return
	}
	l.swapping = true
	g.onReady = func(err error) {
		l.swapping = false
		if err != nil {
			reply <- err
			return
		}
		old := l.cur
		l.setCur(g)
		l.restartAt = time.Time{} // a pending restart is moot now
		if old != nil && old.state == ready {
			l.drain(old)
		}
		l.h.swaps.Add(1)
		l.h.log.Info("plugin swapped", "plugin", cfg.Path, "pid", g.proc.Pid(), "gen", g.n)
		reply <- nil
	}
}

// handshakeFailed ends g's start: it will never take a message.
func (l *loop) handshakeFailed(g *gen, err error) {
	if !l.closing {
		l.h.log.Error("plugin handshake failed", "plugin", g.cfg.Path, "gen", g.n, "error", err)
	}
	l.kill(g, "handshake failed")
	if f := g.onReady; f != nil {
		g.onReady = nil
		f(err)
	}
}

// events handles g's disconnect events. libzmq drops the connection of a
// plugin that sends a message larger than MaxMessage, without a word: a
// ready plugin whose connection went away while it runs is killed (and
// restarted), instead of hanging until Timeout.
func (l *loop) events(g *gen) bool {
	if g.mon == nil {
		return false
	}
	got := false
	for {
		ev, _, _, err := g.mon.RecvEvent(zmq4.DONTWAIT)
		if err != nil {
			return got
		}
		got = true
		if ev != zmq4.EVENT_DISCONNECTED || g.peer == nil || g.killed || g.exited ||
			(g.state != ready && g.state != draining) {
			continue
		}
		l.h.log.Error("plugin's connection dropped, killing it: it sent a message larger than max_message, or closed its socket",
			"plugin", g.cfg.Path, "gen", g.n, "pid", g.proc.Pid(), "max_message", g.cfg.MaxMessage, "owed", g.owed)
		l.kill(g, "connection dropped")
		if g == l.cur {
			l.cur = nil
			l.h.pid.Store(0)
			l.scheduleRestart()
		}
	}
}

// recvFrom handles what g's ROUTER has, a bounded batch at a time.
func (l *loop) recvFrom(g *gen) bool {
	if g.router == nil {
		return false
	}
	got := false
	for range 64 {
		some, err := l.zio.Recv(g.router, func(msg [][]byte) { l.message(g, msg) })
		got = got || some
		if err != nil {
			if !zbatch.Transient(err) {
				l.h.log.Error("plugin receive failed", "gen", g.n, "error", err)
			}
			return got
		}
		if g.router == nil {
			return got
		}
	}
	return got
}

// message handles one message from g's ROUTER. Its frames may alias a
// receive buffer: what outlives the call is copied.
func (l *loop) message(g *gen, msg [][]byte) {
	if len(msg) < 2 {
		return
	}
	if g.peer == nil {
		if g.state != starting || g.killed {
			return
		}
		switch {
		case len(msg) == 3 && string(msg[1]) == plugins.Ready && string(msg[2]) == plugins.Protocol:
			g.peer = bytes.Clone(msg[0])
			g.state = ready
			g.lastAnswer = l.now
			if f := g.onReady; f != nil {
				g.onReady = nil
				f(nil)
			}
		case len(msg) == 3 && string(msg[1]) == plugins.Ready:
			l.handshakeFailed(g, fmt.Errorf("%w: plugin speaks %q, want %q", ErrHandshake, msg[2], plugins.Protocol))
		default:
			l.handshakeFailed(g, fmt.Errorf("%w: plugin sent %q before READY", ErrHandshake, short(msg[1])))
		}
		return
	}
	if !bytes.Equal(msg[0], g.peer) {
		l.warnOnce(g, "message from a second peer on the plugin endpoint ignored")
		return
	}
	cmd := string(msg[1])
	if (cmd != plugins.Rep && cmd != plugins.Err) || len(msg) < 3 {
		l.warnOnce(g, fmt.Sprintf("unexpected %q from the plugin ignored", short(msg[1])))
		return
	}
	g.lastAnswer = l.now
	if g.owed > 0 {
		g.owed--
	}
	id, ok := parseID(msg[2])
	c := l.calls[id]
	if !ok || c == nil || c.gen != g {
		l.h.late.Add(1)
		return
	}
	if cmd == plugins.Rep {
		var frames [][]byte
		if len(msg) > 3 {
			frames = zbatch.Clone(msg[3:])
		}
		l.finish(c, handler.Result{Frames: frames})
		return
	}
	text := ""
	if len(msg) > 3 {
		text = string(bytes.Join(msg[3:], []byte(" ")))
	}
	l.finish(c, handler.Result{Err: &PluginError{Text: text}})
}

func (l *loop) warnOnce(g *gen, msg string) {
	if !g.warned {
		g.warned = true
		l.h.log.Warn(msg, "plugin", g.cfg.Path, "gen", g.n)
	}
}

func short(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func parseID(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func (l *loop) send(c *call, g *gen) {
	c.gen, c.sent = g, l.now
	g.inflight++
	l.idbuf = strconv.AppendUint(l.idbuf[:0], c.id, 10)
	l.head = append(l.head[:0], g.peer, reqCmd, l.idbuf)
	if err := l.zio.Send(g.router, l.head, c.frames, 0); err != nil {
		l.h.lost.Add(1)
		l.finish(c, handler.Result{Err: fmt.Errorf("%w: send to plugin: %v", ErrLost, err)})
		return
	}
	if g.owed == 0 {
		g.busySince = l.now
	}
	g.owed++
}

// finish gives c its Result and takes it off the books.
func (l *loop) finish(c *call, r handler.Result) {
	if c.done {
		return
	}
	c.done = true
	delete(l.calls, c.id)
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
	c.frames = nil
	if g := c.gen; g != nil {
		g.inflight--
		if g.state == draining && g.inflight == 0 {
			l.stop(g)
		}
	}
	l.h.books.Answer(c.tag, c.reply, r)
}

func (l *loop) timers() {
	// Timed-out calls, oldest first, logged in one line with their count.
	var timeoutErr error
	for c := l.list.next; c != &l.list && !c.deadline.After(l.now); c = l.list.next {
		if timeoutErr == nil {
			timeoutErr = handler.Reported(fmt.Errorf("%w (%v)", ErrTimeout, l.h.cfg.Timeout))
			l.h.log.Warn("plugin requests timed out", "plugin", l.curCfg.Path,
				"count", l.countDue(), "timeout", l.h.cfg.Timeout)
		}
		l.h.timedOut.Add(1)
		l.finish(c, handler.Result{Err: timeoutErr})
	}
	// A plugin that owes answers and has sent none for a whole Timeout
	// hangs. (Without traffic a plugin stuck on one request looks the
	// same, and the protocol has no ping to tell them apart: a request is
	// not meant to take longer than Timeout.)
	for _, g := range l.gens {
		if g.killed || g.owed == 0 || (g.state != ready && g.state != draining) {
			continue
		}
		if l.now.Sub(g.idleSince()) < l.h.cfg.Timeout {
			continue
		}
		l.h.log.Warn("plugin hangs, killing it", "plugin", g.cfg.Path, "gen", g.n,
			"pid", g.proc.Pid(), "timeout", l.h.cfg.Timeout, "owed", g.owed)
		l.kill(g, "hung")
		if g == l.cur {
			l.cur = nil
			l.h.pid.Store(0)
			l.scheduleRestart()
		}
	}
	if !l.restartAt.IsZero() && !l.restartAt.After(l.now) {
		l.restartAt = time.Time{}
		l.restart()
	}
	for _, g := range l.gens {
		switch {
		case g.state == starting && !g.killed && !g.readyBy.After(l.now):
			l.handshakeFailed(g, fmt.Errorf("%w: no READY within %v", ErrHandshake, g.cfg.ReadyTimeout))
		case g.state == stopping && !g.killed && !g.stopBy.After(l.now):
			l.h.log.Warn("plugin did not stop within its grace period, killing it",
				"plugin", g.cfg.Path, "gen", g.n, "grace", g.cfg.Grace)
			l.kill(g, "grace expired")
		}
	}
}

// countDue is how many unanswered calls have reached their deadline.
func (l *loop) countDue() int {
	n := 0
	for c := l.list.next; c != &l.list && !c.deadline.After(l.now); c = c.next {
		n++
	}
	return n
}

func (l *loop) kill(g *gen, why string) {
	if g.killed || g.exited {
		return
	}
	g.killed = true
	l.h.log.Debug("killing plugin", "gen", g.n, "pid", g.proc.Pid(), "reason", why)
	g.proc.Kill()
}

// drain retires g after a swap: it answers what it holds, then stops.
func (l *loop) drain(g *gen) {
	g.state = draining
	if g.inflight == 0 {
		l.stop(g)
	}
}

func (l *loop) stop(g *gen) {
	if g.state == stopping || g.killed || g.exited {
		return
	}
	if g.peer == nil {
		l.kill(g, "stopped before READY")
		return
	}
	g.state = stopping
	g.stopBy = l.now.Add(g.cfg.Grace)
	if _, err := g.router.SendBytes(g.peer, zmq4.SNDMORE); err == nil {
		_, err = g.router.SendBytes(stopCmd, 0)
		if err == nil {
			return
		}
	}
	l.kill(g, "cannot send STOP")
}

// exited cleans up after g's process is gone.
func (l *loop) exited(g *gen) {
	g.exited = true
	status := supervise.Describe(g.proc.Wait())
	if g.state == starting && g.onReady != nil {
		l.handshakeFailed(g, fmt.Errorf("%w: plugin exited before READY: %s", ErrHandshake, status))
	}
	// Answers it sent before dying still count.
	l.recvFrom(g)
	var lostErr error
	lost := 0
	for _, c := range l.calls {
		if c.gen == g {
			if lostErr == nil {
				lostErr = handler.Reported(fmt.Errorf("%w: plugin %s", ErrLost, status))
			}
			l.finish(c, handler.Result{Err: lostErr})
			lost++
		}
	}
	if lost > 0 {
		l.h.lost.Add(int64(lost))
		l.h.log.Warn("plugin lost messages", "plugin", g.cfg.Path, "gen", g.n, "count", lost, "status", status)
	}
	expected := g.state == stopping || g.killed && g != l.cur
	if expected || l.closing || l.failed != nil {
		l.h.log.Debug("plugin exited", "plugin", g.cfg.Path, "gen", g.n, "status", status)
	} else {
		l.h.log.Warn("plugin exited unexpectedly", "plugin", g.cfg.Path, "gen", g.n,
			"pid", g.proc.Pid(), "status", status, "state", stateNames[g.state])
	}
	zsock.StopMonitor(g.router, g.mon)
	g.router.Close()
	g.router, g.mon = nil, nil
	_ = os.Remove(g.path)
	for i, x := range l.gens {
		if x == g {
			l.gens = append(l.gens[:i], l.gens[i+1:]...)
			break
		}
	}
	l.dirty = true
	if g == l.cur {
		l.cur = nil
		l.h.pid.Store(0)
		if !l.closing && l.failed == nil {
			l.scheduleRestart()
		}
	}
}

func (l *loop) scheduleRestart() {
	restart, delay := l.limiter.Next(true, l.now)
	if !restart {
		r := l.h.cfg.Restart
		if l.limiter.Exhausted() {
			l.fail(fmt.Errorf("plugin %s failed after %d restarts within %v: %w",
				l.curCfg.Path, r.MaxRestarts, r.Within, handler.ErrGiveUp))
		} else {
			l.fail(fmt.Errorf("plugin %s failed and the node's restart policy is %q: %w",
				l.curCfg.Path, r.Policy, handler.ErrGiveUp))
		}
		return
	}
	l.restartAt = l.now.Add(delay)
}

func (l *loop) restart() {
	if l.closing || l.failed != nil || l.cur != nil {
		return
	}
	cfg := l.curCfg
	g, err := l.startGen(cfg, nil)
	if err != nil {
		// It cannot be started at all (gone, not executable).
		l.fail(fmt.Errorf("restarting plugin: %w: %w", err, handler.ErrGiveUp))
		return
	}
	g.onReady = func(err error) {
		if err != nil {
			if !l.closing && l.failed == nil && l.cur == nil {
				l.scheduleRestart() // a failed handshake: another try, as the policy allows
			}
			return
		}
		l.h.restarts.Add(1)
		if l.cur != nil {
			// A swap finished first and took over.
			l.drain(g)
			return
		}
		l.h.log.Info("plugin restarted", "plugin", cfg.Path, "pid", g.proc.Pid(), "gen", g.n)
		l.setCur(g)
	}
}

// fail stops taking messages for good: the node must restart or fail.
func (l *loop) fail(err error) {
	if l.failed != nil {
		return
	}
	l.failed = err
	l.h.books.Fail(err)
	if !l.closing {
		l.h.log.Error("plugin host failed", "error", err)
	}
	l.failWaiting(err)
	l.cur = nil
	l.h.pid.Store(0)
	l.restartAt = time.Time{}
	for _, g := range l.gens {
		l.kill(g, "host failed")
	}
}

func (l *loop) failWaiting(err error) {
	waiting := l.waiting
	l.waiting = nil
	for _, c := range waiting {
		l.finish(c, handler.Result{Err: err})
	}
}

func (l *loop) close() {
	if l.closing {
		return
	}
	l.closing = true
	l.failWaiting(l.h.books.ClosedErr())
	l.restartAt = time.Time{}
	l.cur = nil
	l.h.pid.Store(0)
	for _, g := range l.gens {
		if g.state == starting {
			l.handshakeFailed(g, l.h.books.ClosedErr())
			continue
		}
		l.stop(g)
	}
}
