package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
)

// Issue 11 item 8: a plugin whose handshake fails at start fails its own
// node, under the node's restart policy; the unrelated nodes start, run
// and complete, instead of the whole run being refused.
func TestPluginHandshakeFailureFailsOnlyItsNode(t *testing.T) {
	dir := rlDir(t)
	plugin := filepath.Join(dir, "bad-plugin")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\necho giving up >&2\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lg, logs := newLogger(t)
	yaml := `version: 1
name: exec-handshake
nodes:
  bad:
    handler: {plugin: ./bad-plugin}
    restart: {policy: on-failure, max_restarts: 2, within: 1m, backoff_min: 10ms, backoff_max: 20ms}
    sockets:
      in: {type: PULL, bind: auto}
  gen:
    handler: generate
    config: {count: 50, payload: x}
    sockets:
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    config: {expect: 50}
    sockets:
      in: {type: PULL, bind: "` + zsocktest.TCP(t) + `"}
`
	r := rlStart(t, rlParse(t, dir, yaml, nil), Options{Logger: lg})
	err := r.wait(t)
	want := `node "bad" failed: plugin handshake failed: plugin exited before READY: exit status 4 (restart limit reached: 2 restarts within 1m0s)`
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
	r.wantSink(t, 50)
	if st := statusOf(r.e, "bad"); st.State != StateFailed || st.Restarts != 2 {
		t.Errorf("bad: %s after %d restarts, want failed after 2", st.State, st.Restarts)
	}
	if n := strings.Count(logs.String(), "handler did not start"); n != 3 {
		t.Errorf("got %d 'handler did not start' lines, want 3 (the start and 2 restarts)", n)
	}
}

// Issue 13 item 6: an exec child is restarted under its node's policy by
// the exec host; when the policy allows no more, the node is failed for
// good, not restarted again with a fresh allowance.
func TestExecChildRestartsUnderNodePolicy(t *testing.T) {
	lg, logs := newLogger(t)
	yaml := `version: 1
name: exec-policy
nodes:
  gen:
    handler: generate
    config: {interval: 10ms, payload: x}
    sockets:
      out: {type: PUSH, connect: filt.in}
  filt:
    handler: {exec: [sh, -c, "exit 1"]}
    restart: {policy: on-failure, max_restarts: 2, within: 1m, backoff_min: 10ms, backoff_max: 20ms}
    sockets:
      in: {type: PULL, bind: auto}
`
	r := rlStart(t, rlParse(t, rlDir(t), yaml, nil), Options{Logger: lg})
	testutil.WaitFor(t, "filt failed", func() bool { return statusOf(r.e, "filt").State == StateFailed })
	st := statusOf(r.e, "filt")
	want := "exec handler sh exited (exit status 1) after 2 restarts within 1m0s: fatal handler error: the node's restart policy allows no more restarts"
	if st.Restarts != 0 || st.Error != want {
		t.Errorf("filt: %d node restarts, error %q; want 0 and %q", st.Restarts, st.Error, want)
	}
	if strings.Contains(logs.String(), "restarting node") {
		t.Errorf("the node was restarted on top of its child's restarts:\n%s", logs)
	}
}
