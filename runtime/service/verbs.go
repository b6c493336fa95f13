package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/engine"
)

// Restart is the control socket's restart: names are instances or nodes,
// every one known, else nothing is restarted.
func (s *Service) Restart(req control.RestartRequest) (control.RestartReply, error) {
	eng, err := s.engine()
	if err != nil {
		return control.RestartReply{}, err
	}
	insts := s.Instances()
	var all, candidates []string
	seen := map[string]bool{}
	for _, in := range insts {
		all = append(all, in.Name)
		for _, k := range []string{in.Name, in.Node} {
			if !seen[k] {
				seen[k] = true
				candidates = append(candidates, k)
			}
		}
	}
	pick := map[string]bool{}
	for _, n := range req.Names {
		if !seen[n] {
			return control.RestartReply{}, fmt.Errorf("topology %s has no node or instance %q%s", s.Name(), n, didYouMean(n, candidates))
		}
		for _, in := range insts {
			if in.Name == n || in.Node == n {
				pick[in.Name] = true
			}
		}
	}
	var names []string
	for _, n := range all {
		if pick[n] {
			names = append(names, n)
		}
	}
	s.log.Info("restart requested", "by", "ztopo restart", "instances", strings.Join(names, ","))
	if err := eng.Restart(names, "ztopo restart"); err != nil {
		return control.RestartReply{}, err
	}
	return control.RestartReply{Restarted: names}, nil
}

// RuntimeDirLost is called by the control server after it recreated a
// runtime directory that was deleted under the running topology (by
// systemd-tmpfiles, say) and its own socket in it. The ipc endpoints that
// nodes bound there cannot be recreated from outside the nodes that own
// their sockets: the nodes keep their listeners, but a peer that
// reconnects (a restarted process node) finds no file. Say which, loudly.
func (s *Service) RuntimeDirLost(dir string) {
	t := s.topo.Load()
	var lost []string
	for _, n := range t.Nodes {
		for _, s := range n.Sockets {
			for _, ep := range s.Bind {
				if p, ok := strings.CutPrefix(ep, "ipc://"); ok && filepath.Dir(p) == dir {
					lost = append(lost, n.Name+"."+s.Name+" "+ep)
				}
			}
		}
		if n.Sync != nil {
			if p, ok := strings.CutPrefix(n.Sync.Bind, "ipc://"); ok && filepath.Dir(p) == dir {
				lost = append(lost, n.Name+" sync "+n.Sync.Bind)
			}
		}
	}
	if len(lost) == 0 {
		s.log.Warn("runtime directory recreated; nothing but the control socket lived in it", "dir", dir)
		return
	}
	s.log.Error("runtime directory recreated, but these ipc endpoints in it are gone: peers that reconnect cannot reach them until their nodes restart (ztopo down and up again); keep the runtime directory out of reach of tmp cleaners (XDG_RUNTIME_DIR)",
		"dir", dir, "endpoints", strings.Join(lost, ", "))
}

// progressEvery is how often `up` logs the progress of the nodes that
// have something to complete, while a batch runs; the environment's
// ZTOPO_PROGRESS_INTERVAL (a Go duration) overrides it.
const progressEvery = 10 * time.Second

// RunProgress logs, every progressEvery until ctx is done, one info line
// per running instance that has a count to reach and has not reached it: a
// long batch says where it is, and a stuck one shows that it is stuck.
func (s *Service) RunProgress(ctx context.Context) {
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
		topo := s.topo.Load()
		for _, in := range s.Instances() {
			if in.State != engine.StateRunning {
				continue
			}
			ein, eout := Expected(topo.Node(in.Name))
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
			s.log.Info("progress", args...)
		}
	}
}
