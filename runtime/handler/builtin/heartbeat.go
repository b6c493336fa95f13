package builtin

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ztopo/ztopo/runtime/handler"
	"github.com/ztopo/ztopo/spec"
)

// What the heartbeating brokers (ppqueue, mdbroker) share: their config,
// when they heartbeat their idle workers, and how long a worker may stay
// silent. What a heartbeat is, and what a silent worker costs, is theirs.

// registerHeartbeating registers a heartbeating broker whose config is
// heartbeat (the interval, def by default) and liveness (the heartbeats a
// worker may miss before it is gone, the word its log uses); build makes
// it with them and the node's logger.
func registerHeartbeating(s spec.HandlerSchema, def time.Duration, gone string, build func(hb time.Duration, liveness int, lg hclog.Logger) any) {
	s.Keys = []spec.ConfigKey{
		{Name: "heartbeat", Kind: spec.KindDuration, Doc: fmt.Sprintf("interval of heartbeats to idle workers (%s, the zguide's)", def)},
		{Name: "liveness", Kind: spec.KindInt, Doc: fmt.Sprintf("heartbeats a worker may miss before it is %s (%d)", gone, spec.DefaultLiveness)},
	}
	register(s, func(cfg map[string]any, env handler.Env) (any, error) {
		c := newConfig(s.Name, cfg)
		hb, liveness := c.duration("heartbeat"), c.int("liveness", spec.DefaultLiveness)
		if hb <= 0 {
			hb = def
		}
		if liveness <= 0 {
			liveness = spec.DefaultLiveness
		}
		return build(hb, liveness, logger(env)), c.err()
	})
}

// silentFor is how long a worker may stay silent before it is gone:
// liveness heartbeats of hb.
func silentFor(hb time.Duration, liveness int) time.Duration {
	return hb * time.Duration(liveness)
}

// pulse is when a broker next heartbeats its idle workers: every interval,
// counted from when the last heartbeat went out.
type pulse struct {
	every time.Duration
	next  time.Time
}

// newPulse starts a pulse: the first heartbeat is due every from now.
func newPulse(every time.Duration) *pulse {
	return &pulse{every: every, next: time.Now().Add(every)}
}

// wait is how long a broker may wait before the next heartbeat is due.
func (p *pulse) wait() time.Duration { return max(time.Until(p.next), 0) }

// due reports whether the heartbeat is due at now, and if it is, counts
// the next from now: the caller heartbeats its workers.
func (p *pulse) due(now time.Time) bool {
	if now.Before(p.next) {
		return false
	}
	p.next = now.Add(p.every)
	return true
}
