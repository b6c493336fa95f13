package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
)

const reloadUsage = `usage: ztopo reload [--json] [--host HOST] FILE|NAME

Makes a running topology re-read its file now, as an edit or SIGHUP would,
and prints what the reload did, in the format of 'ztopo plan': the nodes
started (+), stopped (-), restarted (~) and whose handler was swapped (=).
An invalid file is rejected: its problems are printed (FILE:LINE:COL:
message) and the topology keeps running unchanged.

--json prints the reload's result as JSON: {"result": "applied" |
"unchanged" | "rejected" | "failed", "file", "plan", "diagnostics",
"duration_ms", "error"}.

With --host HOST (or NAME@HOST), the share of that host, as run by
'ztopo up --host HOST'.

Exit status: 0 applied or nothing to change, 1 the file is invalid, a node
failed to apply (it was rolled back), or no such topology is running, 2
wrong usage.
`

// reloadTimeout bounds the wait for a reload's answer: restarting a node
// may take up to the running topology's grace.
const reloadTimeout = 2 * time.Minute

func runReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload")
	asJSON := fs.Bool("json", false, "")
	tg, code, ok := parseTarget(fs, "reload", reloadUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	var res struct {
		control.ReloadReply
		Error string `json:"error,omitempty"`
	}
	err := tg.call(ctx, control.VerbReload, &res)
	if *asJSON && res.Result != "" {
		if err != nil {
			res.Error = err.Error()
		}
		if c := printJSON("reload", res, stdout, stderr); c != exitOK || err != nil {
			return exitFailure
		}
		return exitOK
	}
	switch res.Result {
	case "rejected":
		for _, d := range res.Diagnostics {
			fmt.Fprintln(stderr, d)
		}
	case "applied", "unchanged", "failed":
		if res.Plan != nil {
			printPlan(stdout, *res.Plan)
		}
	}
	if err != nil {
		return fail(stderr, "reload", err)
	}
	return exitOK
}

// printPlan prints a plan the way `ztopo plan` does.
func printPlan(w io.Writer, p control.Plan) {
	if p.Empty() {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, n := range p.Start {
		fmt.Fprintf(w, "+ start %s\n", n)
	}
	for _, n := range p.Stop {
		fmt.Fprintf(w, "- stop %s\n", n)
	}
	for _, n := range p.Restart {
		fmt.Fprintf(w, "~ restart %s\n", n)
		printChange(w, p.Changes[n])
	}
	for _, s := range p.Swap {
		if s.From == s.To {
			fmt.Fprintf(w, "= swap handler %s (%s, new config)\n", s.Node, s.To)
		} else {
			fmt.Fprintf(w, "= swap handler %s (%s -> %s)\n", s.Node, s.From, s.To)
		}
		printChange(w, p.Changes[s.Node])
	}
	for _, n := range p.Allow {
		fmt.Fprintf(w, "* allow %s (applied to new handshakes; nothing restarts)\n", n)
		printChange(w, p.Changes[n])
	}
	allow := ""
	if len(p.Allow) > 0 {
		allow = ", " + plural(len(p.Allow), "allow-list update")
	}
	fmt.Fprintf(w, "%d to start, %d to stop, %d to restart, %s%s, %d unchanged\n",
		len(p.Start), len(p.Stop), len(p.Restart), plural(len(p.Swap), "handler swap"), allow, len(p.Unchanged))
}

// printChange prints the reason of a restart and the changed fields,
// indented under the plan's line.
func printChange(w io.Writer, c control.PlanChange) {
	if c.Reason != "" {
		fmt.Fprintf(w, "    why: %s\n", c.Reason)
	}
	for _, f := range c.Fields {
		fmt.Fprintf(w, "    %s\n", f)
	}
}
