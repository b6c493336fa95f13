package wasmabi

import (
	"errors"
	"strings"
)

// StopGlobal is the export under which a guarded module's stop flag is
// found: a mutable i32 global that the host sets to 1 to stop a call.
const StopGlobal = "ztopo_stop"

// How a call is stopped. wazero's own way (RuntimeConfig
// WithCloseOnContextDone) costs every call a goroutine that watches its
// context, and every loop iteration a jump out of machine code into Go to
// ask whether the module was closed: 1–3 µs per call even for a module
// without a loop, most of a message's cost (wazero issue 2466). Instead,
// instrument adds two globals to the module, a countdown $fuel and the
// stop flag StopGlobal, and at the head of every loop:
//
//	global.get $fuel
//	i32.eqz
//	if
//	  i32.const 10000  global.set $fuel
//	  i32.const 0  memory.grow  drop   ;; a trip into Go
//	  global.get $ztopo_stop
//	  if  unreachable  end
//	else
//	  global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	end
//
// and the module is compiled without wazero's checks. A loop iteration
// costs a few instructions, a call nothing more. (In a Go module every
// jump is a trip around one loop per function: there the test goes before
// the branches that may go back instead, see dispatch.) The host's watchdog
// stops a call that overruns by setting the stop flag, and the module
// traps within 10000 loop iterations. The trip into Go every 10000
// iterations (growing the memory by nothing, which wazero does in Go) is
// where Go can stop the goroutine: a garbage collection stops every
// goroutine first, machine code cannot be interrupted, and without it an
// endless loop would hold the collection, hence the watchdog, hence the
// process, for good. Code without a loop runs to its end anyway
// (recursion ends at the stack limit), so loop heads are the only places
// that need the test. (Host functions are outside: a module granted the
// clock may still sleep in poll_oneoff, as with wazero's checks.)

// fuel is how many loop iterations run between two trips into Go.
const fuel = 10000

// errUnknown is a module instrument does not know how to rewrite; it is
// compiled with wazero's own checks instead.
var errUnknown = errors.New("unknown construct")

// instrument returns wasm with the stop flag and its tests, or an error
// when the module uses an instruction or encoding it does not know (SIMD,
// threads, exceptions, GC types, a malformed module): the caller then
// compiles the module as it is, with wazero's checks.
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, errUnknown
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: wasm, p: 8}
	for r.p < len(r.b) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, r.err
		}
		secs = append(secs, section{id, body})
	}
	// The new globals' indexes: after every imported and defined global.
	globals := uint32(0)
	hasGlobals, hasExports, hasMemory := false, false, false
	for _, s := range secs {
		switch s.id {
		case 2:
			n, mem, err := importedGlobals(s.body)
			if err != nil {
				return nil, err
			}
			globals += n
			hasMemory = hasMemory || mem
		case 5:
			sr := &reader{b: s.body}
			hasMemory = hasMemory || sr.u32() > 0
		case 6:
			hasGlobals = true
			sr := &reader{b: s.body}
			globals += sr.u32()
			if sr.err != nil {
				return nil, sr.err
			}
		case 7:
			hasExports = true
			if exports(s.body, StopGlobal) {
				return nil, errUnknown
			}
		}
	}
	if !hasExports || !hasMemory {
		return nil, errUnknown // no memory export: the ABI check says so
	}
	fuelAt, stopAt := globals, globals+1
	newGlobals := append([]byte{0x7f, 0x01, 0x41}, sleb(fuel)...)       // mut i32 $fuel = fuel
	newGlobals = append(newGlobals, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b) // mut i32 $stop = 0
	stopExport := append(name(StopGlobal), 0x03)
	stopExport = appendU32(stopExport, stopAt)
	var check []byte
	check = appendU32(append(check, 0x23), fuelAt)      // global.get $fuel
	check = append(check, 0x45, 0x04, 0x40, 0x41)       // i32.eqz if i32.const
	check = append(check, sleb(fuel)...)                // fuel
	check = appendU32(append(check, 0x24), fuelAt)      // global.set $fuel
	check = append(check, 0x41, 0x00, 0x40, 0x00, 0x1a) // i32.const 0 memory.grow 0 drop
	check = appendU32(append(check, 0x23), stopAt)      // global.get $stop
	check = append(check, 0x04, 0x40, 0x00, 0x0b, 0x05) // if unreachable end else
	check = appendU32(append(check, 0x23), fuelAt)      // global.get $fuel
	check = append(check, 0x41, 0x01, 0x6b)             // i32.const 1 i32.sub
	check = appendU32(append(check, 0x24), fuelAt)      // global.set $fuel
	check = append(check, 0x0b)                         // end

	out := append(make([]byte, 0, len(wasm)+len(wasm)/4), wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	for _, s := range secs {
		switch {
		case s.id == 0:
			// DWARF gives source positions by code offset, which move:
			// without it, traces name functions only (the name section).
			sr := &reader{b: s.body}
			if strings.HasPrefix(string(sr.bytes(int(sr.u32()))), ".debug_") && sr.err == nil {
				continue
			}
			emit(s.id, s.body)
		case !hasGlobals && rank(s.id) > rank(6):
			hasGlobals = true
			emit(6, append(appendU32(nil, 2), newGlobals...))
			fallthrough
		default:
			switch s.id {
			case 6:
				body, err := appendEntries(s.body, 2, newGlobals)
				if err != nil {
					return nil, err
				}
				emit(6, body)
			case 7:
				body, err := appendEntries(s.body, 1, stopExport)
				if err != nil {
					return nil, err
				}
				emit(7, body)
			case 10:
				body, err := instrumentCode(s.body, check)
				if err != nil {
					return nil, err
				}
				emit(10, body)
			default:
				emit(s.id, s.body)
			}
		}
	}
	return out, nil
}

