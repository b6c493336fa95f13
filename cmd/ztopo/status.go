package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ztopo/ztopo/runtime/control"
)

const statusUsage = `usage: ztopo status [--json] [--host HOST] [FILE|NAME]

Shows the state of a running topology, found by its file or its name: the
topology as a whole (name, file, pid of ztopo up, state, uptime, reloads),
then the counters of each socket of each node instance: messages and bytes
in and out, send failures, and rates over the last 2 seconds (5 for
process nodes); then each socket's type and resolved endpoints, as bound
and connected.

The state is starting, running, degraded (a node failed for good and is
not restarted any more) or stopping. Reloads count the applied ones, then the
rejected (invalid file) and failed (rolled back) ones.

--json prints the whole status as one JSON object.

With --host HOST (or NAME@HOST), the share of that host, as run by
'ztopo up --host HOST'.

Exit status: 0 ok, 1 no such topology is running, 2 wrong usage.
`

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status")
	asJSON := fs.Bool("json", false, "")
	_, st, code, ok := parseStatus(fs, "status", statusUsage, args, stdout, stderr, control.VerbStatus)
	if !ok {
		return code
	}
	if *asJSON {
		return printJSON("status", st, stdout, stderr)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", st.Name)
	fmt.Fprintf(tw, "file:\t%s\n", st.File)
	fmt.Fprintf(tw, "pid:\t%d\n", st.PID)
	fmt.Fprintf(tw, "state:\t%s\n", st.State)
	fmt.Fprintf(tw, "uptime:\t%s\n", uptimeText(st.UptimeSeconds))
	fmt.Fprintf(tw, "reloads:\t%d applied, %d rejected, %d failed\n", st.Reloads, st.ReloadsRejected, st.ReloadsFailed)
	tw.Flush()
	fmt.Fprintln(stdout)

	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSOCKET\tMSGS IN\tMSGS OUT\tBYTES IN\tBYTES OUT\tSEND ERRORS\tRATE IN\tRATE OUT")
	for _, n := range st.Nodes {
		if len(n.Sockets) == 0 {
			// A command node's sockets are its own: nothing to count.
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\n", n.Name, n.State)
		}
		for _, s := range n.Sockets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
				n.Name, n.State, s.Name, s.MsgsIn, s.MsgsOut, s.BytesIn, s.BytesOut, s.SendErrors,
				rateText(s.RateIn), rateText(s.RateOut))
		}
	}
	tw.Flush()
	// CURVE servers: refused handshakes, even when there are none, so
	// that "0" can be read as "nobody tried".
	for _, n := range st.Nodes {
		for _, s := range n.Sockets {
			if s.Curve == "server" {
				fmt.Fprintf(stdout, "%s.%s: CURVE server, %d handshakes refused\n", n.Name, s.Name, s.AuthFailures)
			}
		}
	}
	printUnseenDrops(stdout, st.Nodes)
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSOCKET\tTYPE\tBIND\tCONNECT")
	for _, n := range st.Nodes {
		for _, s := range n.Sockets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, s.Name, s.Type, listText(s.Bind), listText(s.Connect))
		}
	}
	tw.Flush()
	for _, n := range st.Nodes {
		if n.Error != "" {
			fmt.Fprintf(stdout, "%s: last error: %s\n", n.Name, n.Error)
		}
	}
	return exitOK
}

// listText is a list of endpoints, comma-separated; "-" for none.
func listText(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}
