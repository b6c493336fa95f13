// Package wasmhost runs a node's handler as a WebAssembly module
// (`handler: {wasm: path.wasm}`) inside the node's process, with wazero, a
// WebAssembly runtime in pure Go: no second process, no cgo.
//
// The module speaks ztopo-wasm/1 (see package internal/wasmabi and
// wasm/README.md): one exported call per message, frames in and out
// through a buffer the module owns and the host reuses. Modules are
// compiled once per process (by content and memory limit) and
// instantiated once per node instance.
//
// A message that traps (unreachable, out-of-bounds access, a Go guest's
// fatal error such as running out of memory) or runs past the time limit
// fails alone: the host logs it, counts it, answers it with an error reply
// where the socket expects one, and replaces the instance, whose state can
// no longer be trusted, before the next message.
//
// Swap: with WatchFile, a new .wasm is compiled, checked and instantiated
// beside the running one; the next message goes to the new instance, the
// message in progress finishes on the old one. A module that does not
// compile, lacks the ABI or fails to initialise is refused and the running
// one stays.
//
// Concurrency: Handle is for one goroutine at a time (the node's); it
// serialises callers. Swap and Close may come from any goroutine.
//
// A message costs the host two atomic operations on one state word, which
// takes the handler, marks the call the watchdog watches and counts it,
// and gives it back: on a small VM an atomic operation costs 15–40 ns, a
// fifth of a Go module's call, and a mutex, a call number and a counter
// took five.
package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
	"github.com/ztopo/ztopo/internal/wasmabi"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/handler/internal/asynchost"
)

// DefaultTimeout is the per-message time limit of a node that sets none.
const DefaultTimeout = time.Second

// NoTimeout as Config.Timeout turns the per-message time limit off.
const NoTimeout time.Duration = -1

// InitTimeout is the least time a module's _initialize is given.
const InitTimeout = 10 * time.Second

// Config describes a module and its sandbox.
type Config struct {
	Path string // absolute path of the .wasm file
	Node string // node instance name, for logs and the module's environment
	// Memory is the memory limit in bytes (0: wasmabi.DefaultMemory).
	Memory int64
	// Timeout bounds each message (0: DefaultTimeout; NoTimeout: no
	// limit, and the module runs unguarded: faster, but an endless loop
	// then holds the node for good).
	Timeout time.Duration
	// Grants: nothing of the host is visible to a module unless granted.
	Clock  bool     // the real wall clock, monotonic clock and sleep
	Random bool     // the system's random source (else a fixed one)
	Env    []string // KEY=value environment variables
	Dirs   []string // HOST:GUEST directories mounted read-only; HOST absolute
	// WatchFile swaps to the file's new content whenever it changes.
	WatchFile bool
	Logger    hclog.Logger
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Node == "" {
		c.Node = "wasm"
	}
	return c
}

// Stats are a handler's counters since New.
type Stats struct {
	Calls    int64 // messages handed to the module
	Errors   int64 // messages the module failed itself (ztopo.fail, a Go panic)
	Faults   int64 // messages that trapped or made the module exit
	TimedOut int64 // messages stopped at the time limit
	Restarts int64 // instances replaced after a fault or a timeout
	Swaps    int64 // completed swaps to a new module
	Refused  int64 // new modules refused (the running one stayed)
}

// Fault is the error of a message that trapped, exited the module or
// timed out: the message failed, and the instance was replaced.
type Fault struct {
	Node    string
	Timeout bool
	Err     error
}

func (f *Fault) Error() string {
	if f.Timeout {
		return "wasm: message timed out: " + f.Err.Error()
	}
	return "wasm: " + f.Err.Error()
}

func (f *Fault) Unwrap() error { return f.Err }

// ErrorReply implements handler.ErrorReplier.
func (f *Fault) ErrorReply() [][]byte { return errorReply(f.Error()) }

// GuestError is the error of a message the module failed itself.
type GuestError struct{ Text string }

func (e *GuestError) Error() string { return "wasm handler error: " + e.Text }

// ErrorReply implements handler.ErrorReplier.
func (e *GuestError) ErrorReply() [][]byte { return errorReply(e.Text) }

