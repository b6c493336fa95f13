package procnode

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Stall detection. A child that is stopped (SIGSTOP, a debugger) or that
// stops reporting still holds the messages libzmq routes to it: a third of
// the traffic of three workers piles up in a SIGSTOPped one. The Runner
// watches each child while it runs and calls Config.OnStall when it stalls
// and when it runs again; each transition is logged once.
//
// A child is stalled when:
//   - its process is in the stopped state (T or t in /proc/PID/stat): a
//     command or a process node;
//   - a process node's child sent nothing on its event pipe (its counters
//     come every StatsInterval, from a goroutine of their own, whatever the
//     handler does) for StallAfter, once it had sent something.
//
// A handler that is stuck while the child's runtime is not (a goroutine
// deadlock) keeps reporting, and is not seen by this watch.

// StallAfter is how long a process node's child may stay silent on its
// event pipe before it counts as stalled: three missed reports.
const StallAfter = 3 * StatsInterval

// stallCheck is how often the watch looks.
const stallCheck = 250 * time.Millisecond

// heartbeat is the time of the last line a child sent, 0 before the first.
type heartbeat struct{ last atomic.Int64 }

func (h *heartbeat) beat() { h.last.Store(time.Now().UnixNano()) }

// watchStall watches the child pid until done is closed. hb is nil for a
// command, which has no event pipe. Once stopping returns true (ztopo
// asked the child to stop) its silence means nothing: a child that has
// closed its sockets stops reporting while its ZeroMQ context ends.
func (r *Runner) watchStall(pid int, hb *heartbeat, done <-chan struct{}, stopping func() bool) {
	t := time.NewTicker(stallCheck)
	defer t.Stop()
	var since time.Time // when the current stall began; zero when none
	for {
		select {
		case <-done:
			if !since.IsZero() && r.cfg.OnStall != nil {
				r.cfg.OnStall(false, "")
			}
			return
		case <-t.C:
		}
		why := ""
		if stopped(pid) {
			why = "the process is stopped (SIGSTOP or a debugger)"
		} else if hb != nil && !stopping() {
			if last := hb.last.Load(); last != 0 {
				if silent := time.Since(time.Unix(0, last)); silent >= StallAfter {
					why = fmt.Sprintf("no report from the child for %v (it reports every %v)", silent.Round(100*time.Millisecond), StatsInterval)
				}
			}
		}
		switch {
		case why != "" && since.IsZero():
			since = time.Now()
			r.log.Warn("node stalled: messages routed to it wait", "reason", why, "pid", pid)
			if r.cfg.OnStall != nil {
				r.cfg.OnStall(true, why)
			}
		case why == "" && !since.IsZero():
			r.log.Info("node runs again after a stall", "stalled_for", time.Since(since).Round(time.Millisecond), "pid", pid)
			since = time.Time{}
			if r.cfg.OnStall != nil {
				r.cfg.OnStall(false, "")
			}
		}
	}
}

// stopped tells whether pid is in the stopped state (job control or
// ptrace), from /proc/PID/stat.
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] == 'T' || s[i+2] == 't'
}
