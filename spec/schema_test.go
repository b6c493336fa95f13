package spec

import (
	"fmt"
	"strings"
	"testing"
)

func TestRegisterBuiltinPanics(t *testing.T) {
	tests := []struct {
		name string
		h    HandlerSchema
		want string
	}{
		{"empty name", HandlerSchema{}, "spec: RegisterBuiltin with an empty name"},
		{"duplicate", HandlerSchema{Name: "echo"}, `spec: duplicate registration of builtin "echo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != tt.want {
					t.Errorf("got panic %q, want %q", got, tt.want)
				}
			}()
			RegisterBuiltin(tt.h)
		})
	}
	if h, _ := builtinHandler("echo"); len(h.Keys) != 1 {
		t.Errorf("echo after a refused registration: got keys %v, want [delay]", h.Keys)
	}
}

// TestNoBuiltinsRegistered: a program that uses spec without importing the
// builtin package is told so, by the loader and by JSONSchema.
func TestNoBuiltinsRegistered(t *testing.T) {
	builtins.Lock()
	saved := builtins.m
	builtins.m = map[string]HandlerSchema{}
	builtins.Unlock()
	defer func() {
		builtins.Lock()
		builtins.m = saved
		builtins.Unlock()
	}()
	got := loadErr(t, "version: 1\nname: t\nnodes:\n  a:\n    handler: echo\n    sockets: {in: {type: PULL, bind: inproc://a}}\n", nil)
	want := "t.yaml:5:14: unknown handler \"echo\" (" + noBuiltins + ")\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	defer func() {
		if got := fmt.Sprint(recover()); !strings.Contains(got, noBuiltins) {
			t.Errorf("JSONSchema: got panic %q, want one naming the builtin package", got)
		}
	}()
	JSONSchema()
}
