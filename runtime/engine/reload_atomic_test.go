package engine

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ztopo/ztopo/runtime/zsock/zsocktest"
	"github.com/ztopo/ztopo/spec"
)

const genSinkYAML = `version: 1
name: loss-atomic
nodes:
  gen:
    handler: generate
    config: {interval: 2ms}
    sockets:
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: count
    sockets:
      in: {type: PULL, bind: "${SINK}"}
`

// Issue 11 item 4: a reload that moves sink to a taken port fails, and
// both nodes — the one that failed and its peer, which the same reload
// restarted onto the new endpoint — are back on their previous definitions:
// traffic flows again from gen to sink on the old endpoint.
func TestApplyFailureRollsBackEveryNode(t *testing.T) {
	dir := rlDir(t)
	vars := map[string]string{"SINK": zsocktest.TCP(t)}
	taken, _ := rlTaken(t)
	lg, logs := newLogger(t)
	r := rlStart(t, rlParse(t, dir, genSinkYAML, vars), Options{Logger: lg})
	rlWaitFor(t, "traffic", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= 10 })

	rep, err := rlApply(t, r.e, rlParse(t, dir, genSinkYAML, rlVars(vars, "SINK", taken)))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Apply: got %v, want a bind failure", err)
	}
	rlPlan(t, rep.Plan, spec.Plan{Changed: []string{"gen", "sink"}})
	if !reflect.DeepEqual(rep.RolledBack, []string{"gen", "sink"}) {
		t.Errorf("RolledBack: got %v, want [gen sink]", rep.RolledBack)
	}
	topo := r.e.Topology()
	if got := topo.Node("sink").Socket("in").Bind; !reflect.DeepEqual(got, []string{vars["SINK"]}) {
		t.Errorf("engine topology: sink binds %v, want %s", got, vars["SINK"])
	}
	if got := topo.Node("gen").Socket("out").Connect; !reflect.DeepEqual(got, []string{vars["SINK"]}) {
		t.Errorf("engine topology: gen connects to %v, want %s", got, vars["SINK"])
	}
	for _, name := range []string{"gen", "sink"} {
		if st := statusOf(r.e, name); st.State != StateRunning {
			t.Errorf("%s: %s, want running", name, st.State)
		}
	}
	// The rolled-back sink counts afresh: traffic reaches it again.
	rlWaitFor(t, "traffic after the rollback", func() bool { return rlStat(r.e, "sink", "in").MsgsIn >= 10 })
	for _, line := range []string{"rolling back node: node=gen", "rolling back node: node=sink", "reload rolled back: rolled_back=2"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %q", line)
		}
	}
}