func errorReply(text string) [][]byte { return [][]byte{[]byte("ERR"), []byte(text)} }

// ErrClosed is returned by Handle after Close.
var ErrClosed = errors.New("wasm handler closed")

var (
	_ handler.Handler      = (*Handler)(nil)
	_ handler.Closer       = (*Handler)(nil)
	_ handler.ErrorReplier = (*Fault)(nil)
	_ handler.ErrorReplier = (*GuestError)(nil)
)

// Handler runs one node instance's module.
type Handler struct {
	cfg Config
	log hclog.Logger

	// state: who holds the handler (stBusy: Handle, Swap or Close; they
	// alone touch cur and mod), whether a message is in the module
	// (stCall) and was stopped (stStop), stClosed, and the messages
	// handed to the module (Stats.Calls) in units of stCalls.
	state atomic.Uint64
	cur   *instance
	mod   *wasmabi.Module // the module cur runs

	next   atomic.Pointer[instance] // a swapped-in instance Handle takes
	active atomic.Pointer[instance] // the instance the watchdog watches

	swapMu sync.Mutex // one swap at a time
	watch  asynchost.Watch
	quit   chan struct{}
	done   chan struct{}

	errs, faults, timedOut, restarts, swaps, refused atomic.Int64
}

// The bits of Handler.state.
const (
	stBusy   uint64 = 1 << iota // held by Handle, Swap or Close
	stCall                      // a message is in the module: the watchdog watches it
	stStop                      // the watchdog stopped that message
	stClosed                    // Close ran: nobody takes the handler again
	stCalls                     // one message handed to the module; the bits above count them
)

