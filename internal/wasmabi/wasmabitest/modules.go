// Package wasmabitest holds WebAssembly modules for tests and benchmarks,
// written out as bytes by Go code (no toolchain needed).
package wasmabitest

// MinimalUpper is a module written out by hand, as a C or Rust handler
// compiles: no language runtime, a fixed buffer at 1024, the upper-casing
// loop over the message in place. It shows the host's own cost per call,
// apart from Go's wasm runtime.
func MinimalUpper() []byte { return minimal(nil, false) }

// Spinner is a module whose ztopo_handle never returns (an empty endless
// loop). With simd, its ztopo_buffer also runs a SIMD instruction, which
// ztopo's loop instrumentation does not know, so that the module is
// stopped by wazero's own checks instead.
func Spinner(simd bool) []byte {
	var prefix []byte
	if simd {
		prefix = append([]byte{0xfd, 0x0c}, make([]byte, 16)...) // v128.const 0
		prefix = append(prefix, 0x1a)                            // drop
	}
	return minimal(prefix, true)
}

func minimal(bufferPrefix []byte, spin bool) []byte {
	leb := func(n uint64) []byte {
		var out []byte
		for {
			b := byte(n & 0x7f)
			n >>= 7
			if n != 0 {
				out = append(out, b|0x80)
				continue
			}
			return append(out, b)
		}
	}
	sleb := func(n int64) []byte {
		var out []byte
		for {
			b := byte(n & 0x7f)
			n >>= 7
			if (n == 0 && b&0x40 == 0) || (n == -1 && b&0x40 != 0) {
				return append(out, b)
			}
			out = append(out, b|0x80)
		}
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	section := func(id byte, body []byte) []byte { return cat([]byte{id}, leb(uint64(len(body))), body) }
	name := func(s string) []byte { return cat(leb(uint64(len(s))), []byte(s)) }
	fn := func(locals, code []byte) []byte {
		body := cat(locals, code, []byte{0x0b})
		return cat(leb(uint64(len(body))), body)
	}
	const i32, i64 = 0x7f, 0x7e
	types := section(1, cat(leb(2), []byte{0x60, 1, i32, 1, i32}, []byte{0x60, 1, i32, 1, i64}))
	funcs := section(3, cat(leb(2), leb(0), leb(1)))
	mem := section(5, cat(leb(1), []byte{0x00}, leb(2)))
	exports := section(7, cat(leb(3),
		name("memory"), []byte{0x02}, leb(0),
		name("ztopo_buffer"), []byte{0x00}, leb(0),
		name("ztopo_handle"), []byte{0x00}, leb(1)))
	buffer := fn(leb(0), cat(bufferPrefix, []byte{0x41}, sleb(1024))) // i32.const 1024
	handle := fn(cat(leb(1), leb(2), []byte{i32}), cat(               // locals: $i $b (1, 2)
		[]byte{0x41}, sleb(1024), []byte{0x21, 1}, // i = 1024
		[]byte{0x02, 0x40, 0x03, 0x40},                                          // block loop
		[]byte{0x20, 1, 0x41}, sleb(1024), []byte{0x20, 0, 0x6a, 0x4f, 0x0d, 1}, // br_if 1 (i >= 1024+len)
		[]byte{0x20, 1, 0x2d, 0, 0, 0x22, 2},                               // b = load8_u(i)
		[]byte{0x41}, sleb(97), []byte{0x6b, 0x41}, sleb(26), []byte{0x49}, // b-97 < 26
		[]byte{0x04, 0x40, 0x20, 1, 0x20, 2, 0x41}, sleb(32), []byte{0x6b, 0x3a, 0, 0, 0x0b}, // if: store8(i, b-32)
		[]byte{0x20, 1, 0x41}, sleb(1), []byte{0x6a, 0x21, 1}, // i++
		[]byte{0x0c, 0, 0x0b, 0x0b},                               // br 0; end loop; end block
		[]byte{0x42}, sleb(1024<<32), []byte{0x20, 0, 0xad, 0x84}, // (1024<<32) | u64(len)
	))
	if spin {
		handle = fn(leb(0), []byte{0x03, 0x40, 0x0c, 0, 0x0b, 0x42, 0}) // loop br 0 end; i64.const 0
	}
	code := section(10, cat(leb(2), buffer, handle))
	return cat([]byte("\x00asm\x01\x00\x00\x00"), types, funcs, mem, exports, code)
}