// rank is a known section's place in the order the format prescribes.
func rank(id byte) int {
	switch id {
	case 13: // tag, between memory and global
		return 5
	case 6, 7, 8, 9:
		return int(id)
	case 12: // data count, before code
		return 10
	case 10, 11:
		return int(id) + 1
	}
	return int(id)
}

// appendEntries adds n entries to a vector section's body.
func appendEntries(body []byte, n uint32, entry []byte) ([]byte, error) {
	r := &reader{b: body}
	count := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(nil, count+n)
	out = append(out, body[r.p:]...)
	return append(out, entry...), nil
}

// importedGlobals counts a module's imported globals, and tells whether
// it imports a memory.
func importedGlobals(body []byte) (globals uint32, memory bool, err error) {
	r := &reader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch r.byte() {
		case 0: // func
			r.u32()
		case 1: // table
			r.valtype()
			r.limits()
		case 2: // memory
			r.limits()
			memory = true
		case 3: // global
			r.valtype()
			r.byte()
			globals++
		default: // tags and what comes after
			return 0, false, errUnknown
		}
	}
	return globals, memory, r.err
}

// exports tells whether the export section names name.
func exports(body []byte, name string) bool {
	r := &reader{b: body}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		if string(r.bytes(int(r.u32()))) == name {
			return true
		}
		r.byte()
		r.u32()
	}
	return false
}