// acquire takes the handler, adding add to the state in the same
// operation, and reports false once it is closed. It waits while another
// holds it: Handle for at most its time limit, Swap and Close briefly.
func (h *Handler) acquire(add uint64) bool {
	for spins := 0; ; spins++ {
		v := h.state.Load()
		if v&stClosed != 0 {
			return false
		}
		if v&stBusy == 0 {
			if h.state.CompareAndSwap(v, (v|stBusy)+add) {
				return true
			}
			continue
		}
		if spins < 16 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// tryAcquire takes the handler if nobody holds it.
func (h *Handler) tryAcquire() bool {
	v := h.state.Load()
	return v&(stBusy|stClosed) == 0 && h.state.CompareAndSwap(v, v|stBusy)
}

// release gives the handler back, and says whether the watchdog stopped
// the message that was in the module.
func (h *Handler) release() (stopped bool) {
	return h.state.And(^(stBusy|stCall|stStop))&stStop != 0
}

// New compiles (or finds compiled) the module, instantiates it and starts
// the time-limit watchdog. An error means the module cannot run as
// configured.
func New(cfg Config) (*Handler, error) {
	if !filepath.IsAbs(cfg.Path) {
		return nil, fmt.Errorf("wasmhost: module path %q is not absolute", cfg.Path)
	}
	cfg = cfg.withDefaults()
	h := &Handler{cfg: cfg, log: cfg.Logger, quit: make(chan struct{}), done: make(chan struct{})}
	inst, mod, err := h.load()
	if err != nil {
		return nil, err
	}
	inst.carry = false // the Handler's reference, for instances to come
	h.cur, h.mod = inst, mod
	h.active.Store(inst)
	if cfg.Timeout > 0 {
		go h.watchdog()
	} else {
		close(h.done)
	}
	if cfg.WatchFile {
		err := h.watch.Start(cfg.Path, h.log, func() {
			h.log.Info("wasm module changed, swapping", "path", cfg.Path)
			if err := h.Swap(); err != nil {
				h.log.Error("wasm swap refused, the running module stays", "path", cfg.Path, "error", err)
			}
		})
		if err != nil {
			h.log.Warn("cannot watch wasm module, swaps on change disabled", "path", cfg.Path, "error", err)
		}
	}
	return h, nil
}

// load reads, compiles and instantiates the module at cfg.Path.
func (h *Handler) load() (*instance, *wasmabi.Module, error) {
	data, err := wasmabi.ReadFile(h.cfg.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("wasm module %s: %w", h.cfg.Path, err)
	}
	mod, err := wasmabi.Compile(context.Background(), data, h.cfg.Memory, h.cfg.Timeout > 0)
	if err != nil {
		return nil, nil, fmt.Errorf("wasm module %s %w", h.cfg.Path, err)
	}
	inst, err := h.instantiate(mod)
	if err != nil {
		mod.Release()
		return nil, nil, err
	}
	inst.carry = true
	return inst, mod, nil
}

// Swap loads the module file again and routes the next message to the new
// module; on error the running module stays. Safe from any goroutine.
func (h *Handler) Swap() error {
	h.swapMu.Lock()
	defer h.swapMu.Unlock()
	inst, _, err := h.load()
	if err != nil {
		h.refused.Add(1)
		return err
	}
	if h.state.Load()&stClosed != 0 {
		inst.close()
		return ErrClosed
	}
	if old := h.next.Swap(inst); old != nil {
		old.close() // never used: a newer one came before a message
	}
	// An idle node takes the new module now rather than at its next
	// message, so that the old one's memory goes at once.
	if h.tryAcquire() {
		h.takeNext()
		h.release()
	}
	return nil
}

// takeNext switches to a swapped-in instance, if any. The caller holds
// the handler.
func (h *Handler) takeNext() {
	n := h.next.Swap(nil)
	if n == nil {
		return
	}
	old, oldMod := h.cur, h.mod
	n.carry = false // its load's reference is the Handler's now
	h.cur, h.mod = n, n.mod
	h.active.Store(n)
	if old != nil {
		old.close()
	}
	oldMod.Release()
	h.swaps.Add(1)
	h.log.Info("wasm module swapped", "path", h.cfg.Path, "sha256", fmt.Sprintf("%x", n.mod.Hash[:6]))
}

// Handle runs the module on one message.
func (h *Handler) Handle(_ context.Context, m handler.Msg) ([][]byte, error) {
	if h.next.Load() != nil || h.active.Load() == nil {
		return h.handleSlow(m)
	}
	if !h.acquire(stCall + stCalls) {
		return nil, ErrClosed
	}
	in := h.cur
	out, err := in.call(m)
	return h.finish(in, out, err)
}

// handleSlow is Handle when a swapped-in module waits, or when the
// instance that faulted last could not be started again: it tries once
// more per message, and fails the node when the module cannot start at
// all. Neither counts against the message's time limit.
func (h *Handler) handleSlow(m handler.Msg) ([][]byte, error) {
	if !h.acquire(0) {
		return nil, ErrClosed
	}
	h.takeNext()
	if h.cur == nil {
		inst, err := h.instantiate(h.mod)
		if err != nil {
			h.release()
			return nil, fmt.Errorf("%w: wasm module cannot be instantiated again: %v", handler.ErrFatal, err)
		}
		h.cur = inst
		h.active.Store(inst)
	}
	h.state.Add(stCall + stCalls)
	in := h.cur
	out, err := in.call(m)
	return h.finish(in, out, err)
}

// finish ends the call of a message to in: it gives the handler back
// and, when the message trapped or was stopped, replaces the instance.
func (h *Handler) finish(in *instance, out [][]byte, err error) ([][]byte, error) {
	if err == nil {
		if !h.release() {
			return out, nil
		}
		// Stopped as it returned: in has its stop flag set. Take the
		// handler again to replace it, unless a swap or Close did.
		if !h.acquire(0) {
			h.timedOut.Add(1)
			return nil, in.timeoutFault()
		}
		if h.cur != in {
			h.release()
			h.timedOut.Add(1)
			return nil, in.timeoutFault()
		}
		err = in.timeoutFault()
	} else if h.state.And(^(stCall|stStop))&stStop != 0 {
		err = in.timeoutFault()
	}
	defer h.release()
	var f *Fault
	if errors.As(err, &f) {
		if f.Timeout {
			h.timedOut.Add(1)
		} else {
			h.faults.Add(1)
		}
		h.log.Warn("wasm message failed, replacing the instance", "error", f.Err, "timeout", f.Timeout)
		h.restart()
		return nil, err
	}
	h.errs.Add(1)
	return nil, err
}

// restart replaces the current instance after a fault. The caller holds
// the handler.
func (h *Handler) restart() {
	h.cur.close()
	h.cur = nil
	h.active.Store(nil)
	h.restarts.Add(1)
	if h.next.Load() != nil {
		h.takeNext()
		return
	}
	inst, err := h.instantiate(h.mod)
	if err != nil {
		h.log.Error("wasm instance cannot be started again", "error", err)
		return
	}
	h.cur = inst
	h.active.Store(inst)
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Calls: int64(h.state.Load() / stCalls), Errors: h.errs.Load(), Faults: h.faults.Load(), TimedOut: h.timedOut.Load(),
		Restarts: h.restarts.Load(), Swaps: h.swaps.Load(), Refused: h.refused.Load(),
	}
}

// Close stops watching, ends the watchdog and closes the instances.
func (h *Handler) Close(context.Context) error {
	h.watch.Stop()
	h.swapMu.Lock() // no swap in progress from here on
	if !h.acquire(0) {
		h.swapMu.Unlock()
		return nil
	}
	h.state.Or(stClosed) // held for good: Handle answers ErrClosed
	close(h.quit)
	if n := h.next.Swap(nil); n != nil {
		n.close()
	}
	if h.cur != nil {
		h.cur.close()
		h.cur = nil
	}
	if h.mod != nil {
		h.mod.Release()
		h.mod = nil
	}
	h.swapMu.Unlock()
	<-h.done
	return nil
}

// watchdog stops a call that runs past the time limit (instance.interrupt):
// one goroutine per Handler, ticking eight times per limit, reading the
// state word, which a message's call marks with its number, rather than a
// timer, a goroutine or a clock reading per call (reading the clock cost
// more than the rest of the host's work on a call). A call is stopped
// once the watchdog has seen it running for the whole limit: it began
// before the first tick that saw it, so it ran at least Timeout, and after
// the tick before, so it is stopped within Timeout plus two periods (1.25
// Timeout, at least Timeout + 2ms).
func (h *Handler) watchdog() {
	defer close(h.done)
	period := h.cfg.Timeout / 8
	period = min(max(period, time.Millisecond), 125*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	limit := int64(h.cfg.Timeout)
	var (
		seen  uint64 // the state seen at the last tick with a call in the module
		since int64  // when that call was first seen
	)
	for {
		select {
		case <-h.quit:
			return
		case <-t.C:
		}
		v := h.state.Load()
		if v&stCall == 0 || v&stStop != 0 {
			seen = 0
			continue
		}
		if v != seen {
			seen, since = v, now()
			continue
		}
		// active changes only while no message is in the module: read
		// after v, it is the instance of v's call, if v still holds.
		inst := h.active.Load()
		if now()-since >= limit && inst != nil && h.state.CompareAndSwap(v, v|stStop) {
			inst.interrupt()
			seen = 0
		}
	}
}

var epoch = time.Now()

// copied counts the frames copied between Go memory and modules' memories,
// both ways, by every Handler of the process. An instance counts its own
// and adds them here every copiesBatch frames and when it is closed: an
// atomic addition per message costs more than a tenth of the host's work.
var copied atomic.Int64

const copiesBatch = 4096

// FramesCopied is how many frames every Handler of the process has copied
// into and out of module memory: per message, one copy of each input frame
// in and one of each output frame out (the benchmark reports it per
// message). It is exact once the Handlers are closed; before, the last
// few thousand copies of each running instance may be missing.
func FramesCopied() int64 { return copied.Load() }

// now is monotonic nanoseconds since the process started.
func now() int64 { return int64(time.Since(epoch)) }

// instance is one instantiation of a module, used by one goroutine at a
// time.
type instance struct {
	h        *Handler
	mod      *wasmabi.Module
	m        api.Module
	mem      api.Memory
	handle   api.Function
	buffer   api.Function
	ctx      context.Context
	cancel   context.CancelFunc
	stop     api.MutableGlobal // the module's stop flag (wasmabi.StopGlobal), or nil
	stack    [2]uint64
	bufPtr   uint32
	bufCap   uint32
	failText []byte
	failed   bool
	copies   int64 // frames copied, not yet added to copied
	logs     *logWriter
	// carry: the instance also holds the reference its load compiled,
	// which goes to the Handler when the instance is taken.
	carry bool
}

func (h *Handler) instantiate(mod *wasmabi.Module) (*instance, error) {
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{h: h, mod: mod, cancel: cancel}
	inst.ctx = context.WithValue(ctx, wasmabi.FailKey, wasmabi.FailFunc(inst.fail))
	inst.logs = newLogWriter(h.log)
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // _initialize is called below, under the time limit
		WithStdout(inst.logs.stream("stdout")).
		WithStderr(inst.logs.stream("stderr")).
		WithArgs(filepath.Base(h.cfg.Path)).
		WithEnv("ZTOPO_NODE", h.cfg.Node)
	for _, kv := range h.cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		mc = mc.WithEnv(k, v)
	}
	if h.cfg.Clock {
		mc = mc.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	if h.cfg.Random {
		mc = mc.WithRandSource(cryptoRand{})
	}
	if len(h.cfg.Dirs) > 0 {
		fsc := wazero.NewFSConfig()
		for _, d := range h.cfg.Dirs {
			host, guest, _ := strings.Cut(d, ":")
			fsc = fsc.WithReadOnlyDirMount(host, guest)
		}
		mc = mc.WithFSConfig(fsc)
	}
	m, err := mod.Runtime.InstantiateModule(inst.ctx, mod.Compiled, mc)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("wasm module %s cannot be instantiated: %w", h.cfg.Path, err)
	}
	mod.Retain() // the instance's own reference; close releases it
	inst.m, inst.mem = m, m.Memory()
	inst.handle, inst.buffer = m.ExportedFunction(wasmabi.ExportHandle), m.ExportedFunction(wasmabi.ExportBuffer)
	if mod.Stop != "" {
		stop, ok := m.ExportedGlobal(mod.Stop).(api.MutableGlobal)
		if !ok {
			inst.close()
			return nil, fmt.Errorf("wasm module %s: the instrumented module lacks its stop flag", h.cfg.Path)
		}
		inst.stop = stop
	}
	if init := m.ExportedFunction(wasmabi.ExportInit); init != nil {
		// Initialisation (a Go module starts its runtime) may take longer
		// than a message: it gets at least InitTimeout (when guarded).
		limit := max(h.cfg.Timeout, InitTimeout)
		var timedOut atomic.Bool
		var t *time.Timer
		if mod.Guarded {
			t = time.AfterFunc(limit, func() { timedOut.Store(true); inst.interrupt() })
		}
		_, err := init.Call(inst.ctx)
		if t != nil {
			t.Stop()
		}
		if err != nil {
			inst.close()
			if timedOut.Load() {
				err = fmt.Errorf("did not finish within %s", limit)
			}
			return nil, fmt.Errorf("wasm module %s: %s failed: %w", h.cfg.Path, wasmabi.ExportInit, err)
		}
	}
	return inst, nil
}

// interrupt stops the running call: the module traps at its next loop
// iteration when it has a stop flag, else wazero's checks find the
// instance's context cancelled. Either way the instance is done with.
// Safe from any goroutine.
func (in *instance) interrupt() {
	if in.stop != nil {
		in.stop.Set(1)
		return
	}
	in.cancel()
}

// fail is the module's ztopo.fail for this instance.
func (in *instance) fail(text []byte) {
	in.failText = append(in.failText[:0], text...)
	in.failed = true
}

// close ends the instance and gives back its module references.
func (in *instance) close() {
	copied.Add(in.copies)
	in.copies = 0
	in.cancel()
	in.m.Close(context.Background())
	in.logs.flush()
	in.mod.Release()
	if in.carry {
		in.carry = false
		in.mod.Release()
	}
}

// minBuffer is the smallest buffer asked of a module: most messages fit
// and the first ones do not each cost a call.
const minBuffer = 4096

// call hands one message to the module.
func (in *instance) call(m handler.Msg) ([][]byte, error) {
	size := 0
	for _, f := range m.Frames {
		size += 4 + len(f)
	}
	if size > int(^uint32(0)>>1) {
		return nil, fmt.Errorf("wasm: message of %d bytes is too large", size)
	}
	if uint32(size) > in.bufCap {
		want := uint32(max(minBuffer, 1<<bits.Len32(uint32(size-1))))
		in.stack[0] = uint64(want)
		if err := in.run(in.buffer); err != nil {
			return nil, err
		}
		in.bufPtr, in.bufCap = uint32(in.stack[0]), want
	}
	buf, ok := in.mem.Read(in.bufPtr, uint32(size))
	if !ok {
		in.bufCap = 0
		return nil, &GuestError{Text: fmt.Sprintf("%s returned a buffer outside memory", wasmabi.ExportBuffer)}
	}
	p := 0
	for _, f := range m.Frames {
		buf[p], buf[p+1], buf[p+2], buf[p+3] = byte(len(f)), byte(len(f)>>8), byte(len(f)>>16), byte(len(f)>>24)
		p += 4 + copy(buf[p+4:], f)
	}
	in.copies += int64(len(m.Frames))
	if in.copies >= copiesBatch {
		copied.Add(in.copies)
		in.copies = 0
	}
	in.stack[0] = uint64(size)
	if err := in.run(in.handle); err != nil {
		return nil, err
	}
	r := in.stack[0]
	addr, n := uint32(r>>32), uint32(r)
	if n == 0 {
		return nil, nil
	}
	enc, ok := in.mem.Read(addr, n)
	if !ok {
		return nil, &GuestError{Text: fmt.Sprintf("%s returned output outside memory (%d bytes at %#x)", wasmabi.ExportHandle, n, addr)}
	}
	return in.decode(m.Frames, enc)
}

// run calls f with the instance's stack: a trap or an exit is a Fault, a
// ztopo.fail during the call (and no trap) a GuestError. The caller finds
// out from the Handler's state whether the watchdog stopped it.
func (in *instance) run(f api.Function) error {
	err := f.CallWithStack(in.ctx, in.stack[:])
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return &Fault{Node: in.h.cfg.Node, Err: fmt.Errorf("module exited with code %d", exit.ExitCode())}
		}
		return &Fault{Node: in.h.cfg.Node, Err: fmt.Errorf("trap: %s", firstLine(err.Error()))}
	}
	if in.failed {
		in.failed = false
		return &GuestError{Text: string(in.failText)}
	}
	return nil
}

