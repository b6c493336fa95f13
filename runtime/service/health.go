package service

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/runtime/metrics"
)

// MetricsSnapshot is what /metrics serves.
func (s *Service) MetricsSnapshot() metrics.Snapshot {
	return metrics.Snapshot{
		Instances: s.Instances(),
		Reloads: metrics.Reloads{
			Applied:  s.reloads.applied.Load(),
			Rejected: s.reloads.rejected.Load(),
			Failed:   s.reloads.failed.Load(),
		},
	}
}

// Healthz answers 200 while `up` runs: a liveness probe restarts a pod
// whose ztopo is wedged, not one whose nodes are restarting.
func (s *Service) Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// Readyz answers 200 once every node instance of this share runs or
// completed, else 503 with one line per instance that does not, so that a
// readiness probe (and a person with curl) sees why.
func (s *Service) Readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if reasons := s.NotReady(); len(reasons) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, r := range reasons {
			fmt.Fprintln(w, r)
		}
		return
	}
	fmt.Fprintln(w, "ok")
}

// NotReady lists why the share is not ready; nil when it is.
func (s *Service) NotReady() []string {
	switch {
	case s.stopCtx.Err() != nil:
		return []string{"stopping: " + context.Cause(s.stopCtx).Error()}
	case s.eng.Load() == nil:
		return []string{"starting: the engine has not started yet"}
	}
	var out []string
	for _, in := range s.Instances() {
		if in.State == engine.StateRunning || in.State == engine.StateCompleted {
			continue
		}
		line := in.Name + ": " + string(in.State)
		if in.Error != "" {
			line += ": " + in.Error
		}
		out = append(out, line)
	}
	return out
}
