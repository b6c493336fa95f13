package main

import "io"

const downUsage = `usage: ztopo down FILE|NAME

Stops a running topology as SIGTERM would: producers first, then a bounded
drain, then everything.
`

func runDown(args []string, stdout, stderr io.Writer) int {
	// TODO(issue 4): send down on the control socket.
	return notImplemented("down", downUsage, args, stdout, stderr)
}
