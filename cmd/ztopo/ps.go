package main

import "io"

const psUsage = `usage: ztopo ps FILE|NAME

Lists each node instance of a running topology (found by its file or its
name): state, pid or goroutine, restarts, messages in and out.
`

func runPs(args []string, stdout, stderr io.Writer) int {
	// TODO(issue 4): ask the control socket.
	return notImplemented("ps", psUsage, args, stdout, stderr)
}
