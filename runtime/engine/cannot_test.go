package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

// Issue 12 item 4: a port another program holds at start fails the node at
// once — no bind retry, no restart with backoff — and the run stops with
// an error naming node, socket and endpoint.
func TestStartFailsAtOnceOnTakenPort(t *testing.T) {
	taken, _ := rlTaken(t)
	lg, logs := newLogger(t)
	yaml := fmt.Sprintf(`version: 1
name: loss-taken
nodes:
  echo:
    handler: echo
    sockets:
      rep: {type: REP, bind: "%s"}
  svc:
    handler: echo
    sockets:
      in: {type: REP, bind: "%s"}
`, zsocktest.TCP(t), taken)
	r := rlStart(t, rlParse(t, rlDir(t), yaml, nil), Options{Logger: lg})
	err := r.wait(t)
	want := fmt.Sprintf(`node "svc" failed: socket "in": bind %s: address already in use (another program holds this endpoint)`, taken)
	if err == nil || err.Error() != want {
		t.Fatalf("Run: got %v, want %s", err, want)
	}
	if st := statusOf(r.e, "svc"); st.State != StateFailed || st.Restarts != 0 {
		t.Errorf("svc: %s after %d restarts, want failed after 0", st.State, st.Restarts)
	}
	for _, line := range []string{`stopping topology: reason="node svc cannot start"`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %q", line)
		}
	}
	if strings.Contains(logs.String(), "restarting node") {
		t.Errorf("a node was restarted:\n%s", logs)
	}
}

// failingProducer completes normally, but fails (fatally) every time.
type failingProducer struct{}

func (failingProducer) Completes() bool { return true }
func (failingProducer) Run(context.Context, handler.Sockets) error {
	return fmt.Errorf("no data source: %w", handler.ErrFatal)
}

// Issue 12 item 1: the producer of a batch fails for good; the sink would
// wait for ever. up stops at once and says why.
func TestFailedCompletingNodeStopsBatch(t *testing.T) {
	reg := handler.Builtins.Clone()
	reg.Register("failingproducer", func(map[string]any, handler.Env) (any, error) { return failingProducer{}, nil })
	ep := zsocktest.TCP(t)
	restart := spec.Restart{Policy: spec.RestartOnFailure, MaxRestarts: 1, Within: time.Minute,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}
	producer := builtinNode("producer", "failingproducer", nil, sock("out", spec.PUSH, nil, list(ep)))
	sink := builtinNode("sink", "count", map[string]any{"expect": 100}, sock("in", spec.PULL, list(ep), nil))
	producer.Restart, sink.Restart = restart, restart
	lg, logs := newLogger(t)
	_, err := runTopo(t, &spec.Topology{Name: "loss-batch", Nodes: []*spec.Node{producer, sink}}, Options{Logger: lg, Registry: reg})
	if err == nil || !strings.Contains(err.Error(), `node "producer" failed: no data source: fatal handler error (restart limit reached: 1 restarts within 1m0s)`) {
		t.Fatalf("Run: got %v, want producer's failure", err)
	}
	if want := `stopping topology: reason="node producer failed for good; the topology cannot complete"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q", want)
	}
}
