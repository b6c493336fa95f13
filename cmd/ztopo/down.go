package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
)

const downUsage = `usage: ztopo down [--host HOST] [FILE|NAME]

Stops a running topology as SIGTERM would: producers first, then a bounded
drain, then everything. Waits until it has stopped: at most its grace
period plus 10 seconds.

With --host HOST (or NAME@HOST), the share of that host, as run by
'ztopo up --host HOST'.

Exit status: 0 stopped, 1 no such topology is running or it did not stop
in time, 2 wrong usage.
`

// downMargin is added to the topology's grace for the wait in down: the
// drain is bounded by the grace, stopping the nodes after it by a little
// more.
const downMargin = 10 * time.Second

func runDown(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("down")
	tg, st, code, ok := parseStatus(fs, "down", downUsage, args, stdout, stderr, control.VerbStatus)
	if !ok {
		return code
	}
	if err := tg.call(context.Background(), control.VerbDown, nil); err != nil {
		return fail(stderr, "down", err)
	}
	bound := time.Duration(st.GraceMS)*time.Millisecond + downMargin
	deadline := time.Now().Add(bound)
	for {
		// The control socket answers until the topology has stopped.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := control.Call(ctx, tg.endpoint, control.VerbPing, nil)
		cancel()
		if errors.Is(err, control.ErrNotRunning) {
			fmt.Fprintf(stdout, "topology %s stopped\n", tg.name)
			return exitOK
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "ztopo down: topology %q still running after %v (pid %d)\n", tg.name, bound, st.PID)
			return exitFailure
		}
		time.Sleep(100 * time.Millisecond)
	}
}
