package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// TestNamesMatchSpec: register puts every builtin in both registries; this
// catches one registered in a single one (a direct handler.Builtins.Register
// or spec.RegisterBuiltin).
func TestNamesMatchSpec(t *testing.T) {
	var want []string
	for _, h := range spec.BuiltinHandlers() {
		want = append(want, h.Name)
	}
	if got := handler.Builtins.Names(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("registered %q, spec lists %q", got, want)
	}
}

// TestSchemaTraits pins which builtins the engine and spec treat as
// workers, relays, opaque to taps, and which config keys say how many
// messages they take or send before completing.
func TestSchemaTraits(t *testing.T) {
	var reactive, relay, opaque, expect []string
	for _, h := range spec.BuiltinHandlers() {
		for _, tr := range []struct {
			on   bool
			into *[]string
		}{{h.Reactive, &reactive}, {h.Relay, &relay}, {h.Opaque, &opaque}} {
			if tr.on {
				*tr.into = append(*tr.into, h.Name)
			}
		}
		for _, k := range []string{h.ExpectIn, h.ExpectOut} {
			if k == "" {
				continue
			}
			expect = append(expect, h.Name+"."+k)
			if ck, ok := h.Key(k); !ok || ck.Kind != spec.KindInt {
				t.Errorf("%s: expect key %q: got %v (known %v), want an integer key", h.Name, k, ck.Kind, ok)
			}
		}
	}
	for _, tt := range []struct {
		trait     string
		got, want []string
	}{
		{"reactive", reactive, []string{"count", "echo", "forward", "log", "upper"}},
		{"relay", relay, []string{"echo", "forward", "lbbroker", "proxy", "upper"}},
		{"opaque", opaque, []string{"proxy"}},
		{"expect", expect, []string{"count.expect", "generate.count"}},
	} {
		if strings.Join(tt.got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: got %q, want %q", tt.trait, tt.got, tt.want)
		}
	}
}

