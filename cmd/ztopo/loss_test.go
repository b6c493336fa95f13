package main

import (
	"fmt"
	"regexp"
	"syscall"
	"testing"

	"github.com/ztopo/ztopo/internal/testutil"
)

// TestUpSIGINTLossExitStatus: a drain cut short by its grace exits with 3
// and logs what was lost (issue 11 item 2). slow needs 10 x 300 ms; the
// grace is 500 ms.
func TestUpSIGINTLossExitStatus(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	file := d.write(t, "slow.yaml", testutil.SlowPipeline("e2elosscut", "{count: 10}", "300ms", "handler: log", d.ipc("src.sock"), d.ipc("sink.sock"), d.ipc("sync.sock")))
	up := startUp(t, bin, d, "--no-watch", "--grace", "500ms", file)
	sinkLine := regexp.MustCompile(`(sink +\| message:|message: node=sink)`)
	up.waitLog(sinkLine)
	up.signal(syscall.SIGINT)
	if code := up.exitCode(e2eBound); code != 3 {
		t.Fatalf("exit status: got %d, want 3", code)
	}
	log := up.log()
	delivered := len(sinkLine.FindAllString(log, -1))
	m := regexp.MustCompile(`topology stopped with messages lost: lost=(\d+) drain_cut_short=true`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no loss summary in the log:\n%s", log)
	}
	if want := fmt.Sprint(10 - delivered); m[1] != want {
		t.Errorf("lost: got %s, want %s (10 sent, %d delivered)", m[1], want, delivered)
	}
}
