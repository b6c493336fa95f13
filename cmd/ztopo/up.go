package main

import "io"

const upUsage = `usage: ztopo up [flags] FILE

Runs the topology in the foreground until SIGINT/SIGTERM or 'ztopo down'. A
topology whose nodes complete (a generate with a count, a count with expect)
ends by itself once they have. While it runs, edits to FILE are applied:
only the nodes whose definition changed restart; SIGHUP reloads too.

Flags:
  --no-watch              do not watch FILE for changes
  --log-format text|json  log format (default text)
  --log-level LEVEL       trace, debug, info, warn or error (default info)
  --metrics ADDR          serve Prometheus metrics on ADDR

Exit status: 0 success (including a stop by signal), 1 invalid topology or a
node that failed for good, 2 wrong usage.
`

func runUp(args []string, stdout, stderr io.Writer) int {
	// TODO(issue 3): load, run the engine, watch and reload.
	return notImplemented("up", upUsage, args, stdout, stderr)
}
