package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ztopo/ztopo/runtime/control"
)

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
