package supervise

import (
	"testing"
	"time"

	"github.com/ztopo/ztopo/spec"
)

// step is one end of a run: at offset at from t0, failed or not, and what
// the limiter must answer.
type step struct {
	at      time.Duration
	failed  bool
	restart bool
	delay   time.Duration
}

func TestLimiter(t *testing.T) {
	ms := time.Millisecond
	def := spec.Restart{MaxRestarts: 5, Within: time.Minute, BackoffMin: 100 * ms, BackoffMax: 5 * time.Second}
	with := func(p spec.RestartPolicy, mod func(*spec.Restart)) spec.Restart {
		r := def
		r.Policy = p
		if mod != nil {
			mod(&r)
		}
		return r
	}
	cases := []struct {
		name      string
		r         spec.Restart
		steps     []step
		restarts  int
		exhausted bool
	}{
		{
			name:  "policy no never restarts",
			r:     with(spec.RestartNo, nil),
			steps: []step{{at: 0, failed: true}, {at: time.Second, failed: false}},
		},
		{
			name:  "empty policy is no",
			r:     with("", nil),
			steps: []step{{at: 0, failed: true}},
		},
		{
			name: "on-failure restarts failures only",
			r:    with(spec.RestartOnFailure, nil),
			steps: []step{
				{at: 0, failed: true, restart: true, delay: 100 * ms},
				{at: time.Second, failed: false},
			},
			restarts: 1,
		},
		{
			name: "always restarts clean ends too",
			r:    with(spec.RestartAlways, nil),
			steps: []step{
				{at: 0, failed: false, restart: true, delay: 100 * ms},
				{at: time.Second, failed: true, restart: true, delay: 200 * ms},
			},
			restarts: 2,
		},
		{
			name: "limit reached fails for good",
			r:    with(spec.RestartAlways, func(r *spec.Restart) { r.MaxRestarts = 3 }),
			steps: []step{
				{at: 0, failed: true, restart: true, delay: 100 * ms},
				{at: 1 * time.Second, failed: true, restart: true, delay: 200 * ms},
				{at: 2 * time.Second, failed: true, restart: true, delay: 400 * ms},
				{at: 3 * time.Second, failed: true},
				// Exhausted is final, even once the window has passed.
				{at: 10 * time.Minute, failed: true},
			},
			restarts:  3,
			exhausted: true,
		},
		{
			name: "max_restarts 0 fails at the first end",
			r:    with(spec.RestartOnFailure, func(r *spec.Restart) { r.MaxRestarts = 0 }),
			steps: []step{
				{at: 0, failed: true},
			},
			exhausted: true,
		},
		{
			name: "clean end under on-failure does not exhaust",
			r:    with(spec.RestartOnFailure, func(r *spec.Restart) { r.MaxRestarts = 0 }),
			steps: []step{
				{at: 0, failed: false},
			},
		},
		{
			name: "window slides",
			r: with(spec.RestartOnFailure, func(r *spec.Restart) {
				r.MaxRestarts = 2
				r.Within = 10 * time.Second
			}),
			steps: []step{
				{at: 0, failed: true, restart: true, delay: 100 * ms},
				{at: 1 * time.Second, failed: true, restart: true, delay: 200 * ms},
				// The restart at 0 has left the window at 10.5 s; the run
				// since 1.2 s lasted 9.3 s, short of healthy: the streak goes on.
				{at: 10500 * ms, failed: true, restart: true, delay: 400 * ms},
				// Restarts at 1 s and 10.5 s are both inside (0.95 s, 10.95 s].
				{at: 10950 * ms, failed: true},
			},
			restarts:  3,
			exhausted: true,
		},
		{
			// Issue 11 item 8: backoff_min 0 must not spin a core.
			name: "backoff has a floor",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.MaxRestarts = 1000000
				r.Within = time.Second
				r.BackoffMin, r.BackoffMax = 0, 0
			}),
			steps: []step{
				{at: 0, restart: true, delay: MinBackoff},
				{at: 1 * ms, restart: true, delay: MinBackoff},
				{at: 2 * ms, restart: true, delay: MinBackoff},
			},
			restarts: 3,
		},
		{
			name: "a zero minimum doubles from the floor",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.BackoffMin = 0
			}),
			steps: []step{
				{at: 0, restart: true, delay: MinBackoff},
				{at: 1 * ms, restart: true, delay: 2 * MinBackoff},
				{at: 2 * ms, restart: true, delay: 4 * MinBackoff},
			},
			restarts: 3,
		},
		{
			name: "backoff doubles up to the max",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.MaxRestarts = 10
				r.BackoffMax = 500 * ms
			}),
			steps: []step{
				{at: 0, restart: true, delay: 100 * ms},
				{at: 1 * time.Second, restart: true, delay: 200 * ms},
				{at: 2 * time.Second, restart: true, delay: 400 * ms},
				{at: 3 * time.Second, restart: true, delay: 500 * ms},
				{at: 4 * time.Second, restart: true, delay: 500 * ms},
			},
			restarts: 5,
		},
		{
			name: "healthy run resets the backoff",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.Within = 10 * time.Second
			}),
			steps: []step{
				{at: 0, restart: true, delay: 100 * ms},
				{at: 1 * time.Second, restart: true, delay: 200 * ms},
				{at: 2 * time.Second, restart: true, delay: 400 * ms},
				// The run started at 2.4 s; 12.4 s is exactly Within later.
				{at: 12400 * ms, restart: true, delay: 100 * ms},
				{at: 13 * time.Second, restart: true, delay: 200 * ms},
			},
			restarts: 5,
		},
		{
			name: "run just short of healthy keeps the streak",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.Within = 10 * time.Second
			}),
			steps: []step{
				{at: 0, restart: true, delay: 100 * ms},
				{at: 10099 * ms, restart: true, delay: 200 * ms},
			},
			restarts: 2,
		},
		{
			name: "no window counts over the whole life",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.MaxRestarts = 2
				r.Within = 0
				r.BackoffMax = time.Second
			}),
			steps: []step{
				{at: 0, restart: true, delay: 100 * ms},
				// Ran for 1 h: healthy (>= BackoffMax), backoff back to min.
				{at: time.Hour, restart: true, delay: 100 * ms},
				{at: 2 * time.Hour},
			},
			restarts:  2,
			exhausted: true,
		},
		{
			name: "max below min caps at min",
			r: with(spec.RestartAlways, func(r *spec.Restart) {
				r.BackoffMin = time.Second
				r.BackoffMax = 10 * ms
			}),
			steps: []step{
				{at: 0, restart: true, delay: time.Second},
				{at: 3 * time.Second, restart: true, delay: time.Second},
			},
			restarts: 2,
		},
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(tc.r)
			for i, s := range tc.steps {
				restart, delay := l.Next(s.failed, t0.Add(s.at))
				if restart != s.restart || delay != s.delay {
					t.Fatalf("step %d (at %v): got restart=%v delay=%v, want restart=%v delay=%v",
						i, s.at, restart, delay, s.restart, s.delay)
				}
			}
			if got := l.Restarts(); got != tc.restarts {
				t.Errorf("Restarts: got %d, want %d", got, tc.restarts)
			}
			if got := l.Exhausted(); got != tc.exhausted {
				t.Errorf("Exhausted: got %v, want %v", got, tc.exhausted)
			}
		})
	}
}
