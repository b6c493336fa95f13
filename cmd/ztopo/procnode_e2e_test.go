package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ztopo/ztopo/internal/testutil"
	"github.com/ztopo/ztopo/runtime/control"
)

// TestUpCrashLossExitStatus: a process worker SIGKILLed while its queue is
// full leaves the batch unable to complete; `up` ends by itself with exit
// status 3, after one line counting exactly what the sink did not get
// (issue 11 item 3).
func TestUpCrashLossExitStatus(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	const n = 6000
	file := d.write(t, "crash.yaml", testutil.ProcessWorkers("e2ecrashloss", 3, fmt.Sprintf("{count: %d}", n), "{delay: 1ms}", fmt.Sprintf("{expect: %d}", n), ""))
	up := startUp(t, bin, d, "--no-watch", "--grace", "2s", file)
	var victim control.InstanceStatus
	up.waitStatus(d.topologyRuntime("e2ecrashloss"), func(st control.StatusReply) bool {
		for _, in := range st.Nodes {
			if in.Node == "worker" && in.PID > 0 && in.MsgsOut > 0 {
				victim = in
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := up.exitCode(2 * time.Minute); code != 3 {
		t.Fatalf("exit status: got %d, want 3", code)
	}
	log := up.log()
	m := regexp.MustCompile(`received (\d+) messages in`).FindStringSubmatch(log)
	if m == nil {
		t.Fatal("no count line from the sink")
	}
	got, _ := strconv.Atoi(m[1])
	if got >= n {
		t.Fatalf("sink got %d of %d: the crash lost nothing, the test proves nothing", got, n)
	}
	for _, re := range []string{
		fmt.Sprintf(`messages lost when a node crashed: crashed=%s count=%d `, regexp.QuoteMeta(victim.Name), n-got),
		fmt.Sprintf(`topology stopped with messages lost: lost=%d `, n-got),
	} {
		if c := len(regexp.MustCompile(re).FindAllString(log, -1)); c != 1 {
			t.Errorf("%q: %d lines, want 1", re, c)
		}
	}
}

// TestUpPsShowsStalledWorker SIGSTOPs one of three process workers under
// traffic: `ztopo ps --json` shows it stalled, and running again after
// SIGCONT (issue 11 item 6).
func TestUpPsShowsStalledWorker(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	file := d.write(t, "stall.yaml", testutil.ProcessWorkers("e2estall", 3, "{interval: 2ms}", "", "", ""))
	up := startUp(t, bin, d, "--no-watch", file)
	rt := d.topologyRuntime("e2estall")
	st := up.waitStatus(rt, allRunning)
	var victim int
	for _, in := range st.Nodes {
		if in.Name == "worker.1" {
			victim = in.PID
		}
	}
	if victim <= 0 {
		t.Fatalf("worker.1 has no pid: %+v", st.Nodes)
	}
	thaw := testutil.Freeze(t, victim)
	ps := func() map[string]string {
		cmd := exec.Command(bin, "ps", "--json", "e2estall")
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+d.runtime)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ztopo ps --json: %v", err)
		}
		var rows []control.InstanceStatus
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("ztopo ps --json: %v\n%s", err, out)
		}
		states := map[string]string{}
		for _, r := range rows {
			states[r.Name] = r.State
		}
		return states
	}
	up.waitStatus(rt, func(st control.StatusReply) bool {
		for _, in := range st.Nodes {
			if in.Name == "worker.1" {
				return in.State == "stalled"
			}
		}
		return false
	})
	states := ps()
	if states["worker.1"] != "stalled" || states["worker.0"] != "running" || states["worker.2"] != "running" {
		t.Errorf("ps --json while worker.1 is stopped: %v, want worker.1 stalled, the others running", states)
	}
	thaw()
	up.waitStatus(rt, allRunning)
	if s := ps()["worker.1"]; s != "running" {
		t.Errorf("ps --json after SIGCONT: worker.1 %s, want running", s)
	}
	up.signal(syscall.SIGINT)
	if code := up.exitCode(e2eBound); code != 0 {
		t.Errorf("exit status: got %d, want 0", code)
	}
	log := up.log()
	for _, re := range []string{`node stalled: messages routed to it wait`, `node runs again after a stall`} {
		if c := len(regexp.MustCompile(re).FindAllString(log, -1)); c != 1 {
			t.Errorf("%q: %d lines, want 1", re, c)
		}
	}
}
