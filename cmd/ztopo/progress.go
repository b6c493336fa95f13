package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ztopo/ztopo/runtime/engine"
	"github.com/ztopo/ztopo/spec"
)

// expected returns what a node instance is to receive and send before it
// completes, 0 for unknown: a count sink's expect, a generate's count
// (issue 12 item 14: `ps` showed IN 100 for a sink stuck at 100 of 1000).
func expected(n *spec.Node) (in, out int) {
	if n == nil || n.Handler.Kind != spec.HandlerBuiltin {
		return 0, 0
	}
	switch n.Handler.Name {
	case "count":
		in, _ = n.Config["expect"].(int)
	case "generate":
		out, _ = n.Config["count"].(int)
	}
	return in, out
}

// progressText is "N" or "N/EXPECT".
func progressText(n uint64, expect int) string {
	if expect <= 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d/%d", n, expect)
}

// progressEvery is how often `up` logs the progress of the nodes that
// have something to complete, while a batch runs; the environment's
// ZTOPO_PROGRESS_INTERVAL (a Go duration) overrides it.
const progressEvery = 10 * time.Second

// logProgress logs, every progressEvery, one info line per running
// instance that has a count to reach and has not reached it: a long batch
// says where it is, and a stuck one shows that it is stuck.
func (u *upRun) logProgress(ctx context.Context, log hclog.Logger) {
	every := progressEvery
	if d, err := time.ParseDuration(os.Getenv("ZTOPO_PROGRESS_INTERVAL")); err == nil && d > 0 {
		every = d
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last := map[string]uint64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		topo := u.topo.Load()
		for _, in := range u.instances() {
			if in.State != engine.StateRunning {
				continue
			}
			ein, eout := expected(topo.Node(in.Name))
			var got uint64
			var want int
			var what string
			for _, so := range in.Sockets {
				if ein > 0 {
					got += so.MsgsIn
				} else {
					got += so.MsgsOut
				}
			}
			switch {
			case ein > 0:
				want, what = ein, "received"
			case eout > 0:
				want, what = eout, "sent"
			default:
				continue
			}
			if got >= uint64(want) {
				continue
			}
			args := []any{"node", in.Name, what, fmt.Sprintf("%d/%d", got, want), "percent", fmt.Sprintf("%.0f", 100*float64(got)/float64(want))}
			if prev, ok := last[in.Name]; ok && prev == got {
				args = append(args, "stalled", fmt.Sprintf("no progress for %s", every))
			}
			last[in.Name] = got
			log.Info("progress", args...)
		}
	}
}
