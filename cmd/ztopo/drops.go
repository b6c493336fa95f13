package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/spec"
)

// dropsUnseen says why the messages a socket drops cannot be counted, or ""
// when libzmq reports them (as send errors, in SEND ERRORS). libzmq has no
// counter of its own drops: a PUB (or XPUB without xpub_nodrop) discards
// what a subscriber cannot take beyond the high-water mark, and a ROUTER
// without router_mandatory discards what is addressed to a peer it does
// not know, both without an error (issue 12 item 9).
func dropsUnseen(so *spec.Socket) string {
	opt := func(name string) bool {
		for _, o := range so.Options {
			if o.Name == name {
				v, ok := o.Value.(int)
				return ok && v != 0
			}
		}
		return false
	}
	switch {
	case so.Type == spec.PUB, so.Type == spec.XPUB && !opt("xpub_nodrop"):
		return "libzmq drops what a subscriber cannot take beyond sndhwm without reporting it: MSGS OUT counts what was published, not what each subscriber received"
	case so.Type == spec.ROUTER && !opt("router_mandatory"):
		return "libzmq drops messages to an unknown or departed peer without reporting them (router_mandatory: true makes them send errors)"
	}
	return ""
}

// printUnseenDrops adds a note under the counters naming the sockets whose
// drops no counter can show, so that SEND ERRORS 0 is not read as
// "nothing lost".
func printUnseenDrops(w io.Writer, nodes []control.InstanceStatus) {
	byReason := map[string][]string{}
	var reasons []string
	for _, n := range nodes {
		for _, s := range n.Sockets {
			if s.DropsUnseen == "" {
				continue
			}
			if _, ok := byReason[s.DropsUnseen]; !ok {
				reasons = append(reasons, s.DropsUnseen)
			}
			byReason[s.DropsUnseen] = append(byReason[s.DropsUnseen], n.Name+"."+s.Name)
		}
	}
	for _, r := range reasons {
		socks := byReason[r]
		if len(socks) > 6 {
			socks = append(socks[:6:6], fmt.Sprintf("and %d more", len(byReason[r])-6))
		}
		fmt.Fprintf(w, "drops not counted on %s: %s\n", strings.Join(socks, ", "), r)
	}
}
