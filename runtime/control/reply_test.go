package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The replies' JSON is a public format (`ztopo status --json`, `ps
// --json`, `reload --json`, scripts reading the control socket). These
// tests pin it field by field, in order: a change here must be deliberate.

func TestStatusReplyJSON(t *testing.T) {
	st := StatusReply{
		Name: "pipe", File: "pipe.yaml", PID: 42, State: "running",
		Started:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		UptimeSeconds: 1.5, GraceMS: 5000, Reloads: 1, ReloadsRejected: 2, ReloadsFailed: 3,
		Nodes: []InstanceStatus{
			{
				Name: "sink", Node: "sink", Run: "goroutine", State: "running", Restarts: 1,
				UptimeSeconds: 1.25, Error: "boom", MsgsIn: 10, MsgsOut: 0, ExpectIn: 100,
				RateIn: 2.5,
				Sockets: []SocketStatus{{
					Name: "in", Type: "PULL", Bind: []string{"tcp://*:5558"},
					MsgsIn: 10, BytesIn: 50, RateIn: 2.5,
					DropsUnseen: "why", Curve: "server", AuthFailures: 4,
				}},
			},
			// Zero values: what omitempty leaves out, and the empty
			// sockets list of a command node.
			{Name: "cmd", Node: "cmd", Run: "process", PID: 7, State: "starting", Sockets: []SocketStatus{}},
		},
	}
	want := `{"name":"pipe","file":"pipe.yaml","pid":42,"state":"running","started":"2026-01-02T03:04:05Z",` +
		`"uptime_seconds":1.5,"grace_ms":5000,"reloads":1,"reloads_rejected":2,"reloads_failed":3,"nodes":[` +
		`{"name":"sink","node":"sink","run":"goroutine","pid":0,"state":"running","restarts":1,"uptime_seconds":1.25,` +
		`"error":"boom","msgs_in":10,"msgs_out":0,"expect_in":100,"rate_in":2.5,"rate_out":0,"sockets":[` +
		`{"name":"in","type":"PULL","bind":["tcp://*:5558"],"msgs_in":10,"msgs_out":0,"bytes_in":50,"bytes_out":0,` +
		`"send_errors":0,"rate_in":2.5,"rate_out":0,"drops_unseen":"why","curve":"server","auth_failures":4}]},` +
		`{"name":"cmd","node":"cmd","run":"process","pid":7,"state":"starting","restarts":0,"uptime_seconds":0,` +
		`"msgs_in":0,"msgs_out":0,"rate_in":0,"rate_out":0,"sockets":[]}]}`
	checkJSON(t, st, want)

	// On the wire, "ok" joins the fields; a client decodes the same type.
	wire := encodeReply(st, nil)
	var back StatusReply
	if err := json.Unmarshal(wire, &back); err != nil {
		t.Fatal(err)
	}
	checkJSON(t, back, want)
}

func TestReloadReplyJSON(t *testing.T) {
	rel := ReloadReply{
		Result: ReloadApplied, File: "pipe.yaml", DurationMS: 1.5,
		Diagnostics: []string{"pipe.yaml:3:5: warning: x"},
		Plan: &Plan{
			Start: []string{"worker.3"}, Stop: []string{}, Restart: []string{"sink"},
			Swap:  []PlanSwap{{Node: "worker.0", From: "echo", To: "upper"}},
			Allow: []string{}, Unchanged: []string{"gen"},
			Changes: map[string]PlanChange{
				"sink":     {Reason: "why", Fields: []string{"sockets.in.bind: a → b"}},
				"worker.0": {Fields: []string{}},
			},
		},
	}
	checkJSON(t, rel, `{"result":"applied","file":"pipe.yaml","plan":{"start":["worker.3"],"stop":[],"restart":["sink"],`+
		`"swap":[{"node":"worker.0","from":"echo","to":"upper"}],"allow":[],"unchanged":["gen"],`+
		`"changes":{"sink":{"reason":"why","fields":["sockets.in.bind: a → b"]},"worker.0":{"fields":[]}}},`+
		`"diagnostics":["pipe.yaml:3:5: warning: x"],"duration_ms":1.5}`)
	checkJSON(t, ReloadReply{Result: ReloadRejected, File: "pipe.yaml"}, `{"result":"rejected","file":"pipe.yaml","duration_ms":0}`)

	// A reply with an error carries both; a nil reply carries no fields.
	if got, want := string(encodeReply(&ReloadReply{Result: ReloadFailed}, errors.New("boom"))),
		`{"duration_ms":0,"error":"boom","file":"","ok":false,"result":"failed"}`; got != want {
		t.Errorf("reply with an error:\ngot  %s\nwant %s", got, want)
	}
	var none *ReloadReply
	if got, want := string(encodeReply(none, errors.New("stopping"))), `{"error":"stopping","ok":false}`; got != want {
		t.Errorf("nil reply:\ngot  %s\nwant %s", got, want)
	}
}

func TestPingReplyJSON(t *testing.T) {
	checkJSON(t, PingReply{Pid: 9, Name: "pipe"}, `{"pid":9,"name":"pipe"}`)
	checkJSON(t, PingReply{Pid: 9}, `{"pid":9}`)
}

func checkJSON(t *testing.T, v any, want string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("JSON of %T:\ngot  %s\nwant %s", v, b, want)
	}
}

func TestStatusNames(t *testing.T) {
	st := StatusReply{Nodes: []InstanceStatus{
		{Name: "sink", Node: "sink"}, {Name: "worker.0", Node: "worker"}, {Name: "worker.1", Node: "worker"},
	}}
	if got, want := fmt.Sprint(st.Names()), "[sink worker.0 worker worker.1]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
