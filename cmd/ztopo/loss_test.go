package main

import (
	"fmt"
	"regexp"
	"syscall"
	"testing"
)

// TestUpSIGINTLossExitStatus: a drain cut short by its grace exits with 3
// and logs what was lost (issue 11 item 2). slow needs 10 x 300 ms; the
// grace is 500 ms.
func TestUpSIGINTLossExitStatus(t *testing.T) {
	bin := buildZtopo(t)
	d := newE2EDir(t)
	file := d.write(t, "slow.yaml", fmt.Sprintf(`version: 1
name: e2elosscut
nodes:
  src:
    handler: generate
    config: {count: 10}
    sync: {expect: 1, bind: ipc://%s/sync.sock}
    sockets:
      out: {type: PUSH, bind: ipc://%s/src.sock}
  slow:
    handler: forward
    config: {delay: 300ms}
    sync: {connect: src}
    sockets:
      in: {type: PULL, connect: src.out}
      out: {type: PUSH, connect: sink.in}
  sink:
    handler: log
    sockets:
      in: {type: PULL, bind: ipc://%s/sink.sock}
`, d.root, d.root, d.root))
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
