package main

import (
	"path/filepath"
	"strings"
)

// RuntimeDirLost is called by the control server after it recreated a
// runtime directory that was deleted under the running topology (by
// systemd-tmpfiles, say) and its own socket in it. The ipc endpoints that
// nodes bound there cannot be recreated from outside the nodes that own
// their sockets: the nodes keep their listeners, but a peer that
// reconnects (a restarted process node) finds no file. Say which, loudly.
func (u *upRun) RuntimeDirLost(dir string) {
	t := u.topo.Load()
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
		u.log.Warn("runtime directory recreated; nothing but the control socket lived in it", "dir", dir)
		return
	}
	u.log.Error("runtime directory recreated, but these ipc endpoints in it are gone: peers that reconnect cannot reach them until their nodes restart (ztopo down and up again); keep the runtime directory out of reach of tmp cleaners (XDG_RUNTIME_DIR)",
		"dir", dir, "endpoints", strings.Join(lost, ", "))
}
