// Package wasmabi is the host side of ztopo's WebAssembly handler ABI
// (ztopo-wasm/1) that both validation (package spec) and the handler
// (runtime/handler/wasmhost) need: the names and signatures a module must
// export, and the process-wide compiler that turns a .wasm file into a
// compiled module once, whoever asks first.
//
// The ABI, for one message:
//
//  1. The host asks the module for a buffer of at least N bytes by calling
//     the export ztopo_buffer(N i32) -> i32 (an address in the module's
//     exported memory "memory"). The module keeps that buffer: the host asks
//     again only for a larger message.
//  2. The host writes the message there, each frame as a 4-byte
//     little-endian length followed by its bytes, and calls the export
//     ztopo_handle(len i32) -> i64.
//  3. The result packs an address (high 32 bits) and a length (low 32
//     bits) of the output in the module's memory, encoded the same way. A
//     length of 0 (no frames) drops the message. Before returning, the
//     module may call the import ztopo.fail(addr i32, len i32) with an error
//     text: the message fails with that text and the result is ignored.
//
// A module may also import wasi_snapshot_preview1 (WASI preview 1): its
// stdout and stderr go to the node's log, and files, clock and randomness
// are what the node's config grants. A reactor module (one that exports
// _initialize, as `GOOS=wasip1 go build -buildmode=c-shared` makes) is
// initialised once per instance; _start is never called.
package wasmabi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The names of the ABI.
const (
	ExportHandle = "ztopo_handle" // func(len i32) -> i64
	ExportBuffer = "ztopo_buffer" // func(size i32) -> i32
	ExportMemory = "memory"
	ExportInit   = "_initialize" // optional: a reactor's initialiser
	ImportModule = "ztopo"       // the host module
	ImportFail   = "fail"        // func(addr i32, len i32)
	WASIModule   = wasi_snapshot_preview1.ModuleName
)

// PageSize is the size of a WebAssembly memory page.
const PageSize = 65536

// MaxFileSize bounds what is read as a module: a .wasm bigger than this is
// refused rather than read into memory.
const MaxFileSize = 256 << 20

// DefaultMemory is the memory limit of a module whose node sets none.
const DefaultMemory = 64 << 20

// Module is a compiled module, shared by every instance that runs the same
// bytes under the same memory limit. Release it when done.
type Module struct {
	Runtime  wazero.Runtime
	Compiled wazero.CompiledModule
	Hash     [32]byte
	Guarded  bool // calls can be stopped
	// Stop, on a guarded module, is the export of its stop flag (see
	// StopGlobal): set it to 1 to stop the running call at its next loop
	// iteration. Empty when the module could not be instrumented and was
	// compiled with wazero's termination checks instead: cancel the call's
	// context then.
	Stop string
	key  modKey
	refs int
	c    *compiler
}

// Release gives back a reference; the compiled module stays cached for a
// while unused, for the next instance or the next validation.
func (m *Module) Release() { m.c.release(m) }

type modKey struct {
	hash [32]byte
	rt   rtKey
}

// The one compiler of the process: a runtime per memory limit (the limit is
// a runtime setting in wazero), all sharing one compilation cache, and the
// compiled modules by content and limit.
type compiler struct {
	mu       sync.Mutex
	cache    wazero.CompilationCache
	runtimes map[rtKey]wazero.Runtime
	modules  map[modKey]*Module
	idle     []*Module // unreferenced, oldest first
}

var shared = &compiler{runtimes: map[rtKey]wazero.Runtime{}, modules: map[modKey]*Module{}}

// maxIdle is how many compiled modules no instance uses are kept.
const maxIdle = 8

// FailFunc receives a module's ztopo.fail text during a call. The host
// finds it in the call's context under FailKey.
type FailFunc func(text []byte)

type failKey struct{}

// FailKey is the context key of a call's FailFunc.
var FailKey failKey

// rtKey names a runtime: the settings wazero applies per runtime.
type rtKey struct {
	pages   uint32
	guarded bool
}

func (c *compiler) runtime(ctx context.Context, key rtKey) (wazero.Runtime, error) {
	if r, ok := c.runtimes[key]; ok {
		return r, nil
	}
	if c.cache == nil {
		c.cache = newCache()
	}
	// wazero's termination checks (for guarded modules that instrument
	// cannot rewrite) make code go into Go at every loop iteration to
	// ask whether its module was closed, and every call start a goroutine
	// that watches its context (wazero issue 2466): only those modules
	// get a runtime with them.
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(c.cache).
		WithMemoryLimitPages(key.pages).
		WithCloseOnContextDone(key.guarded)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		r.Close(ctx)
		return nil, err
	}
	_, err := r.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fail), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, nil).
		WithParameterNames("addr", "len").
		Export(ImportFail).
		Instantiate(ctx)
	if err != nil {
		r.Close(ctx)
		return nil, err
	}
	c.runtimes[key] = r
	return r, nil
}

