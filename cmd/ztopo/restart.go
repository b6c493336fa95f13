package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ztopo/ztopo/runtime/control"
)

const restartUsage = `usage: ztopo restart [FILE|NAME] NODE...

Restarts node instances of a running topology: an instance (worker.1) or
every replica of a node (worker). A running instance is restarted as its
supervisor restarts it after a failure: its current run ends (a process
node's child gets SIGTERM, then SIGKILL after the grace), the next starts
at once, its RESTARTS count goes up, and goroutine peers connected to it
over inproc connect again. An instance that failed for good or completed
starts afresh, with a new restart limit. Sockets bound by the instance are
closed and bound again: messages queued in them are lost, as in a
supervised restart.

Without FILE|NAME, the one topology running is meant.

Exit status: 0 restarted, 1 no such topology or node, 2 wrong usage.
`

func runRestart(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("restart")
	pos, code, ok := parseArgs(fs, "restart", restartUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return usageError(stderr, "restart", restartUsage, "no node given")
	}
	tg, names, err := targetAndNodes(pos)
	if err != nil {
		return fail(stderr, "restart", err)
	}
	if len(names) == 0 {
		return usageError(stderr, "restart", restartUsage, "no node given")
	}
	var rep control.RestartReply
	if err := tg.plain(control.CallArgs(context.Background(), tg.endpoint, control.VerbRestart, control.RestartRequest{Names: names}, &rep)); err != nil {
		return fail(stderr, "restart", err)
	}
	fmt.Fprintf(stdout, "restarted %s\n", strings.Join(rep.Restarted, ", "))
	return exitOK
}
