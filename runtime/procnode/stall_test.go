package procnode

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztopo/ztopo/spec"
)

// TestSilentChildCountsAsStalled: a child that runs but sent nothing on
// its event pipe for StallAfter is stalled; its next line ends the stall.
func TestSilentChildCountsAsStalled(t *testing.T) {
	calls := make(chan string, 4)
	r := New(Config{
		Node: &spec.Node{Name: "w"},
		OnStall: func(stalled bool, why string) {
			if stalled {
				calls <- why
			} else {
				calls <- "recovered"
			}
		},
	})
	hb := &heartbeat{}
	hb.last.Store(time.Now().Add(-StallAfter).UnixNano())
	done := make(chan struct{})
	ended := make(chan struct{})
	// The test process itself: running, never in the stopped state.
	go func() { defer close(ended); r.watchStall(os.Getpid(), hb, done, func() bool { return false }) }()
	next := func() string {
		select {
		case c := <-calls:
			return c
		case <-time.After(time.Minute):
			t.Fatal("no OnStall call within a minute")
			return ""
		}
	}
	if why := next(); !strings.HasPrefix(why, "no report from the child for ") {
		t.Fatalf("OnStall(true): why %q", why)
	}
	hb.beat()
	if got := next(); got != "recovered" {
		t.Fatalf("after a beat: got %q, want recovered", got)
	}
	close(done)
	<-ended
	select {
	case c := <-calls:
		t.Errorf("OnStall called again after the end: %q", c)
	default:
	}
}