// fail is ztopo.fail: it hands the text to the call's FailFunc.
func fail(ctx context.Context, mod api.Module, stack []uint64) {
	f, _ := ctx.Value(FailKey).(FailFunc)
	if f == nil {
		return
	}
	addr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if n > 4096 {
		n = 4096 // an error text, not a payload
	}
	text, ok := mod.Memory().Read(addr, n)
	if !ok {
		f([]byte("ztopo.fail called with a text outside memory"))
		return
	}
	f(text)
}

// CacheDirEnv names the directory where compiled modules are kept across
// runs (compiling a module of a few MB takes seconds; loading it from the
// cache, milliseconds). Default: ztopo/wasm in the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache); "off" keeps them in memory only.
const CacheDirEnv = "ZTOPO_WASM_CACHE"

func newCache() wazero.CompilationCache {
	dir := os.Getenv(CacheDirEnv)
	if dir == "off" {
		return wazero.NewCompilationCache()
	}
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return wazero.NewCompilationCache()
		}
		dir = filepath.Join(base, "ztopo", "wasm")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return wazero.NewCompilationCache()
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return wazero.NewCompilationCache()
	}
	return c
}

// Pages converts a memory limit in bytes to pages, rounding up; 0 means
// DefaultMemory.
func Pages(bytes int64) uint32 {
	if bytes <= 0 {
		bytes = DefaultMemory
	}
	p := (bytes + PageSize - 1) / PageSize
	if p > 65536 {
		p = 65536
	}
	return uint32(p)
}

// ReadFile reads a module file, refusing what is not a regular file or is
// larger than MaxFileSize.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%d bytes, more than the %d a module may have", st.Size(), MaxFileSize)
	}
	// Read in one buffer of the file's size: io.ReadAll would grow its
	// buffer, copying a module of megabytes several times.
	buf := make([]byte, st.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return buf[:n], nil
}

// Compile compiles wasm under a memory limit (bytes; 0: DefaultMemory),
// guarded (interruptible: for a node with a time limit) or not, and checks
// it against the ABI, or returns the module already compiled from the same
// bytes with the same settings. The error says what is wrong in a phrase
// fit for a diagnostic.
func Compile(ctx context.Context, wasm []byte, memory int64, guarded bool) (*Module, error) {
	return shared.compile(ctx, wasm, rtKey{pages: Pages(memory), guarded: guarded})
}

// Check is Compile and Release, for validation: the compiled module stays
// cached for the handler that runs it next.
func Check(wasm []byte, memory int64, guarded bool) error {
	m, err := Compile(context.Background(), wasm, memory, guarded)
	if err != nil {
		return err
	}
	m.Release()
	return nil
}

func (c *compiler) compile(ctx context.Context, wasm []byte, rk rtKey) (*Module, error) {
	key := modKey{hash: sha256.Sum256(wasm), rt: rk}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.modules[key]; ok {
		if m.refs == 0 {
			c.unidle(m)
		}
		m.refs++
		return m, nil
	}
	r, err := c.runtime(ctx, rk)
	if err != nil {
		return nil, fmt.Errorf("cannot start the WebAssembly runtime: %w", err)
	}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("is not a WebAssembly module (no \\0asm header)")
	}
	m := &Module{Hash: key.hash, Guarded: rk.guarded, key: key, refs: 1, c: c}
	if rk.guarded {
		// The module tests its own stop flag; its code is compiled
		// without wazero's checks (see instrument). When that fails, the
		// original is compiled below, with the checks: its error is the
		// one to report, if any.
		if stoppable, err := instrument(wasm); err == nil {
			if ur, err := c.runtime(ctx, rtKey{pages: rk.pages}); err == nil {
				if cm, err := ur.CompileModule(ctx, stoppable); err == nil {
					if err := checkABI(cm); err != nil {
						cm.Close(ctx)
						return nil, err
					}
					m.Runtime, m.Compiled, m.Stop = ur, cm, StopGlobal
					c.modules[key] = m
					return m, nil
				}
			}
		}
	}
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("does not compile: %s", oneLine(strings.TrimPrefix(err.Error(), "invalid ")))
	}
	if err := checkABI(cm); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	m.Runtime, m.Compiled = r, cm
	c.modules[key] = m
	return m, nil
}

