package wasmabi

import (
	"context"
	"testing"

	"github.com/ztopo/ztopo/internal/wasmabi/wasmabitest"
)

// A guarded module is instrumented when its code is known, and compiled
// with wazero's checks when not; an unguarded one is never instrumented.
func TestGuardKinds(t *testing.T) {
	cases := []struct {
		name     string
		wasm     []byte
		guarded  bool
		wantStop string
	}{
		{"minimal guarded", wasmabitest.MinimalUpper(), true, StopGlobal},
		{"minimal unguarded", wasmabitest.MinimalUpper(), false, ""},
		{"spinner guarded", wasmabitest.Spinner(false), true, StopGlobal},
		{"simd guarded", wasmabitest.Spinner(true), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Compile(context.Background(), c.wasm, 0, c.guarded)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			if m.Stop != c.wantStop || m.Guarded != c.guarded {
				t.Fatalf("got Stop %q Guarded %v, want %q %v", m.Stop, m.Guarded, c.wantStop, c.guarded)
			}
			if c.wantStop != "" {
				if _, ok := m.Compiled.ExportedFunctions()[StopGlobal]; ok {
					t.Fatal("the stop flag is exported as a function")
				}
			}
		})
	}
}

// Instrumenting adds exactly one test per loop and keeps what it does not
// know out.
func TestInstrument(t *testing.T) {
	out, err := instrument(wasmabitest.MinimalUpper())
	if err != nil {
		t.Fatal(err)
	}
	// The check: global.get $fuel (index 0, the module has no globals).
	if n := countSub(out, []byte{0x03, 0x40, 0x23, 0x00, 0x45, 0x04, 0x40}); n != 1 {
		t.Fatalf("got %d instrumented loops, want 1", n)
	}
	if _, err := instrument(wasmabitest.Spinner(true)); err != errUnknown {
		t.Fatalf("SIMD: got %v, want errUnknown", err)
	}
	if _, err := instrument([]byte("\x00asm\x01\x00\x00\x00\x0a\x05")); err != errUnknown {
		t.Fatalf("truncated: got %v, want errUnknown", err)
	}
}

func countSub(b, sub []byte) int {
	n := 0
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			n++
		}
	}
	return n
}

// In a dispatch loop (Go's shape of a function) only branches back to the
// same or an earlier segment are tested, before they branch; the loop's
// head and forward branches are not. Other loops are tested at their head.
func TestInstrumentDispatch(t *testing.T) {
	fn := func(code ...byte) []byte {
		body := append([]byte{0x01, 0x01, 0x7f}, code...) // one i32 local: $pc
		return append(appendU32([]byte{0x01}, uint32(len(body))), body...)
	}
	check := []byte{0x01, 0x01, 0x01} // nops: easy to find
	cases := []struct {
		name     string
		in, want []byte
	}{
		{
			"dispatch",
			fn(0x03, 0x40, // loop
				0x02, 0x40, 0x02, 0x40, // block block
				0x20, 0x00, 0x0e, 0x02, 0x00, 0x01, 0x01, // local.get $pc  br_table 0 1 1
				0x0b,                               // end: segment 0
				0x41, 0x01, 0x21, 0x00, 0x0c, 0x01, // $pc = 1  br (the loop): forward
				0x0b,                               // end: segment 1
				0x41, 0x00, 0x21, 0x00, 0x0c, 0x00, // $pc = 0  br (the loop): back
				0x41, 0x01, 0x21, 0x00, 0x0c, 0x00, // $pc = 1  br: the same segment, back
				0x20, 0x00, 0x0d, 0x00, // br_if (the loop): unknown target
				0x0b, 0x0b),
			fn(0x03, 0x40,
				0x02, 0x40, 0x02, 0x40,
				0x20, 0x00, 0x0e, 0x02, 0x00, 0x01, 0x01,
				0x0b,
				0x41, 0x01, 0x21, 0x00, 0x0c, 0x01,
				0x0b,
				0x41, 0x00, 0x21, 0x00, 0x01, 0x01, 0x01, 0x0c, 0x00,
				0x41, 0x01, 0x21, 0x00, 0x01, 0x01, 0x01, 0x0c, 0x00,
				0x20, 0x00, 0x01, 0x01, 0x01, 0x0d, 0x00,
				0x0b, 0x0b),
		},
		{
			"plain loop",
			fn(0x03, 0x40, 0x20, 0x00, 0x0d, 0x00, 0x0b, 0x0b),
			fn(0x03, 0x40, 0x01, 0x01, 0x01, 0x20, 0x00, 0x0d, 0x00, 0x0b, 0x0b),
		},
	}
	for _, c := range cases {
		got, err := instrumentCode(c.in, check)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != string(c.want) {
			t.Errorf("%s: got\n% x\nwant\n% x", c.name, got, c.want)
		}
	}
}
