package spec

import (
	"fmt"
	"strings"
)

// checkSyncBarriers reports a sync barrier that cannot be passed: `sync:
// {expect: N}` with fewer than N possible peers in the topology hangs at
// "waiting for sync peers" for ever (issue 12 item 2). Peers in the
// topology are the instances that sync-connect to the node and the sockets
// that connect to its sync endpoint. When the barrier's endpoint is one an
// outside program could reach (a literal tcp or ipc endpoint), the missing
// peers may come from there: a warning. `bind: auto` and inproc are
// private to the topology: an error.
func (r *resolver) checkSyncBarriers(links []link) {
	peers := map[*inst]int{}
	for _, l := range links {
		if l.toSync && l.to != nil {
			peers[l.to]++
		}
	}
	for _, in := range r.insts {
		sy := in.n.Sync
		if sy == nil || sy.Expect < 1 || sy.Bind == "" || in.fn.Sync == nil || in.fn.Sync.Expect == nil {
			continue
		}
		have := peers[in]
		if have >= sy.Expect {
			continue
		}
		pos := in.fn.Sync.Expect.Pos
		private := in.sync != nil && in.sync.bindAuto || strings.HasPrefix(sy.Bind, "inproc://")
		if private {
			hint := fmt.Sprintf("lower expect to %d", have)
			if have == 0 {
				hint = fmt.Sprintf("give the subscribers sync: {connect: %s}", in.n.Base)
			}
			r.errorf(pos, hint+", or bind the barrier on an endpoint outside peers can reach",
				"sync of node %q expects %s, but only %d in the topology sync with it and its endpoint is private to the topology: its handler would never start",
				in.n.Base, peersText(sy.Expect), have)
			continue
		}
		r.warnf(pos, "outside clients: a REQ that connects to it, sends, and receives the reply",
			"sync of node %q expects %s, but only %d in the topology sync with it: its handler waits until %d more connect to %s from outside",
			in.n.Name, peersText(sy.Expect), have, sy.Expect-have, sy.Bind)
	}
}

func peersText(n int) string {
	if n == 1 {
		return "1 peer"
	}
	return fmt.Sprintf("%d peers", n)
}
