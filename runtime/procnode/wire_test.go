package procnode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/spec"
)

func TestSpecRoundTrip(t *testing.T) {
	tp := &spec.Topology{Version: 1, Name: "pipe", File: "/t/pipe.yaml", Dir: "/t", RuntimeDir: "/run/zt/pipe"}
	n := &spec.Node{
		Name: "worker.2", Base: "worker", Replica: 2, Replicas: 4,
		Pos:     spec.Pos{File: "/t/pipe.yaml", Line: 12, Col: 3},
		Handler: spec.HandlerRef{Kind: spec.HandlerExec, Argv: []string{"/bin/tr", "a-z", "A-Z"}, Codec: "lines"},
		Config: map[string]any{
			"count": 42, "rate": 1.0000000000000002, "name": "x", "on": true, "delay": 250 * time.Millisecond,
			"topics": []string{"a", ""}, "none": []string(nil), "nil": nil,
			"nested": map[string]any{"l": []any{1, "two", 3.5, map[string]any{}}, "d": time.Second},
		},
		Run:     spec.RunProcess,
		Restart: spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 5, Within: time.Minute, BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second},
		Sockets: []*spec.Socket{
			{Name: "in", Type: spec.SUB, Role: spec.RoleIn, Connect: []string{"ipc:///run/zt/pipe/a"}, Peers: []string{"a.out"}, Subscribe: []string{""},
				Options: []spec.Option{{Name: "linger", Value: 0}, {Name: "routing_id", Value: "w-2"}}, Pos: spec.Pos{Line: 14, Col: 7}},
			{Name: "out", Type: spec.PUSH, Role: spec.RoleOut, Bind: []string{"tcp://127.0.0.1:5555"}, Identity: "id"},
		},
		Sync: &spec.Sync{Connect: "tcp://127.0.0.1:5600", ConnectNode: "sink"},
	}
	js, err := encodeSpec(tp, n, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gotT, gotN, drain, err := decodeSpec(js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotN, n) {
		t.Errorf("node:\ngot  %#v\nwant %#v", gotN, n)
	}
	wantT := *tp
	wantT.Nodes = []*spec.Node{gotN}
	if !reflect.DeepEqual(gotT, &wantT) {
		t.Errorf("topology: got %#v, want %#v", gotT, &wantT)
	}
	if drain != 3*time.Second {
		t.Errorf("drain: got %v, want 3s", drain)
	}
	// Encoding copies: the caller's node is left as it was.
	if _, ok := n.Config["count"].(int); !ok {
		t.Errorf("encodeSpec changed the caller's config: %#v", n.Config["count"])
	}
}

func TestSpecErrors(t *testing.T) {
	n := &spec.Node{Name: "a", Config: map[string]any{"bad": struct{}{}}}
	if _, err := encodeSpec(&spec.Topology{}, n, 0); err == nil || err.Error() != `config "bad": cannot pass a value of type struct {} to a child process` {
		t.Errorf("encode: got %v", err)
	}
	n.Config = map[string]any{"big": strings.Repeat("x", maxSpecBytes)}
	if _, err := encodeSpec(&spec.Topology{}, n, 0); err == nil || !strings.Contains(err.Error(), "make its config smaller") {
		t.Errorf("encode of a huge config: got %v", err)
	}
	for _, tc := range []struct{ name, js, want string }{
		{"version", `{"version":2,"node":{}}`, "node spec: version 2, this ztopo reads version 1 (was the binary replaced while running?)"},
		{"no node", `{"version":1}`, "node spec: no node"},
		{"untagged", `{"version":1,"node":{"Config":{"k":5}}}`, `node spec: config "k": malformed value 5`},
		{"unknown field", `{"version":1,"nodes":[]}`, `node spec: json: unknown field "nodes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := decodeSpec(tc.js); err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestSocketEnv(t *testing.T) {
	for _, tc := range []struct{ socket, kind, want string }{
		{"in", "BIND", "ZTOPO_IN_BIND"},
		{"out-2", "CONNECT", "ZTOPO_OUT_2_CONNECT"},
		{"Front.End", "BIND", "ZTOPO_FRONT_END_BIND"},
		{"größe", "BIND", "ZTOPO_GR__E_BIND"},
	} {
		if got := SocketEnv(tc.socket, tc.kind); got != tc.want {
			t.Errorf("SocketEnv(%q, %q): got %s, want %s", tc.socket, tc.kind, got, tc.want)
		}
	}
}

func TestChildEntriesAreLoggedAgain(t *testing.T) {
	// The child's side: a JSON logger writing onto the pipe, with a
	// duration and a sub-logger.
	var pipe bytes.Buffer
	lw := &lineWriter{w: &pipe}
	child := childLogger{hclog.New(&hclog.LoggerOptions{Output: lw, JSONFormat: true, Level: hclog.Debug, DisableTime: true})}
	child.Info("received 3 messages", "count", 3, "elapsed", 9*time.Microsecond, "what", "two words")
	child.Named("exec").With("took", 2*time.Second).Warn("slow plugin")
	child.Debug("dropped by the parent's level")
	lw.send(event{Event: eventRunning})
	pipe.WriteString("not json\n")

	// The parent's side: a text logger at info.
	var out bytes.Buffer
	parent := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info, DisableTime: true}).Named("node").With("node", "w.1")
	var events []string
	sink := &eventSink{log: parent, onEvent: func(ev event) { events = append(events, ev.Event) }}
	sink.read(&pipe)

	// The same lines as a goroutine node logging in-process would write
	// (durations included), plus the complaint about the stray line.
	var direct bytes.Buffer
	inproc := hclog.New(&hclog.LoggerOptions{Output: &direct, Level: hclog.Info, DisableTime: true}).Named("node").With("node", "w.1")
	inproc.Info("received 3 messages", "count", 3, "elapsed", 9*time.Microsecond, "what", "two words")
	inproc.Named("exec").With("took", 2*time.Second).Warn("slow plugin")
	want := direct.String() + `[WARN]  node: unreadable line on the event pipe: node=w.1 line="not json"` + "\n"
	if !strings.Contains(want, "took=2s") {
		t.Fatalf("reference output lacks the duration: %s", want)
	}
	if out.String() != want {
		t.Errorf("parent log:\ngot\n%s\nwant\n%s", out.String(), want)
	}
	if strings.Join(events, ",") != "running" {
		t.Errorf("events: got %q, want running", events)
	}
}

func TestReadLineDropsOverlongLines(t *testing.T) {
	in := strings.Repeat("x", maxEventLine+10) + "\n" + `{"event":"completed"}` + "\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 64<<10)
	first, err := readLine(br)
	if err != nil || first != nil {
		t.Fatalf("overlong line: got %d bytes, %v; want nil, nil", len(first), err)
	}
	second, err := readLine(br)
	if err != nil || string(second) != `{"event":"completed"}` {
		t.Fatalf("next line: got %q, %v", second, err)
	}
	var ev event
	if err := json.Unmarshal(second, &ev); err != nil || ev.Event != eventCompleted {
		t.Errorf("event: got %+v, %v", ev, err)
	}
}
