package spec

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"
)

// Changes lists what differs between two definitions of a node instance,
// one line per field, as `sockets.in.connect: tcp://127.0.0.1:5557 →
// tcp://127.0.0.1:6557` (terraform plan, kubectl diff), in a stable order.
// Fields Equal ignores (positions, the replica count) are left out. It is
// the one renderer of field-level changes: `ztopo plan` and the reload log
// print what it returns.
func Changes(o, n *Node) []string {
	if o == nil || n == nil {
		return nil
	}
	var out []string
	diffValue("", reflect.ValueOf(canonical(o)).Elem(), reflect.ValueOf(canonical(n)).Elem(), &out)
	return out
}

// RestartReason says why an instance whose handler alone changed is
// restarted rather than having its handler swapped; "" when it is swapped,
// or when more than its handler changed (the changes say why).
func RestartReason(o, n *Node) string {
	if o == nil || n == nil || n.Equal(o) {
		return ""
	}
	if only, revoked := allowFields(o, n); only {
		switch {
		case len(revoked) > 0:
			return fmt.Sprintf("no longer allowed on CURVE server %s: libzmq cannot close one client's session, so the socket is opened afresh (its allowed clients reconnect by themselves)", strings.Join(revoked, ", "))
		case !liveAllow(o) || !liveAllow(n):
			return "the allow list of a process or command node lives in its child process: a new list means a new process"
		}
	}
	if handlerOnlyFields(o, n) {
		switch {
		case o.Handler.Kind == HandlerCommand || n.Handler.Kind == HandlerCommand:
			return "a command owns its sockets: a new command means new sockets"
		case o.Run == RunProcess || n.Run == RunProcess:
			return "its handler runs in a child process (run: process): a new handler means a new process"
		}
	}
	return ""
}

func diffValue(path string, a, b reflect.Value, out *[]string) {
	if a.Kind() == reflect.Pointer || a.Kind() == reflect.Interface {
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, change(path, a, b))
			}
			return
		}
		if a.Kind() == reflect.Interface && a.Elem().Type() != b.Elem().Type() {
			*out = append(*out, change(path, a, b))
			return
		}
		diffValue(path, a.Elem(), b.Elem(), out)
		return
	}
	switch a.Kind() {
	case reflect.Struct:
		t := a.Type()
		switch t {
		case reflect.TypeOf(Pos{}):
			return
		case reflect.TypeOf(HandlerRef{}):
			if !reflect.DeepEqual(a.Interface(), b.Interface()) {
				*out = append(*out, change(path, a, b))
			}
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "Name" || path == "" && (f.Name == "Base" || f.Name == "Replica") {
				continue
			}
			diffValue(join(path, snake(f.Name)), a.Field(i), b.Field(i), out)
		}
	case reflect.Map:
		keys := map[string]reflect.Value{}
		for _, k := range append(a.MapKeys(), b.MapKeys()...) {
			keys[fmt.Sprint(k.Interface())] = k
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			k := keys[name]
			av, bv := a.MapIndex(k), b.MapIndex(k)
			switch {
			case !av.IsValid() && !bv.IsValid():
			case !av.IsValid():
				*out = append(*out, fmt.Sprintf("%s: (none) → %s", join(path, name), show(bv)))
			case !bv.IsValid():
				*out = append(*out, fmt.Sprintf("%s: %s → (none)", join(path, name), show(av)))
			default:
				diffValue(join(path, name), av, bv, out)
			}
		}
	case reflect.Slice:
		if named(a) && named(b) {
			diffNamed(path, a, b, out)
			return
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, change(path, a, b))
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, change(path, a, b))
		}
	}
}

// named reports whether v is a slice of (pointers to) structs with a Name:
// sockets and options, matched by name rather than by index.
func named(v reflect.Value) bool {
	t := v.Type().Elem()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	f, ok := t.FieldByName("Name")
	return ok && f.Type.Kind() == reflect.String
}

func diffNamed(path string, a, b reflect.Value, out *[]string) {
	index := func(v reflect.Value) (map[string]reflect.Value, []string) {
		m := map[string]reflect.Value{}
		var order []string
		for i := 0; i < v.Len(); i++ {
			e := v.Index(i)
			s := e
			if s.Kind() == reflect.Pointer {
				s = s.Elem()
			}
			name := s.FieldByName("Name").String()
			m[name] = e
			order = append(order, name)
		}
		return m, order
	}
	am, aorder := index(a)
	bm, border := index(b)
	seen := map[string]bool{}
	for _, name := range append(aorder, border...) {
		if seen[name] {
			continue
		}
		seen[name] = true
		av, aok := am[name]
		bv, bok := bm[name]
		p := join(path, name)
		switch {
		case !aok:
			*out = append(*out, fmt.Sprintf("%s: added", p))
		case !bok:
			*out = append(*out, fmt.Sprintf("%s: removed", p))
		default:
			s := av
			if s.Kind() == reflect.Pointer {
				s = s.Elem()
			}
			if _, ok := s.Type().FieldByName("Value"); ok && s.NumField() == 2 {
				// An option {Name, Value}: its value is the change.
				diffValue(p, s.FieldByName("Value"), elem(bv).FieldByName("Value"), out)
				continue
			}
			diffValue(p, av, bv, out)
		}
	}
}

func elem(v reflect.Value) reflect.Value {
	if v.Kind() == reflect.Pointer {
		return v.Elem()
	}
	return v
}

func change(path string, a, b reflect.Value) string {
	return fmt.Sprintf("%s: %s → %s", path, show(a), show(b))
}

// show renders a value compactly: lists as a,b; empty as (none).
func show(v reflect.Value) string {
	if !v.IsValid() || (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return "(none)"
	}
	v = elem(v)
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			return "(none)"
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = show(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Struct:
		if h, ok := v.Interface().(HandlerRef); ok {
			return h.Label()
		}
	}
	return fmt.Sprint(v.Interface())
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// snake turns a Go field name into the file's spelling: MaxRestarts ->
// max_restarts.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
