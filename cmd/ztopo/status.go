package main

import "io"

const statusUsage = `usage: ztopo status FILE|NAME

Shows the state of a running topology (found by its file or its name): the
topology as a whole, then each node instance with its state, pid or
goroutine, restarts, and messages in and out.
`

func runStatus(args []string, stdout, stderr io.Writer) int {
	// TODO(issue 4): ask the control socket.
	return notImplemented("status", statusUsage, args, stdout, stderr)
}
