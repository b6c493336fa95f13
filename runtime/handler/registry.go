package handler

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps builtin handler names to factories.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// Builtins is the registry the builtin package fills in its init.
var Builtins = NewRegistry()

// Kinds holds the factories of the out-of-process handler kinds, keyed by
// spec.HandlerKind ("exec", "plugin"): exechandler and pluginhost register
// themselves in their init, and the engine builds `handler: {exec: ...}` and
// `handler: {plugin: ...}` nodes with them (the factory finds the argv or
// path in Env.Node.Handler).
var Kinds = NewRegistry()

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a factory; it panics on an empty or duplicate name, which is
// a programming error found at start-up.
func (r *Registry) Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("handler: Register with empty name or nil factory")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("handler: duplicate registration of %q", name))
	}
	r.factories[name] = f
}

// Lookup returns the factory registered under name.
func (r *Registry) Lookup(name string) (Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.factories[name]
	return f, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Clone returns an independent copy, for tests that register extra handlers.
func (r *Registry) Clone() *Registry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := NewRegistry()
	for n, f := range r.factories {
		c.factories[n] = f
	}
	return c
}