func (c *compiler) unidle(m *Module) {
	for i, x := range c.idle {
		if x == m {
			c.idle = append(c.idle[:i], c.idle[i+1:]...)
			return
		}
	}
}

func (c *compiler) release(m *Module) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.refs <= 0 {
		return
	}
	m.refs--
	if m.refs > 0 {
		return
	}
	c.idle = append(c.idle, m)
	for len(c.idle) > maxIdle {
		old := c.idle[0]
		c.idle = c.idle[1:]
		delete(c.modules, old.key)
		old.Compiled.Close(context.Background())
	}
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// checkABI tells what a module lacks, or imports that the host does not
// provide, in one sentence.
func checkABI(cm wazero.CompiledModule) error {
	var problems []string
	exports := cm.ExportedFunctions()
	want := []struct {
		name    string
		params  []api.ValueType
		results []api.ValueType
		sig     string
	}{
		{ExportHandle, []api.ValueType{i32}, []api.ValueType{i64}, "func(i32) i64"},
		{ExportBuffer, []api.ValueType{i32}, []api.ValueType{i32}, "func(i32) i32"},
	}
	for _, w := range want {
		f, ok := exports[w.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("lacks the export %s (%s)", w.name, w.sig))
		case !slices.Equal(f.ParamTypes(), w.params) || !slices.Equal(f.ResultTypes(), w.results):
			problems = append(problems, fmt.Sprintf("exports %s as %s, want %s", w.name, sig(f), w.sig))
		}
	}
	if f, ok := exports[ExportInit]; ok && (len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0) {
		problems = append(problems, fmt.Sprintf("exports %s as %s, want func()", ExportInit, sig(f)))
	}
	if _, ok := cm.ExportedMemories()[ExportMemory]; !ok {
		problems = append(problems, "lacks the export memory")
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case WASIModule:
		case ImportModule:
			if name != ImportFail {
				problems = append(problems, fmt.Sprintf("imports %s.%s, which ztopo does not provide (it provides %s.%s)", mod, name, ImportModule, ImportFail))
			} else if !slices.Equal(f.ParamTypes(), []api.ValueType{i32, i32}) || len(f.ResultTypes()) != 0 {
				problems = append(problems, fmt.Sprintf("imports %s.%s as %s, want func(i32, i32)", mod, name, sig(f)))
			}
		default:
			problems = append(problems, fmt.Sprintf("imports %s.%s, which ztopo does not provide (modules: %s, %s)", mod, name, WASIModule, ImportModule))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errors.New(strings.Join(problems, "; "))
}

// oneLine folds wazero's indented detail lines ("too many results\n\thave
// (i32)\n\twant ()") into one, for a FILE:LINE:COL diagnostic:
// "too many results: have (i32), want ()".
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return lines[0] + ": " + strings.Join(lines[1:], ", ")
}

func sig(f api.FunctionDefinition) string {
	var ps, rs []string
	for _, t := range f.ParamTypes() {
		ps = append(ps, api.ValueTypeName(t))
	}
	for _, t := range f.ResultTypes() {
		rs = append(rs, api.ValueTypeName(t))
	}
	s := "func(" + strings.Join(ps, ", ") + ")"
	if len(rs) == 1 {
		s += " " + rs[0]
	} else if len(rs) > 1 {
		s += " (" + strings.Join(rs, ", ") + ")"
	}
	return s
}

// ParseMemory parses a memory limit: an integer of bytes, or one with a
// KiB, MiB or GiB suffix ("64MiB"). It must be at least one page (64KiB)
// and at most 4GiB, a 32-bit module's whole address space.
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(t, "%d", &n); err != nil || fmt.Sprint(n) != t {
		return 0, fmt.Errorf("memory must be bytes or a size like 64MiB (KiB, MiB, GiB), got %q", s)
	}
	n *= mult
	switch {
	case n < PageSize:
		return 0, fmt.Errorf("memory must be at least 64KiB (one page), got %q", s)
	case n > 4<<30:
		return 0, fmt.Errorf("memory must be at most 4GiB, got %q", s)
	}
	return n, nil
}

// Retain takes one more reference.
func (m *Module) Retain() {
	m.c.mu.Lock()
	m.refs++
	m.c.mu.Unlock()
}