// TestConfigKeysMatchSpec builds every builtin with each key spec allows,
// and checks that a key spec does not know is refused.
func TestConfigKeysMatchSpec(t *testing.T) {
	sample := map[spec.ValueKind]any{
		spec.KindInt: 3, spec.KindString: "x", spec.KindBool: true,
		spec.KindDuration: time.Millisecond, spec.KindStrings: []string{"a"}, spec.KindFloat: 1.5,
	}
	// Keys whose values are words, and what a handler cannot do without.
	capture := filepath.Join(t.TempDir(), "cap.jsonl")
	if err := os.WriteFile(capture, []byte(`{"time":"2026-12-04T18:00:00Z","instance":"w","socket":"in","dir":"in","frames":["eA=="]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	words := map[string]any{"replay.speed": "max", "replay.direction": "in", "replay.file": capture}
	base := map[string]map[string]any{"replay": {"file": capture}}
	for _, hs := range spec.BuiltinHandlers() {
		f, _ := handler.Builtins.Lookup(hs.Name)
		for _, k := range hs.Keys {
			cfg := map[string]any{}
			for bk, bv := range base[hs.Name] {
				cfg[bk] = bv
			}
			cfg[k.Name] = sample[k.Kind]
			if w, ok := words[hs.Name+"."+k.Name]; ok {
				cfg[k.Name] = w
			}
			if _, err := f(cfg, handler.Env{}); err != nil {
				t.Errorf("%s: key %s: %v", hs.Name, k.Name, err)
			}
		}
		_, err := f(map[string]any{"bogus": 1}, handler.Env{})
		if want := hs.Name + `: unknown config key "bogus"`; err == nil || err.Error() != want {
			t.Errorf("%s: unknown key: got %v, want %s", hs.Name, err, want)
		}
	}
}

func build(t *testing.T, name string, cfg map[string]any, lg hclog.Logger) any {
	t.Helper()
	f, ok := handler.Builtins.Lookup(name)
	if !ok {
		t.Fatalf("no builtin %q", name)
	}
	h, err := f(cfg, handler.Env{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func q(m [][]byte) string { return fmt.Sprintf("%q", m) }

func TestReactiveBuiltins(t *testing.T) {
	tests := []struct {
		name string
		in   [][]byte
		want string
	}{
		{"forward", zsocktest.Frames("topic", "body"), `["topic" "body"]`},
		{"echo", zsocktest.Frames("a", "b"), `["a" "b"]`},
		{"upper", zsocktest.Frames("topic", "héllo, World 42"), `["topic" "HéLLO, WORLD 42"]`},
		{"log", zsocktest.Frames("\x00bin", "x"), `["\x00bin" "x"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := build(t, tc.name, nil, hclog.NewNullLogger()).(handler.Handler)
			out, err := h.Handle(context.Background(), handler.Msg{Frames: tc.in, Socket: "in"})
			if err != nil {
				t.Fatal(err)
			}
			if got := q(out); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLogShowsFramesQuoted(t *testing.T) {
	var buf bytes.Buffer
	lg := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	h := build(t, "log", nil, lg).(handler.Handler)
	if _, err := h.Handle(context.Background(), handler.Msg{Frames: zsocktest.Frames("\x00\xff", "hi"), Socket: "in"}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.Contains(got, `message: socket=in frames="[\"\x00\xff\" \"hi\"]"`) {
		t.Errorf("log line: %s", got)
	}
}

func TestDelayIsStoppable(t *testing.T) {
	h := build(t, "forward", map[string]any{"delay": time.Hour}, nil).(handler.Handler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Handle(ctx, handler.Msg{Frames: zsocktest.Frames("x")})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("delay not interrupted")
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		name      string
		cfg       map[string]any
		msgs      []string
		doneAt    int // index of the message that completes it, -1: never
		completes bool
		n         int
	}{
		{"expect", map[string]any{"expect": 3}, []string{"a", "b", "c"}, 2, true, 3},
		{"until", map[string]any{"until": "END"}, []string{"a", "b", "END"}, 2, true, 2},
		{"until empty text", map[string]any{"until": ""}, []string{"a", ""}, 1, true, 1},
		{"expect before until", map[string]any{"expect": 2, "until": "END"}, []string{"a", "b"}, 1, true, 2},
		{"forever", nil, []string{"a", "b"}, -1, false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			lg := hclog.New(&hclog.LoggerOptions{Output: &buf})
			c := build(t, "count", tc.cfg, lg).(*Count)
			if c.Completes() != tc.completes {
				t.Errorf("Completes: got %v", c.Completes())
			}
			for i, m := range tc.msgs {
				out, err := c.Handle(context.Background(), handler.Msg{Frames: zsocktest.Frames("topic", m)})
				if out != nil {
					t.Errorf("count sent %q on", out)
				}
				if done := errors.Is(err, handler.ErrDone); done != (i == tc.doneAt) {
					t.Fatalf("message %d: err %v", i, err)
				}
			}
			if c.N() != tc.n {
				t.Errorf("N: got %d, want %d", c.N(), tc.n)
			}
			c.Close(context.Background())
			if want := fmt.Sprintf("received %d messages in ", tc.n); !strings.Contains(buf.String(), want) || strings.Count(buf.String(), "received") != 1 {
				t.Errorf("log: %q, want one %q line", buf.String(), want)
			}
		})
	}
}

// fakeSockets records sends; a REQ socket answers every request with "ok".
type fakeSockets struct {
	mu    sync.Mutex
	specs map[string]*spec.Socket
	sent  map[string][]string
	queue map[string][][][]byte
}

func newFake(socks ...*spec.Socket) *fakeSockets {
	f := &fakeSockets{specs: map[string]*spec.Socket{}, sent: map[string][]string{}, queue: map[string][][][]byte{}}
	for _, s := range socks {
		f.specs[s.Name] = s
	}
	return f
}

func (f *fakeSockets) Names() []string {
	var out []string
	for n := range f.specs {
		out = append(out, n)
	}
	return out
}
func (f *fakeSockets) Spec(name string) *spec.Socket { return f.specs[name] }
func (f *fakeSockets) Raw(string) any                { return nil }
func (f *fakeSockets) Send(name string, frames [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent[name] = append(f.sent[name], strings.Trim(q(frames), "[]"))
	if f.specs[name].Type == spec.REQ {
		f.queue[name] = append(f.queue[name], zsocktest.Frames("ok"))
	}
	return nil
}
func (f *fakeSockets) Recv(name string) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue[name]) == 0 {
		return nil, fmt.Errorf("recv on %s without a request", name)
	}
	m := f.queue[name][0]
	f.queue[name] = f.queue[name][1:]
	return m, nil
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   map[string]any
		socks []*spec.Socket
		sent  map[string]string
	}{
		{"count payload", map[string]any{"count": 3, "payload": "hi"},
			[]*spec.Socket{{Name: "out", Type: spec.PUSH}},
			map[string]string{"out": `"hi"|"hi"|"hi"`}},
		{"default payload", map[string]any{"count": 1},
			[]*spec.Socket{{Name: "out", Type: spec.PUSH}},
			map[string]string{"out": `"hello"`}},
		{"size", map[string]any{"count": 2, "size": 4},
			[]*spec.Socket{{Name: "out", Type: spec.PUB}},
			map[string]string{"out": `"xxxx"|"xxxx"`}},
		{"topics round robin and end per topic", map[string]any{"count": 3, "payload": "p", "topics": []string{"A", "B"}, "end": "END"},
			[]*spec.Socket{{Name: "out", Type: spec.PUB}},
			map[string]string{"out": `"A" "p"|"B" "p"|"A" "p"|"A" "END"|"B" "END"`}},
		{"end without topics", map[string]any{"count": 1, "payload": "p", "end": "END"},
			[]*spec.Socket{{Name: "out", Type: spec.PUSH}},
			map[string]string{"out": `"p"|"END"`}},
		{"every out socket, not in sockets", map[string]any{"count": 1},
			[]*spec.Socket{{Name: "a", Type: spec.PUSH}, {Name: "b", Type: spec.PAIR, Role: spec.RoleOut}, {Name: "c", Type: spec.PULL}, {Name: "d", Type: spec.DEALER}},
			map[string]string{"a": `"hello"`, "b": `"hello"`, "d": `"hello"`}},
		{"req client", map[string]any{"count": 2, "payload": "q"},
			[]*spec.Socket{{Name: "req", Type: spec.REQ}},
			map[string]string{"req": `"q"|"q"`}},
		{"count zero sends only end", map[string]any{"count": 0, "end": "E"},
			[]*spec.Socket{{Name: "out", Type: spec.PUSH}},
			map[string]string{"out": `"E"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := build(t, "generate", tc.cfg, hclog.NewNullLogger()).(*Generate)
			if !g.Completes() {
				t.Error("a generate with a count must complete")
			}
			f := newFake(tc.socks...)
			if err := g.Run(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for n, s := range f.sent {
				got[n] = strings.Join(s, "|")
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.sent) {
				t.Errorf("sent: got %v, want %v", got, tc.sent)
			}
			for n, rest := range f.queue {
				if len(rest) != 0 {
					t.Errorf("%s: %d replies not read", n, len(rest))
				}
			}
		})
	}
}

func TestGenerateForeverStops(t *testing.T) {
	g := build(t, "generate", map[string]any{"interval": time.Millisecond}, nil).(*Generate)
	if g.Completes() {
		t.Fatal("generate without count must not complete")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := newFake(&spec.Socket{Name: "out", Type: spec.PUSH})
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, f) }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		n := len(f.sent["out"])
		f.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing sent")
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("generate did not stop")
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	f, _ := handler.Builtins.Lookup("generate")
	_, err := f(map[string]any{"payload": "a", "size": 3}, handler.Env{})
	if err == nil || err.Error() != "generate: payload and size are exclusive" {
		t.Errorf("got %v", err)
	}
	_, err = f(map[string]any{"count": "ten"}, handler.Env{})
	if err == nil || err.Error() != "generate: count: want an integer, got string" {
		t.Errorf("got %v", err)
	}
}

func TestGenerateWithoutOutSocketIsFatal(t *testing.T) {
	g := build(t, "generate", map[string]any{"count": 1}, nil).(*Generate)
	err := g.Run(context.Background(), newFake(&spec.Socket{Name: "in", Type: spec.PULL}))
	if !errors.Is(err, handler.ErrFatal) || !strings.HasPrefix(err.Error(), "generate: no socket to send on") {
		t.Fatalf("got %v", err)
	}
}

// TestCountDiscards: count lets the node count for it, up to expect, unless
// it must look at messages for until.
func TestCountDiscards(t *testing.T) {
	c := &Count{Expect: 10, Logger: hclog.NewNullLogger()}
	if ok, limit := c.Discarding(); !ok || limit != 10 {
		t.Fatalf("Discarding: got %v, %d, want true, 10", ok, limit)
	}
	if c.Discarded(4, time.Now(), time.Now()) {
		t.Fatal("done after 4 of 10")
	}
	if ok, limit := c.Discarding(); !ok || limit != 6 {
		t.Fatalf("Discarding after 4: got %v, %d, want true, 6", ok, limit)
	}
	if !c.Discarded(6, time.Now(), time.Now()) || c.N() != 10 || !c.reported {
		t.Fatalf("after 10: N %d, reported %v, want 10, true", c.N(), c.reported)
	}
	if ok, limit := (&Count{}).Discarding(); !ok || limit != 0 {
		t.Errorf("no expect: got %v, %d, want true, 0", ok, limit)
	}
	if ok, _ := (&Count{Expect: 3, HasUntil: true}).Discarding(); ok {
		t.Error("with until: discarding")
	}
	if ok, _ := (&Count{Expect: 3, Dedupe: true}).Discarding(); ok {
		t.Error("with dedupe: discarding")
	}
}
