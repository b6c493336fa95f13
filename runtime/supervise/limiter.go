// Package supervise decides when a node instance is restarted (Limiter) and
// runs child processes (Process): node instances, and the processes behind
// exec and plugin handlers, which talk over the child's stdin and stdout.
//
// A Limiter is pure bookkeeping over a resolved spec.Restart: the engine
// reports each end of an instance and gets back whether to restart it and
// after which delay. A Process is one child: its output goes to the log line
// by line, it dies with ztopo (parent-death signal), and stopping it signals
// its whole process group, SIGTERM first and SIGKILL after a grace period.
package supervise

import (
	"time"

	"github.com/ztopo/ztopo/spec"
)

// MinBackoff is the least delay before any restart, whatever the policy
// says: at most 20 restarts a second of one instance.
const MinBackoff = 50 * time.Millisecond

// Limiter applies a restart policy to the successive runs of one node
// instance. It is not safe for concurrent use: the goroutine that supervises
// the instance owns it.
//
// The rules:
//   - policy "no" never restarts, "on-failure" restarts only a run that
//     failed, "always" restarts every run that ended;
//   - at most MaxRestarts restarts are granted within any sliding window of
//     Within (Within <= 0: over the limiter's whole life); the restart that
//     would exceed the limit is refused and the limiter is exhausted for good
//     — the node is failed, and Next refuses from then on;
//   - the delay before a restart starts at BackoffMin and doubles with each
//     restart of a streak, capped at BackoffMax; neither is taken below
//     MinBackoff, so that `backoff_min: 0` cannot make a crash loop spin a
//     core (it made 4,350 restarts in 15 s);
//   - a healthy run ends the streak: a run that lasted at least Within (or at
//     least BackoffMax when Within <= 0) is followed by a BackoffMin delay
//     again. Within is the natural threshold: after such a run every earlier
//     restart has also left the window, so the node is as fresh as at start.
//
// A run is taken to start when the previous restart's delay has passed
// (the time of the Next call plus the delay it returned); the first run's
// length is unknown and does not matter, since its backoff is the minimum.
type Limiter struct {
	r         spec.Restart
	restarts  []time.Time // times of granted restarts still inside the window
	total     int
	streak    int       // restarts since the last healthy run
	runStart  time.Time // when the current run began, zero for the first run
	exhausted bool
}

// NewLimiter returns a limiter for r; r is used as resolved (defaults
// applied by spec), with an empty policy taken as "no".
func NewLimiter(r spec.Restart) *Limiter {
	return &Limiter{r: r}
}

// Next is called when a run of the instance ended at now, failed telling
// whether it ended in failure (a non-zero exit, a panic, a fatal handler
// error). It returns whether to restart the instance and the delay to wait
// before starting it again.
func (l *Limiter) Next(failed bool, now time.Time) (restart bool, delay time.Duration) {
	if l.exhausted {
		return false, 0
	}
	switch l.r.Policy {
	case spec.RestartAlways:
	case spec.RestartOnFailure:
		if !failed {
			return false, 0
		}
	default:
		return false, 0
	}

	if !l.runStart.IsZero() && now.Sub(l.runStart) >= l.healthyRun() {
		l.streak = 0
	}

	if l.r.Within > 0 {
		// Drop the restarts that have slid out of the window.
		cutoff := now.Add(-l.r.Within)
		keep := l.restarts[:0]
		for _, t := range l.restarts {
			if t.After(cutoff) {
				keep = append(keep, t)
			}
		}
		l.restarts = keep
	}
	if len(l.restarts) >= l.r.MaxRestarts {
		l.exhausted = true
		return false, 0
	}

	delay = l.backoff(l.streak)
	l.streak++
	l.total++
	l.restarts = append(l.restarts, now)
	l.runStart = now.Add(delay)
	return true, delay
}

// Restarts is the number of restarts granted so far.
func (l *Limiter) Restarts() int { return l.total }

// Exhausted reports whether the limiter refused a restart because the
// instance had used up MaxRestarts within Within: the node is failed for
// good. A refusal by policy (a clean end under "on-failure", or "no") does
// not exhaust the limiter.
func (l *Limiter) Exhausted() bool { return l.exhausted }

// healthyRun is how long a run must last to reset the backoff.
func (l *Limiter) healthyRun() time.Duration {
	if l.r.Within > 0 {
		return l.r.Within
	}
	return l.r.BackoffMax
}

// backoff is BackoffMin (at least MinBackoff) doubled n times, capped at
// BackoffMax (or at that minimum if the maximum is set below it).
func (l *Limiter) backoff(n int) time.Duration {
	d, ceiling := max(l.r.BackoffMin, MinBackoff), l.r.BackoffMax
	if ceiling < d {
		ceiling = d
	}
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
	}
	if d > ceiling {
		d = ceiling
	}
	return d
}
