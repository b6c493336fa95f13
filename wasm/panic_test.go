package wasm

import (
	"errors"
	"math"
	"testing"
)

type stringer struct{}

func (stringer) String() string { return "a stringer" }

// A panic's text is made without fmt, which the SDK does not import.
func TestPanicText(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"string", "boom", "boom"},
		{"error", errors.New("bad"), "bad"},
		{"stringer", stringer{}, "a stringer"},
		{"int", 42, "42"},
		{"zero", 0, "0"},
		{"negative", int32(-7), "-7"},
		{"min int64", int64(math.MinInt64), "-9223372036854775808"},
		{"other", 1.5, "a value that is not a string, an error or an integer"},
	} {
		if got := panicText(c.v); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