// timeoutFault is the error of a message the watchdog stopped.
func (in *instance) timeoutFault() error {
	return &Fault{Node: in.h.cfg.Node, Timeout: true, Err: fmt.Errorf("stopped after %s", in.h.cfg.Timeout)}
}

// decode copies the module's output out of its memory: into the input
// frames' own bytes where a frame fits (the input is the handler's to
// reuse, and frames never share bytes that way), else into new ones.
func (in *instance) decode(input [][]byte, enc []byte) ([][]byte, error) {
	count := 0
	for p := 0; p < len(enc); {
		if len(enc)-p < 4 {
			return nil, &GuestError{Text: "bad output encoding: truncated frame length"}
		}
		l := int(uint32(enc[p]) | uint32(enc[p+1])<<8 | uint32(enc[p+2])<<16 | uint32(enc[p+3])<<24)
		if l > len(enc)-p-4 {
			return nil, &GuestError{Text: "bad output encoding: frame longer than the output"}
		}
		p += 4 + l
		count++
	}
	var out [][]byte
	if count <= cap(input) {
		out = input[:count]
	} else {
		out = make([][]byte, count)
	}
	in.copies += int64(count)
	for i, p := 0, 0; i < count; i++ {
		l := int(uint32(enc[p]) | uint32(enc[p+1])<<8 | uint32(enc[p+2])<<16 | uint32(enc[p+3])<<24)
		src := enc[p+4 : p+4+l]
		p += 4 + l
		if i < len(input) && l <= len(input[i]) {
			out[i] = input[i][:l]
			copy(out[i], src)
		} else {
			out[i] = append([]byte(nil), src...)
		}
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