// instrumentCode inserts check in every function body of a code section:
// after every loop's block type, except in a dispatch loop (see
// dispatchLoop), where it goes before each branch back to the loop that
// does not provably move forward.
func instrumentCode(body, check []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	// Room for the code and a check per few dozen bytes of it, so that a
	// module of megabytes is not copied over and over as out grows.
	out := appendU32(make([]byte, 0, len(body)+len(body)/4), n)
	var fn []byte
	var stack []label
	for ; n > 0 && r.err == nil; n-- {
		size := r.u32()
		f := &reader{b: r.bytes(int(size))}
		if r.err != nil {
			break
		}
		fn = fn[:0]
		for locals := f.u32(); locals > 0 && f.err == nil; locals-- {
			f.u32()
			f.valtype()
		}
		fn = append(fn, f.b[:f.p]...)
		stack = stack[:0]
		lead, leadOf := 0, -1 // leading blocks of a dispatch loop still to come
		var prev [2]int       // where the last two instructions began (-1: none)
		prev[0], prev[1] = -1, -1
		for f.p < len(f.b) && f.err == nil {
			start := f.p
			op := f.byte()
			f.immediates(op)
			if f.err != nil {
				break
			}
			switch op {
			case 0x02, 0x03, 0x04: // block, loop, if
				l := label{loop: op == 0x03, leadOf: -1}
				if op == 0x02 && lead > 0 {
					l.leadOf = leadOf
					stack[leadOf].open++
					lead--
				}
				fn = append(fn, f.b[start:f.p]...)
				if l.loop {
					if d, ok := dispatchLoop(f.b, f.p); ok {
						l.dispatch = &d
						lead, leadOf = d.lead, len(stack)
					} else {
						fn = append(fn, check...)
					}
				}
				stack = append(stack, l)
			case 0x0b: // end
				if len(stack) > 0 {
					if l := stack[len(stack)-1]; l.leadOf >= 0 {
						stack[l.leadOf].open--
					}
					stack = stack[:len(stack)-1]
				}
				fn = append(fn, f.b[start:f.p]...)
			case 0x0c: // br
				if t := target(stack, f.b[start+1:f.p]); t != nil && t.dispatch != nil && !t.forward(f.b, prev) {
					fn = append(fn, check...)
				}
				fn = append(fn, f.b[start:f.p]...)
			case 0x0d, 0x0e: // br_if, br_table: checked when one target is a dispatch loop
				if branchesToDispatch(stack, op, f.b[start+1:f.p]) {
					fn = append(fn, check...)
				}
				fn = append(fn, f.b[start:f.p]...)
			default:
				fn = append(fn, f.b[start:f.p]...)
			}
			prev[0], prev[1] = prev[1], start
		}
		if f.err != nil {
			return nil, f.err
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.err == nil && r.p != len(r.b) {
		r.err = errUnknown
	}
	return out, r.err
}

// A dispatch loop is how Go compiles a function to WebAssembly: every
// jump, forward ones too, sets a local to the target's number and
// branches to one loop, whose body starts with a br_table on that local
// out of as many nested blocks as the function has jump targets:
//
//	loop  block block … block  local.get $pc  br_table …  end seg0  end seg1 …  end
//
// Testing the fuel at that loop's head would test it at every jump. A
// branch that sets the local to a segment after the one it is in moves
// forward, and code that only moves forward ends: only the other branches
// to the loop (back to the same or an earlier segment, or of another
// shape) are tested, before they branch. Code inside a segment that
// branches elsewhere (its own loops, blocks) is instrumented as usual.
type dispatch struct {
	local uint32
	lead  int      // leading blocks: segments
	table []uint32 // the br_table's depths, then its default
}

// label is an open block, loop or if of a function body.
type label struct {
	loop     bool
	dispatch *dispatch // a dispatch loop
	leadOf   int       // the stack index of the dispatch loop this block leads, or -1
	open     int       // a dispatch loop's leading blocks still open
}

// dispatchLoop reads, at p just after a loop's block type, whether the
// loop is a dispatch loop.
func dispatchLoop(b []byte, p int) (dispatch, bool) {
	r := &reader{b: b, p: p}
	var d dispatch
	for r.p+1 < len(b) && b[r.p] == 0x02 && b[r.p+1] == 0x40 {
		r.p += 2
		d.lead++
	}
	if d.lead == 0 || r.byte() != 0x20 {
		return d, false
	}
	d.local = r.u32()
	if r.byte() != 0x0e {
		return d, false
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		d.table = append(d.table, r.u32())
	}
	d.table = append(d.table, r.u32())
	return d, r.err == nil
}

// target is the label a branch's depth imm names, or nil for the function.
func target(stack []label, imm []byte) *label {
	r := &reader{b: imm}
	d := int(r.u32())
	if r.err != nil || d >= len(stack) {
		return nil
	}
	return &stack[len(stack)-1-d]
}

// branchesToDispatch tells whether a br_if or br_table may branch to a
// dispatch loop.
func branchesToDispatch(stack []label, op byte, imm []byte) bool {
	r := &reader{b: imm}
	n := uint32(0)
	if op == 0x0e {
		n = r.u32()
	}
	for i := uint32(0); i <= n && r.err == nil; i++ {
		d := int(r.u32())
		if d < len(stack) && stack[len(stack)-1-d].dispatch != nil {
			return true
		}
	}
	return r.err != nil
}

// forward tells whether the br to dispatch loop l that follows the
// instructions at prev (i32.const K; local.set $pc) goes to a later
// segment than the one it is in.
func (l *label) forward(b []byte, prev [2]int) bool {
	d := l.dispatch
	if prev[0] < 0 || b[prev[0]] != 0x41 || b[prev[1]] != 0x21 {
		return false
	}
	r := &reader{b: b, p: prev[0] + 1}
	k := r.leb()
	if r.err != nil || b[r.p-1]&0x40 != 0 { // negative
		return false
	}
	r.p = prev[1] + 1
	if r.u32() != d.local || r.err != nil {
		return false
	}
	depth := d.table[len(d.table)-1]
	if k < uint64(len(d.table)-1) {
		depth = d.table[k]
	}
	// Depth e of the br_table lands after the end of leading block
	// lead-e, at the start of segment e; the branch is in segment
	// lead-open-1.
	return int(depth) < d.lead && int(depth) > d.lead-l.open-1
}

// reader decodes the binary format; the first error sticks and every
// read after it returns zero values.
type reader struct {
	b   []byte
	p   int
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || r.p >= len(r.b) {
		r.err = errUnknown
		return 0
	}
	c := r.b[r.p]
	r.p++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.p {
		r.err = errUnknown
		return nil
	}
	s := r.b[r.p : r.p+n]
	r.p += n
	return s
}

// leb reads an LEB128 number of up to 10 bytes, signed or not.
func (r *reader) leb() uint64 {
	var v uint64
	for shift := 0; shift < 70; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errUnknown
	return 0
}

func (r *reader) u32() uint32 {
	v := r.leb()
	if v > 1<<32-1 {
		r.err = errUnknown
	}
	return uint32(v)
}

// valtype reads a one-byte value type (numbers, v128, funcref,
// externref); GC's reference types are not known.
func (r *reader) valtype() {
	switch r.byte() {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		r.err = errUnknown
	}
}

func (r *reader) limits() {
	flags := r.byte()
	r.leb()
	if flags&1 != 0 {
		r.leb()
	}
}

// blocktype reads a block type: empty, one value type or a type index
// (an s33 that is never negative); other negative ones are GC's.
func (r *reader) blocktype() {
	var v int64
	shift := 0
	for {
		c := r.byte()
		if r.err != nil {
			return
		}
		if shift == 0 {
			switch c {
			case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
				return
			}
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if c&0x40 != 0 || v > 1<<32-1 {
				r.err = errUnknown
			}
			return
		}
		if shift >= 35 {
			r.err = errUnknown
			return
		}
	}
}

// immediates skips the immediates of the instruction op. It knows
// WebAssembly 1.0 with sign extension, saturating conversions, bulk memory,
// reference types, multi-value and tail calls; anything else (SIMD,
// threads, exceptions, GC) is errUnknown.
func (r *reader) immediates(op byte) {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
		r.blocktype()
	case op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b:
	case op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12: // br, br_if, call, return_call
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.valtype()
		}
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		if r.u32()&0x40 != 0 {
			r.u32() // memory index
		}
		r.leb()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41 || op == 0x42: // i32.const, i64.const
		r.leb()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric
	case op == 0xd0: // ref.null ht
		r.leb()
	case op == 0xd1:
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
			r.u32()
			r.u32()
		case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
			r.u32()
		default:
			r.err = errUnknown
		}
	default:
		r.err = errUnknown
	}
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(v int32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func name(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }
